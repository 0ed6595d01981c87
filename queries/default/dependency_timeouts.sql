-- A service keeps timing out on one dependency: 10+ timeout errors a minute naming the same
-- peer, two minutes running. The peer is the OpenTelemetry `peer.service` attribute when the
-- log carries it, else the host the message names (`timeout calling payments after 5000ms`,
-- `dial tcp 10.0.3.7:5432: i/o timeout`, `request to inventory timed out`).
CREATE RULE dependency_timeouts
  SEVERITY 'warning'
  LABELS (team = 'sre')
  SUMMARY '{{service}}: {{timeouts}} timeouts calling {{peer}} in 1m'
  DESCRIPTION 'Is {{peer}} slow or down (see its own rules), or is {{service}} starved of connections or threads? Timeouts longer than the caller''s own deadline cascade upstream.'
  RUNBOOK 'https://runbooks.example/dependency-timeouts'
AS SELECT service,
          COALESCE(labels['peer.service'],
                   regexp_extract(message, '(?i)(?:calling|call to|request to|connecting to|connect to|dial tcp) ([A-Za-z0-9_.-]+(?::[0-9]+)?)')) AS peer,
          count(*) AS timeouts
   FROM logs
   WHERE level IN ('warn', 'error', 'fatal')
     AND message ~* 'time[ds]? ?out|deadline ?exceeded'
     AND message NOT ILIKE '%nearly%'
     AND COALESCE(labels['peer.service'],
                  regexp_extract(message, '(?i)(?:calling|call to|request to|connecting to|connect to|dial tcp) ([A-Za-z0-9_.-]+(?::[0-9]+)?)')) IS NOT NULL
   GROUP BY service,
            COALESCE(labels['peer.service'],
                     regexp_extract(message, '(?i)(?:calling|call to|request to|connecting to|connect to|dial tcp) ([A-Za-z0-9_.-]+(?::[0-9]+)?)')),
            TUMBLE(ts, INTERVAL '1' MINUTE)
   HAVING count(*) >= 10
FOR INTERVAL '1' MINUTE
KEEP FIRING FOR INTERVAL '2' MINUTE;
