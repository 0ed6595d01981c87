-- Many different alerts fire on one service at once: three or more distinct alert names within
-- 5 minutes usually share one cause. One signal for the storm helps correlation treat them as
-- one incident, and tells the responder where to start.
CREATE RULE alert_storm
  SEVERITY 'warning'
  LABELS (team = 'sre')
  SUMMARY '{{service}}: {{alerts}} different alerts firing within 5m — likely one underlying problem'
  RUNBOOK 'https://runbooks.example/alert-storm'
AS SELECT service, count(DISTINCT name) AS alerts, count(*) AS notifications
   FROM alerts
   WHERE status = 'firing'
   GROUP BY service, HOP(ts, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE)
   HAVING count(DISTINCT name) >= 3;
