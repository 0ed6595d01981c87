//! `kaizen run --config kaizen.toml`: the typed configuration, its `KAIZEN_…` environment
//! overrides, and the secrets it names.
//!
//! For: reading the TOML file into [`Config`] (errors say `file:line:column`), applying
//! environment overrides over it, checking what serde cannot (formats, empty lists), and
//! loading the secrets the config names. Precedence, lowest first: built-in defaults, the
//! file, then `KAIZEN_<SECTION>_<KEY>` variables (`KAIZEN_KAFKA_BROKERS`,
//! `KAIZEN_ENGINE_WORKERS=4`; `__` descends into a table: `KAIZEN_SLACK_ROUTING__DEFAULT_CHANNEL`,
//! `KAIZEN_KAFKA_PROPERTIES__SECURITY_PROTOCOL`, where `_` in a librdkafka property name
//! becomes `.`). A value is read as TOML when it parses and fits (`4`, `true`, `["a","b"]`),
//! else as a string. Variables of other sections (`KAIZEN_LOG`) are not config. Relative
//! paths are relative to the config file's directory.
//!
//! `[[golden.mapping]]` declares metrics that kaizen's conventions do not recognise as golden
//! signals ([`GoldenSection`], docs/signals.md); they reach the engine as
//! [`EngineConfig::golden`].
//!
//! Secrets are never values in the file: they are references, `{ env = "VAR" }` or
//! `{ file = "/path" }`, resolved by [`load_secret`] into redacted [`Secret`]s, so a
//! `Config` can be printed and logged whole. Not for: starting anything (`kaizen run`).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use kaizen_connectors::slack::{Secret, SecretRef, SlackConfig};
use kaizen_connectors::{Format, HttpConfig};
use kaizen_engine::{EngineConfig, LiveConfig};
use kaizen_operators::{SignalMapping, ERROR_RATIO, LATENCY_P99_MS, REQUEST_RATE, RESTARTS};
use serde::{Deserialize, Deserializer, Serialize};

/// Everything `kaizen run` reads from `kaizen.toml`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The dataflow.
    #[serde(default)]
    pub engine: EngineSection,
    /// Kafka in and out; absent: no Kafka.
    #[serde(default)]
    pub kafka: Option<KafkaSection>,
    /// Metrics, health, webhook ingest, Slack clicks.
    #[serde(default)]
    pub http: HttpSection,
    /// Slack as one living message per incident; absent: no Slack.
    #[serde(default)]
    pub slack: Option<SlackConfig>,
    /// Where else insights go.
    #[serde(default)]
    pub sinks: SinksSection,
    /// Metrics declared as golden signals (`[[golden.mapping]]`).
    #[serde(default)]
    pub golden: GoldenSection,
}

/// `[engine]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSection {
    /// Timely worker threads.
    pub workers: usize,
    /// How late (event time) an event may be and still count.
    #[serde(with = "kaizen_connectors::duration_serde")]
    pub lateness: Duration,
    /// Topology: kaizen's JSON, a Backstage catalog .yaml/.yml, or a directory of them
    /// (docs/topology.md).
    pub topology: Option<PathBuf>,
    /// History of past incidents (JSONL, created if missing).
    pub history: Option<PathBuf>,
    /// Rule files or directories (`.sql`).
    pub rules: Vec<PathBuf>,
    /// Reload rules when their files change or on SIGHUP.
    pub watch_rules: bool,
    /// A caller → callee edge learnt from spans is forgotten this long (event time) after its
    /// last span.
    #[serde(with = "kaizen_connectors::duration_serde")]
    pub span_edge_ttl: Duration,
    /// A source partition silent this long (wall clock) stops holding event time back.
    #[serde(with = "kaizen_connectors::duration_serde")]
    pub idle_partition: Duration,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            workers: 1,
            lateness: Duration::from_secs(30),
            topology: None,
            history: None,
            rules: Vec::new(),
            watch_rules: false,
            span_edge_ttl: EngineConfig::default().span_edge_ttl,
            idle_partition: LiveConfig::default().idle_timeout,
        }
    }
}

