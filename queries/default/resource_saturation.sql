-- An instance has been pegged for 5 minutes: CPU or memory utilisation above 90 % on every
-- sample. Evaluated per series, like a Prometheus alert: one healthy sample resets it.
-- Reads the simulator's `cpu_utilization` / `memory_utilization` (fractions in [0, 1]).
CREATE RULE resource_saturation
  SEVERITY 'warning'
  LABELS (team = 'platform')
  SUMMARY '{{service}} {{instance}}: {{resource}} at {{pct}}% for 5m'
  DESCRIPTION 'Sustained {{resource}} saturation slows every request on the instance; memory this high usually ends in an OOM kill.'
  RUNBOOK 'https://runbooks.example/saturation'
AS SELECT CASE name WHEN 'cpu_utilization' THEN 'CPU' ELSE 'memory' END AS resource,
          round(value * 100, 1) AS pct
   FROM metrics
   WHERE name IN ('cpu_utilization', 'memory_utilization')
     AND value > 0.9
   GROUP BY service, name, labels['instance']
FOR INTERVAL '5' MINUTE;
