-- Users are getting errors: more than 5 % of the calls a user-facing service (frontend, web,
-- api, gateway, edge) makes to its backends fail, two minutes running. A failed backend call
-- at the edge is, almost always, a failed page or API request.
CREATE RULE user_facing_errors
  SEVERITY 'critical'
  LABELS (team = 'sre', impact = 'users')
  SUMMARY '{{service}}: {{error_pct}}% of calls to backends failing ({{errors}} of {{calls}} in 1m) — users see errors'
  DESCRIPTION 'Look at which backend the failing spans call; the rules on that service (error rate, restarts, deploys) usually name the cause.'
  RUNBOOK 'https://runbooks.example/user-facing-errors'
AS SELECT service,
          sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors,
          count(*) AS calls,
          round(100 * sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) / count(*), 1) AS error_pct
   FROM spans
   WHERE service ~ '^(frontend|web|www|api|gateway|edge)([-_].*)?$'
   GROUP BY service, TUMBLE(ts, INTERVAL '1' MINUTE)
   HAVING errors > 0.05 * calls AND calls >= 20
FOR INTERVAL '1' MINUTE
KEEP FIRING FOR INTERVAL '2' MINUTE;