/// `[kafka]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSection {
    /// Bootstrap servers: `"a:9092,b:9092"` or `["a:9092", "b:9092"]`.
    #[serde(deserialize_with = "string_or_list")]
    pub brokers: Vec<String>,
    /// Consumer group.
    #[serde(default = "default_group")]
    pub group_id: String,
    /// Topics read, each with its format.
    #[serde(default)]
    pub topics: Vec<TopicConfig>,
    /// Where insights are written (JSON, key = incident id); absent: not to Kafka.
    #[serde(default)]
    pub insights_topic: Option<String>,
    /// Where undecodable messages go (original bytes, reason in a header).
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// Passed to librdkafka as they are (`"security.protocol" = "SASL_SSL"`); secret ones
    /// (`sasl.password`, …) must be references.
    #[serde(default)]
    pub properties: BTreeMap<String, PropertyValue>,
}

fn default_group() -> String {
    "kaizen".into()
}

impl KafkaSection {
    /// `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> String {
        self.brokers.join(",")
    }

    /// The properties with secrets loaded. Every value is a [`Secret`], so printing the list
    /// leaks nothing; `expose()` them into librdkafka's config.
    pub fn resolved_properties(&self) -> Result<Vec<(String, Secret)>> {
        self.properties
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    PropertyValue::Plain(s) => Secret::new(s.clone()),
                    PropertyValue::Secret(r) => load_secret(r, &format!("kafka.properties.{k}"))?,
                };
                Ok((k.clone(), value))
            })
            .collect()
    }
}

/// One topic and how its messages are decoded.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// Topic name.
    pub name: String,
    /// Format name (`otlp_proto_logs`, `alertmanager`, `native`, `auto`, …).
    #[serde(deserialize_with = "format_name")]
    pub format: Format,
}

/// A librdkafka property value: plain text, or a reference to a secret.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(
    untagged,
    expecting = "a string, a number, a boolean, or a secret reference { env = \"VAR\" } / { file = \"/path\" }"
)]
pub enum PropertyValue {
    /// Passed as written.
    Plain(#[serde(deserialize_with = "scalar_text")] String),
    /// Loaded from the environment or a file.
    Secret(SecretRef),
}

/// `[http]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSection {
    /// Serve HTTP at all.
    pub enabled: bool,
    /// `host:port`; `0.0.0.0:8080` in a container.
    pub listen: String,
    /// When set, `POST /ingest/*` requires this bearer token.
    pub ingest_token: Option<SecretRef>,
    /// Largest webhook body, bytes.
    pub max_body_bytes: usize,
    /// Webhook bodies decoded at once (health and metrics never wait for them).
    pub workers: usize,
    /// Connections open at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// How long a client may take to send a request head (also the keep-alive idle time).
    #[serde(with = "kaizen_connectors::duration_serde")]
    pub head_timeout: Duration,
    /// Serve `POST /slack/interactions` (needs `[slack]` and its signing secret).
    pub slack_interactions: bool,
    /// How long a webhook may wait for room in the engine's queue before a 503.
    #[serde(with = "kaizen_connectors::duration_serde")]
    pub enqueue_timeout: Duration,
}

impl Default for HttpSection {
    fn default() -> Self {
        let d = HttpConfig::default();
        HttpSection {
            enabled: true,
            listen: d.listen,
            ingest_token: None,
            max_body_bytes: d.max_body_bytes,
            workers: d.workers,
            max_connections: d.max_connections,
            head_timeout: d.idle_timeout,
            slack_interactions: true,
            enqueue_timeout: d.enqueue_timeout,
        }
    }
}

impl HttpSection {
    /// The server's config with its secrets loaded: the ingest token, and Slack's signing
    /// secret when `[slack]` is configured and `slack_interactions` is on.
    pub fn to_http_config(&self, slack: Option<&SlackConfig>) -> Result<HttpConfig> {
        let ingest_token = match &self.ingest_token {
            Some(r) => Some(load_secret(r, "http.ingest_token")?),
            None => None,
        };
        let slack_signing_secret = match slack {
            Some(s) if self.slack_interactions => {
                Some(load_secret(&s.signing_secret, "slack.signing_secret")?)
            }
            _ => None,
        };
        Ok(HttpConfig {
            listen: self.listen.clone(),
            max_body_bytes: self.max_body_bytes,
            workers: self.workers,
            max_connections: self.max_connections,
            idle_timeout: self.head_timeout,
            ingest_token,
            slack_signing_secret,
            enqueue_timeout: self.enqueue_timeout,
            ..HttpConfig::default()
        })
    }
}

