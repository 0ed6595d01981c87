-- A deploy is followed by a burst of errors: 50 error logs from the service within 5 minutes of
-- rolling it out. One signal per bad deploy (matching restarts at the next deploy); rollbacks
-- and config changes are not deploys.
CREATE RULE deploy_then_errors
  SEVERITY 'critical'
  LABELS (team = 'sre', cause = 'change')
  SUMMARY '{{service}}: {{errors}} errors logged within 5 minutes of deploying {{version}}'
  DESCRIPTION 'First error after the deploy: {{first_error}}. If the errors are new with this version, roll back first and debug after.'
  RUNBOOK 'https://runbooks.example/bad-deploy'
AS SELECT * FROM events MATCH_RECOGNIZE (
     PARTITION BY service
     ORDER BY ts
     MEASURES LAST(D.version) AS version,
              COUNT(E.*) AS errors,
              FIRST(E.message) AS first_error
     PATTERN (D E{50,})
     WITHIN INTERVAL '5' MINUTE
     DEFINE D AS D.kind = 'change' AND D.change_kind = 'deploy',
            E AS E.kind = 'log' AND E.level IN ('error', 'fatal')
   );
