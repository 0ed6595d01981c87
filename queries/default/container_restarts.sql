-- Containers of a service are being killed and restarted: any OOM kill, or three restarts /
-- back-offs within 10 minutes (a crash loop). Matches kubelet and runtime wording
-- (`OOMKilled`, `Back-off restarting failed container`, `CrashLoopBackOff`) and the simulator's
-- `OOMKilled: container restarted (restart count N)`.
CREATE RULE container_restarts
  SEVERITY 'critical'
  LABELS (team = 'platform')
  SUMMARY '{{service}}: containers restarted {{restarts}} time(s) in 10m ({{oom_kills}} OOMKilled, {{pods}} pod(s))'
  DESCRIPTION 'OOM kills mean the container hit its memory limit: look for a leak or a limit set too low. Repeated back-offs mean it crashes on start: read its last logs.'
  RUNBOOK 'https://runbooks.example/crash-loop'
AS SELECT service,
          count(*) AS restarts,
          sum(CASE WHEN message ILIKE '%OOMKilled%' THEN 1 ELSE 0 END) AS oom_kills,
          count(DISTINCT labels['pod']) AS pods
   FROM logs
   WHERE message ~* 'oomkilled|back-off restarting failed container|crashloopbackoff'
   GROUP BY service, HOP(ts, INTERVAL '1' MINUTE, INTERVAL '10' MINUTE)
   HAVING oom_kills >= 1 OR restarts >= 3;