/// `[sinks]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SinksSection {
    /// Insights on stdout.
    pub stdout: StdoutFormat,
    /// Also append insights as JSON Lines to this file.
    pub file: Option<PathBuf>,
    /// Undecodable input (HTTP, or Kafka without a dead-letter topic) as JSON Lines here.
    pub dead_letter_file: Option<PathBuf>,
}

/// How insights are printed on stdout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StdoutFormat {
    /// One JSON object per insight version.
    #[default]
    Jsonl,
    /// Human-readable cards.
    Text,
    /// Nothing.
    Off,
}

/// `[golden]`: metrics kaizen's conventions do not recognise, declared as golden signals
/// (docs/signals.md).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GoldenSection {
    /// `[[golden.mapping]]` entries, tried in order before the conventions; the first that
    /// matches a sample renames it.
    pub mapping: Vec<GoldenMapping>,
}

/// One `[[golden.mapping]]`: samples of `metric` carrying all of `labels` are the golden
/// signal `signal`, their value multiplied by `scale`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GoldenMapping {
    /// The metric's name as it arrives (exact).
    pub metric: String,
    /// Labels the sample must carry, with exactly these values; empty: any sample of `metric`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// One of [`GOLDEN_SIGNALS`].
    #[serde(deserialize_with = "golden_signal")]
    pub signal: String,
    /// Multiplied into the value: 0.01 for a percentage, 1000 for seconds → milliseconds.
    #[serde(default = "unit_scale", deserialize_with = "positive_scale")]
    pub scale: f64,
}

/// The golden signals a mapping may name: what kaizen's detectors read.
pub const GOLDEN_SIGNALS: [&str; 7] = [
    ERROR_RATIO,
    REQUEST_RATE,
    LATENCY_P99_MS,
    "cpu_utilization",
    "memory_utilization",
    "saturation",
    RESTARTS,
];

fn unit_scale() -> f64 {
    1.0
}

fn golden_signal<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    if GOLDEN_SIGNALS.contains(&name.as_str()) {
        return Ok(name);
    }
    Err(serde::de::Error::custom(format!(
        "golden.mapping.signal: {name:?} is not a golden signal; expected one of {}",
        GOLDEN_SIGNALS.join(", ")
    )))
}

fn positive_scale<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let scale = f64::deserialize(d)?;
    if scale.is_finite() && scale > 0.0 {
        return Ok(scale);
    }
    Err(serde::de::Error::custom(format!(
        "golden.mapping.scale: {scale} is not a finite number above 0"
    )))
}

impl GoldenSection {
    /// The mappings as the engine takes them ([`EngineConfig::golden`]), in file order.
    pub fn mappings(&self) -> Vec<SignalMapping> {
        self.mapping
            .iter()
            .map(|m| SignalMapping {
                metric: m.metric.clone(),
                labels: m
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                signal: m.signal.clone(),
                scale: m.scale,
            })
            .collect()
    }

    fn validate(&self) -> Result<()> {
        for (i, m) in self.mapping.iter().enumerate() {
            if m.metric.trim().is_empty() {
                bail!("golden.mapping[{i}].metric is empty");
            }
            if let Some(j) = self.mapping[..i]
                .iter()
                .position(|o| o.metric == m.metric && o.labels == m.labels)
            {
                bail!(
                    "golden.mapping[{i}] maps {:?} with the same labels as golden.mapping[{j}]",
                    m.metric
                );
            }
        }
        Ok(())
    }
}

/// Sections that `KAIZEN_<SECTION>_…` variables override.
const SECTIONS: [&str; 6] = ["engine", "kafka", "http", "slack", "sinks", "golden"];

/// librdkafka properties whose values are secrets (besides `*.password`, `*.secret`).
const SECRET_PROPERTIES: [&str; 2] = ["ssl.key.pem", "sasl.oauthbearer.config"];

