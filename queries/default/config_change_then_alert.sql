-- An alert fires on a service within 15 minutes of a config change or feature-flag flip on
-- it: the change is the first suspect. (Deploys have their own rule, deploy_then_errors.)
-- Caveat: an alert that was already firing and is re-sent after the change matches too.
CREATE RULE config_change_then_alert
  SEVERITY 'warning'
  LABELS (team = 'sre', cause = 'change')
  SUMMARY '{{service}}: {{alert}} fired within 15m of a {{change}} change ({{changes}} change(s) in that time) — suspect the change'
  DESCRIPTION 'Revert the change if the alert is new since it; config and flag changes are quicker to undo than deploys.'
  RUNBOOK 'https://runbooks.example/config-change'
AS SELECT * FROM events MATCH_RECOGNIZE (
     PARTITION BY service
     ORDER BY ts
     MEASURES LAST(C.change_kind) AS change,
              COUNT(C.*) AS changes,
              FIRST(A.name) AS alert
     PATTERN (C+ A)
     WITHIN INTERVAL '15' MINUTE
     DEFINE C AS C.kind = 'change' AND C.change_kind IN ('config', 'feature_flag', 'secret'),
            A AS A.kind = 'alert' AND A.status = 'firing'
   );
