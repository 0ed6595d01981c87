-- A critical incident still open after an hour: the first responders have not found the way
-- out, so widen the call (incident commander, the origin's owning team). Reads correlation's
-- own incidents; an update keeps it pending, resolving the incident ends it.
CREATE RULE incident_unresolved
  SEVERITY 'critical'
  LABELS (team = 'sre', escalation = 'incident-commander')
  EMIT INSIGHT
  SUMMARY 'Escalate: "{{name}}" still open after an hour (origin {{service}})'
  DESCRIPTION 'Critical incident {{id}} opened an hour ago and has not resolved; page the incident commander and the owners of {{service}}.'
  RUNBOOK 'https://runbooks.example/escalation'
AS SELECT id, name, service
   FROM incidents
   WHERE severity = 'critical' AND status <> 'resolved'
FOR INTERVAL '1' HOUR;
