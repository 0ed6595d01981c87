//! The well-known metric families kaizen exports, with their help text and (for histograms)
//! their buckets. A dashboard or an alert rule can rely on these names.

use super::MetricDef;

/// Counter `{source, format}`: events decoded from a source (source: `kafka`, `http`, `slack`).
pub const EVENTS_IN: MetricDef = MetricDef::new(
    "kaizen_events_in_total",
    "Events decoded from a source, by source and format.",
);
/// Counter `{sink, format}`: records written by a sink (insights topic, dead-letter topic, …).
pub const EVENTS_OUT: MetricDef = MetricDef::new(
    "kaizen_events_out_total",
    "Records written by a sink, by sink and format.",
);
/// Counter `{source, format}`: messages that could not be decoded.
pub const DECODE_ERRORS: MetricDef = MetricDef::new(
    "kaizen_decode_errors_total",
    "Messages that could not be decoded, by source and format.",
);
/// Counter `{source}`: undecodable messages handed to the dead-letter destination.
pub const DEAD_LETTERS: MetricDef = MetricDef::new(
    "kaizen_dead_letters_total",
    "Messages handed to the dead-letter destination, by source.",
);
/// Counter `{source}`: events later than the allowed lateness.
pub const LATE_EVENTS: MetricDef = MetricDef::new(
    "kaizen_late_events_total",
    "Events later than the allowed lateness, by source.",
);
/// Gauge `{topic, partition}`: messages between the consumer's position and the high watermark.
pub const CONSUMER_LAG: MetricDef = MetricDef::new(
    "kaizen_consumer_lag",
    "Messages between the consumer position and the partition high watermark.",
);
/// Counter `{sink}`: insight versions emitted.
pub const INSIGHTS_EMITTED: MetricDef = MetricDef::new(
    "kaizen_insights_emitted_total",
    "Insight versions emitted, by sink.",
);
/// Counter: Slack requests retried (429, 5xx, network errors, transient `ok:false`).
pub const SLACK_RETRIES: MetricDef = MetricDef::new(
    "kaizen_slack_retries_total",
    "Slack Web API requests retried.",
);
/// Counter: Slack requests that failed for good.
pub const SLACK_FAILURES: MetricDef = MetricDef::new(
    "kaizen_slack_failures_total",
    "Slack Web API requests that failed for good.",
);
/// Counter `{kind}`: Slack messages delivered (`post`, `update`, `reply`).
pub const SLACK_DELIVERED: MetricDef = MetricDef::new(
    "kaizen_slack_messages_total",
    "Slack messages delivered, by kind (post, update, reply).",
);
/// Gauge: incidents waiting to be delivered to Slack.
pub const SLACK_QUEUE_DEPTH: MetricDef = MetricDef::new(
    "kaizen_slack_queue_depth",
    "Incidents waiting to be delivered to Slack.",
);
/// Counter `{route, code}`: HTTP requests answered.
pub const HTTP_REQUESTS: MetricDef = MetricDef::new(
    "kaizen_http_requests_total",
    "HTTP requests answered, by route and status code.",
);
/// Gauge: wall clock minus the engine's output frontier (event time), in seconds — how far
/// behind real time the insights are.
pub const WATERMARK_DELAY: MetricDef = MetricDef::new(
    "kaizen_watermark_delay_seconds",
    "Wall clock minus the event time up to which insights are complete, in seconds.",
);
/// Gauge `{source, partition}`: wall clock minus the newest event time read from a source.
pub const SOURCE_DELAY: MetricDef = MetricDef::new(
    "kaizen_source_delay_seconds",
    "Wall clock minus the newest event time read from a source partition, in seconds.",
);

/// Seconds, from a millisecond to an hour: latencies between an event and what it caused.
const SECONDS_MS_TO_HOUR: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1800.0, 3600.0,
];
/// Seconds, from 10 µs to 2.5 s: the cost of decoding one message or body.
const SECONDS_US_TO_S: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Seconds, from 5 ms to 30 s: a request to a remote API.
const SECONDS_REQUEST: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Histogram `{sink}`: from the event time of an insight version's newest evidence to the
/// moment it was emitted. Includes the allowed lateness and the window that had to close.
pub const INSIGHT_EVENT_DELAY: MetricDef = MetricDef::histogram(
    "kaizen_insight_event_delay_seconds",
    "Seconds from the event time of an insight version's newest evidence to its emission.",
    SECONDS_MS_TO_HOUR,
);
/// Histogram `{sink}`: from the moment the newest evidence of an insight version was read
/// (wall clock) to its emission: kaizen's own latency.
pub const INGEST_TO_INSIGHT: MetricDef = MetricDef::histogram(
    "kaizen_ingest_to_insight_seconds",
    "Seconds from reading an insight version's newest evidence to emitting the version.",
    SECONDS_MS_TO_HOUR,
);
/// Histogram `{source, format}`: time to decode one message (Kafka) or body (HTTP).
pub const DECODE_DURATION: MetricDef = MetricDef::histogram(
    "kaizen_decode_duration_seconds",
    "Seconds to decode one message or request body, by source and format.",
    SECONDS_US_TO_S,
);
/// Histogram `{method}`: Slack Web API request latency, whatever the answer.
pub const SLACK_REQUEST_DURATION: MetricDef = MetricDef::histogram(
    "kaizen_slack_request_duration_seconds",
    "Seconds per Slack Web API request, by method.",
    SECONDS_REQUEST,
);

/// Every family above, for documentation and for checks that dashboards name real series.
pub const ALL: &[MetricDef] = &[
    EVENTS_IN,
    EVENTS_OUT,
    DECODE_ERRORS,
    DEAD_LETTERS,
    LATE_EVENTS,
    CONSUMER_LAG,
    INSIGHTS_EMITTED,
    SLACK_RETRIES,
    SLACK_FAILURES,
    SLACK_DELIVERED,
    SLACK_QUEUE_DEPTH,
    HTTP_REQUESTS,
    WATERMARK_DELAY,
    SOURCE_DELAY,
    INSIGHT_EVENT_DELAY,
    INGEST_TO_INSIGHT,
    DECODE_DURATION,
    SLACK_REQUEST_DURATION,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The series names a family puts on the page.
    fn series_names(def: &MetricDef) -> Vec<String> {
        if def.buckets.is_empty() {
            vec![def.name.to_owned()]
        } else {
            ["_bucket", "_sum", "_count"]
                .iter()
                .map(|s| format!("{}{s}", def.name))
                .collect()
        }
    }

    #[test]
    fn the_grafana_dashboard_queries_only_series_kaizen_exports() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/grafana/dashboards/kaizen.json"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
        let known: Vec<String> = ALL
            .iter()
            .chain(crate::metrics::PROCESS_FAMILIES)
            .flat_map(series_names)
            .collect();
        let mut queried = 0;
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap();
                let names = expr
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|w| w.starts_with("kaizen_") || w.starts_with("process_"));
                for name in names {
                    assert!(known.iter().any(|k| k == name), "{name} in {expr}");
                    queried += 1;
                }
            }
        }
        assert!(queried >= 20, "{queried}");
    }
}
