-- A container keeps restarting: kube-state-metrics' restart counter rises by about three or
-- more in 10 minutes, for 5 minutes (KubePodCrashLooping). `rate` is the counter's per-second
-- increase over each window, so `rate * 600` is restarts per 10 minutes; one series per
-- (pod, container) keeps the counter's samples in order.
CREATE RULE pod_crash_looping
  SEVERITY 'warning'
  LABELS (team = 'platform')
  SUMMARY '{{service}}: pod {{pod}} (container {{container}}) restarted about {{restarts}} times in 10m'
  DESCRIPTION 'Check the container''s last exit reason (kubectl describe pod {{pod}}) and its logs from before the restart.'
  RUNBOOK 'https://runbooks.example/crash-loop'
AS SELECT service, labels['pod'] AS pod, labels['container'] AS container,
          round(rate(value) * 600) AS restarts
   FROM metrics
   WHERE name = 'kube_pod_container_status_restarts_total'
   GROUP BY service, labels['pod'], labels['container'], HOP(ts, INTERVAL '1' MINUTE, INTERVAL '10' MINUTE)
   HAVING rate(value) * 600 >= 3
FOR INTERVAL '5' MINUTE;
