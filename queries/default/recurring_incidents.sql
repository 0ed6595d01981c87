-- The same service is the probable origin of three or more incidents within a day: a chronic
-- problem that each responder fixed in turn and nobody owns. Goes to the sinks as an insight
-- for the owning team's backlog rather than a page.
CREATE RULE recurring_incidents
  SEVERITY 'warning'
  LABELS (team = 'sre', kind = 'problem-management')
  EMIT INSIGHT
  SUMMARY '{{service}} was the probable origin of {{incidents}} incidents in 24h — open a problem ticket'
  DESCRIPTION 'Incidents in the window: {{titles}}.'
  RUNBOOK 'https://runbooks.example/problem-management'
AS SELECT service, count(*) AS incidents, count(DISTINCT name) AS titles
   FROM incidents
   WHERE status = 'open'
   GROUP BY service, HOP(ts, INTERVAL '1' HOUR, INTERVAL '24' HOUR)
   HAVING count(*) >= 3;
