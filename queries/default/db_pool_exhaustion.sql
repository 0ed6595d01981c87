-- A service's database connection pool is exhausted: requests queue, then fail.
CREATE RULE db_pool_exhaustion
  SEVERITY 'critical'
  LABELS (team = 'platform')
  SUMMARY '{{service}}: {{errors}} connection-pool errors in 1m'
  RUNBOOK 'https://runbooks.example/db-pool'
AS SELECT service, count(*) AS errors
   FROM logs
   WHERE level IN ('error', 'fatal')
     AND (message ILIKE '%connection pool%exhausted%'
          OR message ILIKE '%too many connections%'
          OR message ILIKE '%timeout waiting for connection%')
   GROUP BY service, TUMBLE(ts, INTERVAL '1' MINUTE)
   HAVING count(*) >= 20
FOR INTERVAL '2' MINUTE
KEEP FIRING FOR INTERVAL '2' MINUTE;
