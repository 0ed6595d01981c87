//! AWS CloudWatch alarm state changes as EventBridge delivers them (`source: aws.cloudwatch`,
//! `detail-type: CloudWatch Alarm State Change`), e.g. through an EventBridge → Kafka or HTTP
//! target. `ALARM` is a firing alert; `OK` and `INSUFFICIENT_DATA` are resolved (the alarm no
//! longer knows of a breach; the state is kept in the `state` label). Alarm configuration and
//! contributor events on the same bus carry no state kaizen tracks and yield no event.
//!
//! CloudWatch has no notion of a service, so it is taken, in order, from the alarm's tags
//! (`service`, `Service`, `app`, `application`; EventBridge adds them when tag propagation is on),
//! then the first metric's dimensions ([`SERVICE_DIMENSIONS`]), then the metric namespace
//! (`AWS/EC2`), then the alarm name.

use kaizen_model::{AlertStatus, Attributes, Event, Labels, Symbol};
use serde::Deserialize;

use super::common::{
    for_each_document, invalid, json_error, missing, AlertParts, TextMap, TimeValue,
};
use super::{CodecError, DecodeContext, Format};

const FORMAT: Format = Format::CloudWatch;

/// Metric dimensions that name what the alarm watches, most specific first.
const SERVICE_DIMENSIONS: [&str; 12] = [
    "ServiceName",
    "service",
    "FunctionName",
    "DBInstanceIdentifier",
    "DBClusterIdentifier",
    "TableName",
    "QueueName",
    "LoadBalancer",
    "TargetGroup",
    "ClusterName",
    "AutoScalingGroupName",
    "InstanceId",
];

/// Alarm tags that name a service.
const SERVICE_TAGS: [&str; 4] = ["service", "Service", "app", "application"];

#[derive(Deserialize)]
struct Envelope {
    #[serde(default, rename = "detail-type")]
    detail_type: Option<String>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    time: Option<TimeValue>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    detail: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    #[serde(default)]
    alarm_name: Option<String>,
    #[serde(default)]
    state: Option<State>,
    #[serde(default)]
    previous_state: Option<State>,
    #[serde(default)]
    configuration: Option<Configuration>,
    #[serde(default)]
    alarm_tags: TextMap,
}

