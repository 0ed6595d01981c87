-- Critical alerts on three or more services within 5 minutes: a shared dependency or a
-- platform problem (network, DNS, cloud region) rather than three separate incidents. Goes
-- straight to the sinks as an insight, so the on-call hears about the whole picture at once.
CREATE RULE widespread_critical_alerts
  SEVERITY 'critical'
  LABELS (team = 'sre', scope = 'platform')
  EMIT INSIGHT
  SUMMARY 'Critical alerts on {{services}} services within 5 minutes ({{alerts}} distinct alerts) — look for a shared cause'
  DESCRIPTION 'Compare the services: a common dependency, a shared node pool or zone, or a change rolled out to all of them.'
  RUNBOOK 'https://runbooks.example/widespread-outage'
AS SELECT count(DISTINCT service) AS services, count(DISTINCT name) AS alerts
   FROM alerts
   WHERE status = 'firing'
     AND lower(severity) IN ('critical', 'page', 'p1', 'sev1')
   GROUP BY HOP(ts, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE)
   HAVING count(DISTINCT service) >= 3;
