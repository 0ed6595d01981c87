-- A service suddenly logs many different kinds of error: five or more distinct error templates
-- (log lines with their variable parts masked) within 5 minutes, among 20+ errors. One noisy
-- error repeating is the usual background; new kinds of error at once mean something changed.
CREATE RULE error_variety_burst
  SEVERITY 'warning'
  LABELS (team = 'sre')
  SUMMARY '{{service}}: {{kinds}} different kinds of error in 5m ({{errors}} error lines) — something new is failing'
  DESCRIPTION 'Look at the newest templates first; compare with the last deploy or config change of {{service}}.'
  RUNBOOK 'https://runbooks.example/new-errors'
AS SELECT service,
          count(DISTINCT template_id) AS kinds,
          count(*) AS errors
   FROM logs
   WHERE level IN ('error', 'fatal')
   GROUP BY service, HOP(ts, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE)
   HAVING count(DISTINCT template_id) >= 5 AND count(*) >= 20;