impl Config {
    /// Reads `path`, applies the process's `KAIZEN_…` variables, checks the result.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        Config::parse(&text, path, std::env::vars())
    }

    /// [`Config::load`] on text already read, with the given environment (for tests).
    pub fn parse(
        text: &str,
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config> {
        let located = |e: toml::de::Error| anyhow!("{}", locate(path, text, &e));
        // Syntax and types first, straight from the text, so errors carry their position
        // (after the check that keeps a secret written inline out of serde's messages).
        let mut table: toml::Table = toml::from_str(text).map_err(located)?;
        refuse_inline_secrets(&table).with_context(|| format!("config {}", path.display()))?;
        let mut config: Config = toml::from_str(text).map_err(located)?;
        let mut overrides: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| override_path(k).is_some())
            .collect();
        overrides.sort();
        for (var, raw) in &overrides {
            let Some(keys) = override_path(var) else {
                continue;
            };
            config = apply_override(&mut table, &keys, raw)
                .map_err(|e| anyhow!("environment variable {var}: {e}"))?;
            tracing::debug!("config: {} set from {var}", keys.join("."));
        }
        let dir = path.parent().unwrap_or(Path::new(""));
        config.resolve_paths(dir);
        config
            .validate()
            .with_context(|| format!("config {}", path.display()))?;
        Ok(config)
    }

    fn resolve_paths(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        let e = &mut self.engine;
        e.topology
            .iter_mut()
            .chain(e.history.iter_mut())
            .for_each(fix);
        e.rules.iter_mut().for_each(fix);
        let s = &mut self.sinks;
        s.file
            .iter_mut()
            .chain(s.dead_letter_file.iter_mut())
            .for_each(fix);
        if let Some(slack) = &mut self.slack {
            slack.state_file.iter_mut().for_each(fix);
        }
    }

    fn validate(&self) -> Result<()> {
        if self.engine.workers == 0 {
            bail!("engine.workers must be at least 1");
        }
        if self.engine.watch_rules && self.engine.rules.is_empty() {
            bail!("engine.watch_rules needs engine.rules");
        }
        if let Some(k) = &self.kafka {
            if k.brokers.is_empty() {
                bail!("kafka.brokers is empty");
            }
            if k.topics.is_empty() {
                bail!("kafka.topics is empty: name at least one {{ name, format }}");
            }
            let mut seen = std::collections::BTreeSet::new();
            for t in &k.topics {
                if t.name.trim().is_empty() || !seen.insert(t.name.as_str()) {
                    bail!("kafka.topics: topic {:?} is empty or listed twice", t.name);
                }
            }
            for (key, value) in &k.properties {
                if matches!(value, PropertyValue::Plain(_)) && is_secret_property(key) {
                    bail!(
                        "kafka.properties.{key} is a secret: write {{ env = \"VAR\" }} or \
                         {{ file = \"/path\" }}, not the value"
                    );
                }
            }
        }
        if self.http.enabled && self.http.listen.trim().is_empty() {
            bail!("http.listen is empty");
        }
        if self.http.max_body_bytes == 0 || self.http.workers == 0 || self.http.max_connections == 0
        {
            bail!("http.max_body_bytes, http.workers and http.max_connections must be at least 1");
        }
        if let Some(s) = &self.slack {
            if s.routing.default_channel.trim().is_empty() {
                bail!("slack.routing.default_channel must name a channel");
            }
        }
        self.golden.validate()
    }
}

fn is_secret_property(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_PROPERTIES.contains(&k.as_str()) || k.ends_with(".password") || k.ends_with(".secret")
}

/// Loads a secret reference; `what` names it in errors (the value never appears).
pub fn load_secret(r: &SecretRef, what: &str) -> Result<Secret> {
    let value = if let Some(path) = &r.file {
        std::fs::read_to_string(path)
            .with_context(|| format!("{what}: cannot read {}", path.display()))?
    } else if let Some(var) = &r.env {
        std::env::var(var).map_err(|_| anyhow!("{what}: environment variable {var} is not set"))?
    } else {
        bail!("{what}: a secret reference needs env = \"VAR\" or file = \"/path\"");
    };
    let value = value.trim();
    if value.is_empty() {
        bail!("{what}: the secret is empty");
    }
    Ok(Secret::new(value))
}

