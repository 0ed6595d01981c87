-- An alert that keeps firing and resolving: three or more resolutions in one burst of activity
-- (no gap of 15 minutes). Reported once the burst is over, to the alert's owners, as a
-- hygiene insight: a flapping alert trains people to ignore it. Raise its FOR, add
-- hysteresis, or fix the threshold.
CREATE RULE alert_flapping
  SEVERITY 'info'
  LABELS (team = 'sre', kind = 'hygiene')
  EMIT INSIGHT
  SUMMARY '{{service}}: alert {{name}} flapped — resolved {{flaps}} times in one burst from {{window_start}}; tune its threshold or FOR'
  RUNBOOK 'https://runbooks.example/alert-hygiene'
AS SELECT service, name,
          sum(CASE WHEN status = 'resolved' THEN 1 ELSE 0 END) AS flaps
   FROM alerts
   GROUP BY service, name, SESSION(ts, INTERVAL '15' MINUTE)
   HAVING flaps >= 3;
