-- A service's requests are failing: its error ratio, averaged over all its instances, is above
-- 5 % minute after minute — pending after the first bad minute, firing two minutes later.
-- Reads `http_error_ratio` (a fraction in [0, 1]), the RED-metric name the simulator and most
-- recording rules export.
CREATE RULE error_rate_spike
  SEVERITY 'critical'
  LABELS (team = 'sre', signal = 'errors')
  SUMMARY '{{service}}: {{error_pct}}% of requests failing (threshold 5%)'
  DESCRIPTION 'Mean http_error_ratio across instances above 5% in three consecutive 1-minute windows; worst instance at {{worst_pct}}%.'
  RUNBOOK 'https://runbooks.example/error-rate'
AS SELECT service,
          round(avg(value) * 100, 1) AS error_pct,
          round(max(value) * 100, 1) AS worst_pct
   FROM metrics
   WHERE name = 'http_error_ratio'
   GROUP BY service, TUMBLE(ts, INTERVAL '1' MINUTE)
   HAVING avg(value) > 0.05
FOR INTERVAL '2' MINUTE
KEEP FIRING FOR INTERVAL '3' MINUTE;
