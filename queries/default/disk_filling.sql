-- A filesystem is over 90 % full and has been for 5 minutes. Reads used ratios
-- (`disk_used_ratio`, `node_filesystem_used_ratio`, in [0, 1]) and Telegraf's
-- `disk_used_percent` (in %). One series per instance and mount point.
CREATE RULE disk_filling
  SEVERITY 'warning'
  LABELS (team = 'platform')
  SUMMARY '{{service}} {{instance}}: {{mount}} is {{used_pct}}% full'
  DESCRIPTION 'Free space before writes fail: rotate or ship logs, drop old data or snapshots, or grow the volume.'
  RUNBOOK 'https://runbooks.example/disk-full'
AS SELECT COALESCE(labels['mountpoint'], labels['path'], '/') AS mount,
          round(CASE WHEN name LIKE '%percent' THEN value ELSE value * 100 END, 1) AS used_pct
   FROM metrics
   WHERE name IN ('disk_used_ratio', 'node_filesystem_used_ratio', 'disk_used_percent')
     AND CASE WHEN name LIKE '%percent' THEN value / 100 ELSE value END > 0.9
   GROUP BY service, labels['instance'], labels['mountpoint'], labels['path']
FOR INTERVAL '5' MINUTE;
