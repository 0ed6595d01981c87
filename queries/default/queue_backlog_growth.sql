-- Consumers are falling behind: a queue's backlog grew by 1000+ messages over 10 minutes, and
-- kept growing for 5 minutes. Reads RabbitMQ (`rabbitmq_queue_messages_ready`, label `queue`),
-- kafka_exporter (`kafka_consumergroup_lag_sum`, label `topic`) and generic `queue_depth` /
-- `consumer_lag` gauges. A big but stable backlog does not fire: only growth does.
CREATE RULE queue_backlog_growth
  SEVERITY 'warning'
  LABELS (team = 'platform')
  SUMMARY '{{service}}: backlog of {{queue}} grew by {{growth}} to {{backlog}} messages in 10m — consumers are falling behind'
  DESCRIPTION 'Check the consumers: are they running, erroring, or slowed by a dependency? Scale them out if the input rate is simply higher.'
  RUNBOOK 'https://runbooks.example/queue-backlog'
AS SELECT service,
          COALESCE(labels['queue'], labels['topic'], name) AS queue,
          round(last(value) - first(value)) AS growth,
          round(last(value)) AS backlog
   FROM metrics
   WHERE name IN ('rabbitmq_queue_messages_ready', 'kafka_consumergroup_lag_sum',
                  'queue_depth', 'consumer_lag')
   GROUP BY service, COALESCE(labels['queue'], labels['topic'], name),
            HOP(ts, INTERVAL '1' MINUTE, INTERVAL '10' MINUTE)
   HAVING growth >= 1000
FOR INTERVAL '5' MINUTE;
