-- Calls from one service to another are too slow for a 99 % / 1 s latency objective: more than
-- 14.4 % of the calls in the last 5 minutes took over a second, i.e. the error budget (1 %)
-- burns 14.4x too fast — the SRE workbook's paging burn rate. Re-evaluated every minute.
CREATE RULE latency_slo_burn
  SEVERITY 'warning'
  LABELS (team = 'sre', slo = 'latency')
  SUMMARY '{{service}} → {{peer}}: {{slow_pct}}% of calls slower than 1 s over 5m (p99 {{p99_ms}} ms), latency budget burning {{burn_rate}}x'
  DESCRIPTION 'Objective: 99% of calls from {{service}} to {{peer}} complete within 1000 ms. {{calls}} calls in the window.'
  RUNBOOK 'https://runbooks.example/latency-slo'
AS SELECT service, peer,
          round(100 * avg(CASE WHEN duration_ms > 1000 THEN 1 ELSE 0 END), 1) AS slow_pct,
          round(avg(CASE WHEN duration_ms > 1000 THEN 1 ELSE 0 END) / 0.01, 1) AS burn_rate,
          round(p99(duration_ms)) AS p99_ms,
          count(*) AS calls
   FROM spans
   WHERE peer IS NOT NULL
   GROUP BY service, peer, HOP(ts, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE)
   HAVING burn_rate > 14.4 AND calls >= 30
FOR INTERVAL '2' MINUTE
KEEP FIRING FOR INTERVAL '5' MINUTE;