/// `KAIZEN_KAFKA_GROUP_ID` → `["kafka", "group_id"]`; `KAIZEN_SLACK_ROUTING__DEFAULT_CHANNEL`
/// → `["slack", "routing", "default_channel"]`; `KAIZEN_KAFKA_PROPERTIES__SASL_USERNAME` →
/// `["kafka", "properties", "sasl.username"]`. `None`: not a config variable.
fn override_path(var: &str) -> Option<Vec<String>> {
    let rest = var.strip_prefix("KAIZEN_")?;
    let (section, key) = rest.split_once('_')?;
    let section = section.to_ascii_lowercase();
    if !SECTIONS.contains(&section.as_str()) || key.is_empty() {
        return None;
    }
    let mut keys = vec![section];
    keys.extend(key.split("__").map(str::to_ascii_lowercase));
    if keys.len() == 3 && keys[0] == "kafka" && keys[1] == "properties" {
        keys[2] = keys[2].replace('_', ".");
    }
    if keys.iter().any(String::is_empty) {
        return None;
    }
    Some(keys)
}

/// Sets `keys` in `table` to `raw` (as TOML if that parses and the config accepts it, else
/// as a string) and returns the config it gives.
fn apply_override(table: &mut toml::Table, keys: &[String], raw: &str) -> Result<Config> {
    let typed = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"));
    let mut first_err = None;
    for value in typed
        .into_iter()
        .chain([toml::Value::String(raw.to_owned())])
    {
        let mut candidate = table.clone();
        set_path(&mut candidate, keys, value)?;
        refuse_inline_secrets(&candidate)?;
        match toml::Value::Table(candidate.clone()).try_into::<Config>() {
            Ok(config) => {
                *table = candidate;
                return Ok(config);
            }
            Err(e) => {
                first_err.get_or_insert(e.message().to_owned());
            }
        }
    }
    Err(anyhow!(first_err.unwrap_or_default()))
}

/// Secret references that serde would otherwise reject by quoting the value.
const SECRET_KEYS: [[&str; 2]; 3] = [
    ["http", "ingest_token"],
    ["slack", "token"],
    ["slack", "signing_secret"],
];

/// Refuses a secret written as a value, without repeating it.
fn refuse_inline_secrets(table: &toml::Table) -> Result<()> {
    for [section, key] in SECRET_KEYS {
        let value = table.get(section).and_then(|s| s.get(key));
        if value.is_some_and(|v| !v.is_table()) {
            bail!(
                "{section}.{key} is a secret: write {{ env = \"VAR\" }} or {{ file = \"/path\" }}, \
                 not the value"
            );
        }
    }
    Ok(())
}

fn set_path(table: &mut toml::Table, keys: &[String], value: toml::Value) -> Result<()> {
    let Some((last, parents)) = keys.split_last() else {
        bail!("empty key");
    };
    let mut at = table;
    for k in parents {
        let slot = at
            .entry(k.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        at = match slot {
            toml::Value::Table(t) => t,
            _ => bail!("{k} is not a table"),
        };
    }
    at.insert(last.clone(), value);
    Ok(())
}

/// `path:line:column: message` from a TOML error's span.
fn locate(path: &Path, text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{}:{line}:{column}: {message}", path.display())
        }
        None => format!("{}: {message}", path.display()),
    }
}

fn format_name<'de, D: Deserializer<'de>>(d: D) -> Result<Format, D::Error> {
    let name = String::deserialize(d)?;
    Format::from_str(&name).map_err(serde::de::Error::custom)
}

fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(
        untagged,
        expecting = "\"host:port,host:port\" or a list of \"host:port\""
    )]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    let list = match Raw::deserialize(d)? {
        Raw::One(s) => s.split(',').map(str::to_owned).collect(),
        Raw::Many(v) => v,
    };
    Ok(list
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect())
}