#[derive(Deserialize)]
struct State {
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    timestamp: Option<TimeValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Configuration {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    metrics: Vec<MetricQuery>,
    #[serde(default)]
    alarm_rule: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricQuery {
    #[serde(default)]
    metric_stat: Option<MetricStat>,
}

#[derive(Deserialize)]
struct MetricStat {
    #[serde(default)]
    metric: Option<CwMetric>,
}

#[derive(Deserialize)]
struct CwMetric {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    dimensions: TextMap,
}

/// Decodes every EventBridge event of the message (one, an array, or one per line).
pub(super) fn decode(
    payload: &[u8],
    ctx: &DecodeContext<'_>,
    out: &mut Vec<Event>,
) -> Result<(), CodecError> {
    for_each_document(FORMAT, payload, |_, e: Envelope| event(e, ctx, out))
}

fn event(e: Envelope, ctx: &DecodeContext<'_>, out: &mut Vec<Event>) -> Result<(), CodecError> {
    match e.detail_type.as_deref() {
        Some("CloudWatch Alarm State Change") => {}
        Some(
            "CloudWatch Alarm Configuration Change" | "CloudWatch Alarm Contributor State Change",
        ) => return Ok(()),
        Some(other) => {
            return Err(invalid(
                FORMAT,
                "detail-type",
                format!("{other:?} (expected \"CloudWatch Alarm State Change\")"),
            ))
        }
        None => return Err(missing(FORMAT, "detail-type")),
    }
    let detail: Detail = serde_json::from_value(e.detail.ok_or_else(|| missing(FORMAT, "detail"))?)
        .map_err(json_error(FORMAT))?;
    let name = detail
        .alarm_name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| missing(FORMAT, "detail.alarmName"))?;
    let state = detail
        .state
        .ok_or_else(|| missing(FORMAT, "detail.state"))?;
    let value = state
        .value
        .as_deref()
        .ok_or_else(|| missing(FORMAT, "detail.state.value"))?;
    let status = match value {
        "ALARM" => AlertStatus::Firing,
        "OK" | "INSUFFICIENT_DATA" => AlertStatus::Resolved,
        other => {
            return Err(invalid(
                FORMAT,
                "detail.state.value",
                format!("{other:?} (expected ALARM, OK or INSUFFICIENT_DATA)"),
            ))
        }
    };
    let ts = match (&state.timestamp, &e.time) {
        (Some(t), _) => t.get(FORMAT, "detail.state.timestamp")?,
        (None, Some(t)) => t.get(FORMAT, "time")?,
        (None, None) => ctx
            .received
            .ok_or_else(|| missing(FORMAT, "detail.state.timestamp"))?,
    };
    let config = detail.configuration;
    let metric = config.as_ref().and_then(|c| {
        c.metrics
            .iter()
            .find_map(|m| m.metric_stat.as_ref()?.metric.as_ref())
    });
    let service = SERVICE_TAGS
        .iter()
        .find_map(|k| detail.alarm_tags.get(k))
        .or_else(|| {
            SERVICE_DIMENSIONS
                .iter()
                .find_map(|k| metric?.dimensions.get(k))
        })
        .or_else(|| metric?.namespace.as_deref().filter(|n| !n.is_empty()))
        .unwrap_or(&name)
        .to_owned();
    let mut labels: Vec<(Symbol, Symbol)> = vec![
        (Symbol::new("alertname"), Symbol::new(&name)),
        (Symbol::new("state"), Symbol::new(value)),
    ];
    let optional = [
        ("region", e.region.as_deref()),
        ("account", e.account.as_deref()),
        ("namespace", metric.and_then(|m| m.namespace.as_deref())),
        ("metric", metric.and_then(|m| m.name.as_deref())),
        ("severity", detail.alarm_tags.get("severity")),
    ];
    labels.extend(
        optional
            .into_iter()
            .filter_map(|(k, v)| Some((Symbol::new(k), Symbol::new(v.filter(|v| !v.is_empty())?)))),
    );
    if let Some(m) = metric {
        labels.extend(
            m.dimensions
                .0
                .iter()
                .map(|(k, v)| (Symbol::new(k), Symbol::new(v))),
        );
    }
    let annotations = [
        ("summary", state.reason),
        (
            "description",
            config.as_ref().and_then(|c| c.description.clone()),
        ),
        (
            "alarm_rule",
            config.as_ref().and_then(|c| c.alarm_rule.clone()),
        ),
        (
            "previous_state",
            detail.previous_state.and_then(|p| p.value),
        ),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((Symbol::new(k), v.filter(|v| !v.is_empty())?)));
    out.push(
        AlertParts {
            ts,
            service,
            name,
            status,
            severity: None,
            fingerprint: e.resources.into_iter().next(),
            labels: Labels::from_pairs(labels),
            annotations: Attributes::from_pairs(annotations),
        }
        .into_event(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codecs::common::test_util::{alert, all, at, fixture};
    use crate::codecs::{DecodeContext, Format};

    #[test]
    fn other_detail_types() {
        let mut out = Vec::new();
        let ctx = DecodeContext::default();
        let config = br#"{"detail-type":"CloudWatch Alarm Configuration Change","detail":{}}"#;
        decode(config, &ctx, &mut out).unwrap();
        assert!(out.is_empty());
        let ec2 = br#"{"detail-type":"EC2 Instance State-change Notification","detail":{}}"#;
        assert!(decode(ec2, &ctx, &mut out)
            .unwrap_err()
            .to_string()
            .contains("detail-type"));
        let no_state =
            br#"{"detail-type":"CloudWatch Alarm State Change","detail":{"alarmName":"A"}}"#;
        assert_eq!(
            decode(no_state, &ctx, &mut out).unwrap_err().to_string(),
            "cloudwatch: missing detail.state"
        );
        let tagged = br#"{"detail-type":"CloudWatch Alarm State Change","time":"2026-01-05T10:00:00Z","detail":{"alarmName":"A","alarmTags":{"service":"checkout","severity":"critical"},"state":{"value":"ALARM"}}}"#;
        decode(tagged, &ctx, &mut out).unwrap();
        assert_eq!(out[0].service.as_str(), "checkout");
        assert_eq!(out[0].ts.to_string(), "2026-01-05T10:00:00.000Z");
    }

    #[test]
    fn cloudwatch_alarm_state_changes() {
        let events = all(
            Format::CloudWatch,
            fixture!("cloudwatch/single_metric_alarm.json"),
        );
        let e = &events[0];
        assert_eq!(
            (e.service.as_str(), e.ts),
            ("i-12345678901234567", at("2019-10-02T17:04:40.989Z"))
        );
        let a = alert(e);
        assert_eq!(
            (a.name.as_str(), a.status),
            ("ServerCpuTooHigh", AlertStatus::Firing)
        );
        assert_eq!(
            a.fingerprint,
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh"
        );
        let label = |k: &str| a.labels.get(k).map(|v| v.to_string());
        assert_eq!(label("namespace").as_deref(), Some("AWS/EC2"));
        assert_eq!(label("metric").as_deref(), Some("CPUUtilization"));
        assert_eq!(label("region").as_deref(), Some("us-east-1"));
        assert_eq!(label("state").as_deref(), Some("ALARM"));
        assert_eq!(a.annotations.get("previous_state"), Some("OK"));
        assert!(a
            .annotations
            .get("summary")
            .is_some_and(|s| s.starts_with("Threshold Crossed")));

        let events = all(
            Format::CloudWatch,
            fixture!("cloudwatch/composite_alarm.json"),
        );
        assert_eq!(
            events[0].service.as_str(),
            "ServiceAggregatedAlarm",
            "no metric: the alarm name"
        );
        let a = alert(&events[0]);
        assert_eq!(
            a.annotations.get("alarm_rule"),
            Some("ALARM(ServerCpuTooHigh) OR ALARM(TotalNetworkTrafficTooHigh)")
        );

        let ok = std::str::from_utf8(fixture!("cloudwatch/single_metric_alarm.json"))
            .unwrap()
            .replace("\"value\": \"ALARM\"", "\"value\": \"INSUFFICIENT_DATA\"");
        assert_eq!(
            alert(&all(Format::CloudWatch, ok.as_bytes())[0]).status,
            AlertStatus::Resolved
        );
    }
}