fn scalar_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Int(i64),
        Float(f64),
        Bool(bool),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::Text(s) => s,
        Raw::Int(i) => i.to_string(),
        Raw::Float(f) => f.to_string(),
        Raw::Bool(b) => b.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key of every section, as `section.key` paths with the default's JSON value.
    fn default_keys() -> Vec<(String, serde_json::Value)> {
        fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
            match v {
                serde_json::Value::Object(map) if !map.is_empty() => {
                    for (k, v) in map {
                        walk(&format!("{prefix}.{k}"), v, out);
                    }
                }
                _ => out.push((prefix.to_owned(), v.clone())),
            }
        }
        let mut out = Vec::new();
        let sections = [
            ("engine", serde_json::to_value(EngineSection::default())),
            ("http", serde_json::to_value(HttpSection::default())),
            (
                "slack",
                serde_json::to_value(SlackConfig::new("#incidents")),
            ),
            ("sinks", serde_json::to_value(SinksSection::default())),
            ("golden", serde_json::to_value(GoldenSection::default())),
        ];
        for (name, value) in sections {
            walk(name, &value.unwrap(), &mut out);
        }
        out
    }

    fn toml_at<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
        let mut parts = path.split('.');
        let mut v = table.get(parts.next()?)?;
        for p in parts {
            v = v.as_table()?.get(p)?;
        }
        Some(v)
    }

    #[test]
    fn the_example_config_names_every_key_with_its_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("kaizen.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        Config::parse(&text, &path, std::iter::empty()).unwrap_or_else(|e| panic!("{e:#}"));
        let table: toml::Table = toml::from_str(&text).unwrap();
        for (key, default) in default_keys() {
            let leaf = key.rsplit('.').next().unwrap();
            match toml_at(&table, &key) {
                // A key without a default is shown commented out; a list of tables, empty by
                // default, as a commented-out entry.
                None => assert!(
                    (default.is_null() && text.contains(&format!("# {leaf} = ")))
                        || (default == serde_json::json!([])
                            && text.contains(&format!("# [[{key}]]"))),
                    "kaizen.example.toml lacks {key} (default {default})"
                ),
                Some(shown) => {
                    let shown = serde_json::to_value(shown).unwrap();
                    let secret_ref = shown.get("env").is_some() || shown.get("file").is_some();
                    assert!(
                        shown == default || secret_ref,
                        "kaizen.example.toml shows {key} = {shown}, the default is {default}"
                    );
                }
            }
        }
    }

    /// kaizen.example.toml with its commented-out `[[golden.mapping]]` entry switched on.
    fn example_with_mapping() -> String {
        let text = include_str!("../kaizen.example.toml");
        let mut out = String::new();
        let mut on = false;
        for line in text.lines() {
            on = line.starts_with("# [[golden.mapping]]") || (on && line.starts_with('#'));
            let line = if on {
                line.strip_prefix("# ").unwrap_or(line)
            } else {
                line
            };
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    #[test]
    fn the_example_mapping_reads_and_every_mapping_key_is_in_it() {
        let text = example_with_mapping();
        let c = parse(&text, &[]).unwrap_or_else(|e| panic!("{e:#}\n{text}"));
        assert_eq!(c.golden.mapping.len(), 1, "{text}");
        let entry = serde_json::to_value(&c.golden.mapping[0]).unwrap();
        for key in entry.as_object().unwrap().keys() {
            assert!(text.contains(&format!("\n{key} = ")), "example lacks {key}");
        }
    }

    #[test]
    fn a_golden_mapping_reaches_the_engine_config() {
        let text = "[[golden.mapping]]\nmetric = \"shop_checkout_failures_pct\"\n\
                    labels = { env = \"prod\" }\nsignal = \"http_error_ratio\"\nscale = 0.01\n\
                    [[golden.mapping]]\nmetric = \"queue_fill\"\nsignal = \"saturation\"\n";
        let c = parse(text, &[]).unwrap();
        let engine = EngineConfig {
            golden: c.golden.mappings(),
            ..EngineConfig::default()
        };
        assert_eq!(
            engine.golden,
            vec![
                SignalMapping {
                    metric: "shop_checkout_failures_pct".into(),
                    labels: vec![("env".into(), "prod".into())],
                    signal: ERROR_RATIO.into(),
                    scale: 0.01,
                },
                SignalMapping {
                    metric: "queue_fill".into(),
                    labels: Vec::new(),
                    signal: "saturation".into(),
                    scale: 1.0,
                },
            ]
        );
        assert!(parse("", &[]).unwrap().golden.mappings().is_empty());
        // The list can come from the environment too, replacing the file's.
        let env = [(
            "KAIZEN_GOLDEN_MAPPING",
            "[{ metric = \"jvm_restarts\", signal = \"container_restarts\" }]",
        )];
        let c = parse(text, &env).unwrap();
        let names: Vec<_> = c.golden.mapping.iter().map(|m| m.metric.as_str()).collect();
        assert_eq!(names, ["jvm_restarts"]);
    }

    #[test]
    fn a_golden_mapping_names_a_known_signal_with_a_positive_scale() {
        let entry = |extra: &str| format!("[[golden.mapping]]\nmetric = \"m\"\n{extra}\n");
        let e = err(&entry("signal = \"error_rate\""), &[]);
        assert!(
            e.starts_with(
                "/etc/kaizen/kaizen.toml:3:10: golden.mapping.signal: \"error_rate\" \
                           is not a golden signal; expected one of http_error_ratio, \
                           http_requests_per_second, http_latency_p99_ms, cpu_utilization, \
                           memory_utilization, saturation, container_restarts"
            ),
            "{e}"
        );
        for scale in ["0", "-1", "nan", "inf"] {
            let e = err(
                &entry(&format!("signal = \"saturation\"\nscale = {scale}")),
                &[],
            );
            assert!(
                e.starts_with("/etc/kaizen/kaizen.toml:4:")
                    && e.contains("golden.mapping.scale: ")
                    && e.contains("is not a finite number above 0"),
                "{scale}: {e}"
            );
        }
        let e = err(&entry("signal = \"saturation\"\nscale = \"1%\""), &[]);
        assert!(e.starts_with("/etc/kaizen/kaizen.toml:4:"), "{e}");
        let e = err(
            &entry("signal = \"saturation\"\nlabel = { a = \"b\" }"),
            &[],
        );
        assert!(e.contains("unknown field `label`"), "{e}");
        let e = err("[[golden.mapping]]\nsignal = \"saturation\"\n", &[]);
        assert!(e.contains("missing field `metric`"), "{e}");
        let twice = format!(
            "{}{}",
            entry("signal = \"saturation\""),
            entry("signal = \"cpu_utilization\"")
        );
        let e = err(&twice, &[]);
        assert!(
            e.contains("golden.mapping[1] maps \"m\" with the same labels as golden.mapping[0]"),
            "{e}"
        );
        let env = [(
            "KAIZEN_GOLDEN_MAPPING",
            "[{ metric = \"m\", signal = \"latency\" }]",
        )];
        let e = err("", &env);
        assert!(
            e.starts_with("environment variable KAIZEN_GOLDEN_MAPPING: ")
                && e.contains("\"latency\" is not a golden signal"),
            "{e}"
        );
    }

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<Config> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::parse(text, Path::new("/etc/kaizen/kaizen.toml"), env)
    }

    fn err(text: &str, env: &[(&str, &str)]) -> String {
        parse(text, env).map_or_else(|e| format!("{e:#}"), |c| format!("accepted: {c:?}"))
    }

    #[test]
    fn the_example_config_reads_and_an_empty_one_is_all_defaults() {
        let c = parse(include_str!("../kaizen.example.toml"), &[]).unwrap();
        assert!(!c.kafka.as_ref().unwrap().topics.is_empty() && c.slack.is_some());
        // Debug (what a log would show) says where secrets come from, never what they are.
        assert!(format!("{c:?}").contains("KAFKA_PASSWORD"));
        let c = parse("[engine]\ntopology = \"topology.json\"\n", &[]).unwrap();
        let topology = c.engine.topology.as_deref();
        assert_eq!(topology, Some(Path::new("/etc/kaizen/topology.json")));
        let c = parse("", &[]).unwrap();
        assert_eq!(
            (c.engine.workers, c.engine.lateness),
            (1, Duration::from_secs(30))
        );
        assert_eq!(
            (c.engine.span_edge_ttl, c.engine.idle_partition),
            (Duration::from_secs(3600), Duration::from_secs(10))
        );
        assert!(c.kafka.is_none() && c.slack.is_none() && c.http.enabled);
        assert_eq!(c.sinks.stdout, StdoutFormat::Jsonl);
    }

    #[test]
    fn errors_say_file_line_and_column() {
        let e = err("[engine]\nworkers = 2\nlateness = \"soon\"\n", &[]);
        assert!(e.starts_with("/etc/kaizen/kaizen.toml:3:12: "), "{e}");
        let e = err("[engine]\nworkerz = 2\n", &[]);
        assert!(
            e.starts_with("/etc/kaizen/kaizen.toml:2:1: unknown field"),
            "{e}"
        );
        let topics = "[kafka]\nbrokers = \"b\"\ntopics = [{ name = \"t\", format = \"otlp\" }]\n";
        let e = err(topics, &[]);
        assert!(e.contains(":3:") && e.contains("unknown format"), "{e}");
        let e = err("[engine\n", &[]);
        assert!(e.starts_with("/etc/kaizen/kaizen.toml:1:"), "{e}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let text = "[engine]\nworkers = 2\n[kafka]\nbrokers = \"a:9092\"\ngroup_id = \"g\"\n\
                    topics = [{ name = \"alerts\", format = \"alertmanager\" }]\n";
        let env = [
            ("KAIZEN_ENGINE_WORKERS", "4"),
            ("KAIZEN_KAFKA_BROKERS", "x:9092, y:9092"),
            ("KAIZEN_KAFKA_GROUP_ID", "12345"),
            ("KAIZEN_KAFKA_PROPERTIES__SECURITY_PROTOCOL", "SASL_SSL"),
            ("KAIZEN_HTTP_LISTEN", "0.0.0.0:9000"),
            ("KAIZEN_SINKS_STDOUT", "text"),
            ("KAIZEN_LOG", "debug"),
            ("KAIZEN_TEST_BROKERS", "elsewhere:9092"),
        ];
        let c = parse(text, &env).unwrap();
        assert_eq!(c.engine.workers, 4);
        let k = c.kafka.unwrap();
        assert_eq!(
            (k.bootstrap_servers().as_str(), k.group_id.as_str()),
            ("x:9092,y:9092", "12345")
        );
        let protocol = k.properties.get("security.protocol");
        assert_eq!(protocol, Some(&PropertyValue::Plain("SASL_SSL".into())));
        assert_eq!(c.http.listen, "0.0.0.0:9000");
        assert_eq!(c.sinks.stdout, StdoutFormat::Text);
        let nested = [("KAIZEN_SLACK_ROUTING__DEFAULT_CHANNEL", "#ops")];
        let c = parse("[slack.routing]\ndefault_channel = \"#x\"\n", &nested).unwrap();
        assert_eq!(c.slack.unwrap().routing.default_channel, "#ops");

        let e = err("", &[("KAIZEN_ENGINE_WORKERS", "many")]);
        assert!(
            e.starts_with("environment variable KAIZEN_ENGINE_WORKERS: "),
            "{e}"
        );
        assert!(err("", &[("KAIZEN_ENGINE_WORKRS", "2")]).contains("workrs"));
    }

    #[test]
    fn secrets_are_references_never_values() {
        let inline = "[kafka]\nbrokers = \"b\"\ntopics = [{ name = \"t\", format = \"native\" }]\n\
                      [kafka.properties]\n\"sasl.password\" = \"hunter2\"\n";
        let e = err(inline, &[]);
        assert!(
            e.contains("kafka.properties.sasl.password is a secret"),
            "{e}"
        );
        let env = [("KAIZEN_KAFKA_PROPERTIES__SASL_PASSWORD", "hunter2")];
        let e2 = err(&inline.replace("hunter2", "x"), &env);
        assert!(!e.contains("hunter2") && e2.contains("is a secret") && !e2.contains("hunter2"));
        for (text, var) in [
            (
                "[http]\ningest_token = \"abc\"\n",
                "KAIZEN_HTTP_INGEST_TOKEN",
            ),
            ("[slack]\ntoken = \"abc\"\n", "KAIZEN_SLACK_TOKEN"),
        ] {
            for e in [err(text, &[]), err("", &[(var, "abc")])] {
                assert!(e.contains("is a secret") && !e.contains("abc"), "{e}");
            }
        }
        let dir = std::env::temp_dir().join(format!("kaizen-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let token = dir.join("token");
        std::fs::write(&token, "s3cret\n").unwrap();
        let text = format!(
            "[http]\ningest_token = {{ file = {:?} }}\n",
            token.display().to_string()
        );
        let http = parse(&text, &[])
            .unwrap()
            .http
            .to_http_config(None)
            .unwrap();
        assert_eq!(
            http.ingest_token.as_ref().map(Secret::expose),
            Some("s3cret")
        );
        assert!(!format!("{http:?}").contains("s3cret"));
        std::fs::remove_dir_all(&dir).unwrap();
        let missing = SecretRef {
            env: Some("KAIZEN_TEST_SURELY_UNSET".into()),
            file: None,
        };
        let e = load_secret(&missing, "http.ingest_token")
            .unwrap_err()
            .to_string();
        assert!(e.contains("KAIZEN_TEST_SURELY_UNSET is not set"), "{e}");
    }
}
