//! `kaizen run --config kaizen.toml`: the long-running service. Kafka topics and HTTP webhooks
//! in; insights to stdout, a file, a Kafka topic and Slack; `/metrics`, `/livez`, `/readyz`;
//! graceful shutdown on SIGTERM or SIGINT (stop intake, deliver what is in flight, commit).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc, Mutex};

use anyhow::{Context, Result};
use clap::Args;
use kaizen_connectors::kafka::KafkaSinkConfig;
use kaizen_connectors::metrics::{
    register_process_metrics, register_slack_stats, CONSUMER_LAG, DEAD_LETTERS, DECODE_ERRORS,
    EVENTS_IN, INSIGHTS_EMITTED, LATE_EVENTS,
};
use kaizen_connectors::{
    load_history, read_topology, DeadLetterSink, DecodeFailure, HistoryWriter, HttpDeps,
    HttpServer, InsightSink, JsonlSink, KafkaDeadLetter, KafkaInsightSink, KafkaSource,
    KafkaSourceConfig, Readiness, Registry, SlackSink, TerminalSink, TerminalStyle,
};
use kaizen_engine::{
    run_live, Both, ChannelLive, EngineConfig, KafkaLive, LiveConfig, LiveHooks, LiveSource,
};

use crate::config::{Config, StdoutFormat};

mod engine_metrics;
use crate::dead_letters::{DeadLetterFile, DeadLetterOut, DeadLettering, DeadLetters};
use engine_metrics::EngineMetrics;

#[derive(Args)]
pub struct RunArgs {
    /// The TOML configuration (see kaizen.example.toml); `KAIZEN_<SECTION>_<KEY>` variables
    /// override it.
    #[arg(long, short = 'c')]
    config: PathBuf,
}

/// Every insight sink the config asks for, as one.
struct Fanout {
    sinks: Vec<Box<dyn InsightSink>>,
    emitted: kaizen_connectors::Counter,
}

impl InsightSink for Fanout {
    fn emit(&mut self, insight: &kaizen_model::Insight) -> io::Result<()> {
        self.emitted.inc();
        for s in &mut self.sinks {
            s.emit(insight)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        for s in &mut self.sinks {
            s.flush()?;
        }
        Ok(())
    }
}

pub fn run(args: RunArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    let metrics = Arc::new(Registry::new());
    register_process_metrics(&metrics);
    let readiness = Readiness::new();
    let mut engine = EngineConfig {
        workers: config.engine.workers.max(1),
        allowed_lateness: config.engine.lateness,
        span_edge_ttl: config.engine.span_edge_ttl,
        golden: config.golden.mappings(),
        ..EngineConfig::default()
    };
    if let Some(path) = &config.engine.topology {
        engine.topology = read_topology(path)?;
    }
    let mut history = match &config.engine.history {
        Some(path) => {
            engine.history = load_history(path)?;
            Some(
                HistoryWriter::open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?,
            )
        }
        None => None,
    };
    let _watcher =
        crate::replay::load_rules(&config.engine.rules, config.engine.watch_rules, &mut engine)?;

    // Sources: one Kafka consumer per worker (one group), HTTP ingest on worker 0.
    let mut sources: Vec<Vec<Box<dyn LiveSource>>> =
        (0..engine.workers).map(|_| Vec::new()).collect();
    let mut kafka_sink_config = None;
    let mut dead_letters = None;
    let dead_letter_file: Option<DeadLetterFile> = match &config.sinks.dead_letter_file {
        Some(p) => Some(Arc::new(Mutex::new(DeadLetterSink::new(BufWriter::new(
            File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        ))))),
        None => None,
    };
    if let Some(kafka) = &config.kafka {
        let mut props = std::collections::BTreeMap::new();
        for (k, v) in kafka.resolved_properties()? {
            props.insert(k, v.expose().to_string());
        }
        let topics: Vec<(&str, kaizen_connectors::Format)> = kafka
            .topics
            .iter()
            .map(|t| (t.name.as_str(), t.format))
            .collect();
        let mut source_config =
            KafkaSourceConfig::new(&kafka.bootstrap_servers(), &kafka.group_id, &topics);
        source_config.properties = props.clone();
        // The topic when there is one, else the file: either way written by the worker that
        // read the message, before that worker commits past it.
        let dead_letter_out = match (&kafka.dead_letter_topic, &dead_letter_file) {
            (Some(topic), _) => {
                let mut c = KafkaSinkConfig::new(&kafka.bootstrap_servers(), topic);
                c.properties = props.clone();
                let producer =
                    KafkaDeadLetter::new(&c).context("cannot start the dead-letter producer")?;
                Some(DeadLetterOut::Topic(producer))
            }
            (None, Some(file)) => Some(DeadLetterOut::File(file.clone())),
            (None, None) => None,
        };
        dead_letters = dead_letter_out.map(DeadLetters::new);
        for (w, slot) in sources.iter_mut().enumerate() {
            let mut consumer =
                KafkaSource::new(&source_config, w).context("cannot start the Kafka consumer")?;
            consumer.time_decodes_into(&metrics);
            let source = KafkaLive::new(consumer);
            match &dead_letters {
                Some(dl) => slot.push(Box::new(DeadLettering::new(
                    source,
                    dl.clone(),
                    metrics.counter(&DEAD_LETTERS, &[]),
                ))),
                None => slot.push(Box::new(source)),
            }
        }
        kafka_sink_config = kafka
            .insights_topic
            .clone()
            .map(|topic| (kafka.bootstrap_servers(), props, topic));
    }
    let mut _http = None;
    if config.http.enabled {
        let (tx, rx) = mpsc::sync_channel(65_536);
        let file = dead_letter_file.clone();
        let dead_letter: Option<kaizen_connectors::http::DeadLetterFn> = file.map(|f| {
            let f: kaizen_connectors::http::DeadLetterFn =
                Arc::new(move |p: &kaizen_connectors::RejectedPayload| {
                    if let Ok(mut sink) = f.lock() {
                        let _ = sink.record(&DecodeFailure {
                            source: format!("{}:{}", p.source, p.format),
                            line: 0,
                            reason: p.reason.to_string(),
                            raw: String::from_utf8_lossy(p.payload).into_owned(),
                        });
                    }
                });
            f
        });
        let server = HttpServer::start(
            config.http.to_http_config(config.slack.as_ref())?,
            HttpDeps {
                events: tx,
                metrics: metrics.clone(),
                readiness: readiness.clone(),
                dead_letter,
            },
        )
        .context("cannot start the HTTP server")?;
        eprintln!("kaizen: listening on http://{}", server.local_addr());
        _http = Some(server);
        if let Some(first) = sources.first_mut() {
            first.push(Box::new(ChannelLive::new(rx, "http")));
        }
    }

    // Sinks.
    let mut sinks: Vec<Box<dyn InsightSink>> = Vec::new();
    match config.sinks.stdout {
        StdoutFormat::Jsonl => sinks.push(Box::new(JsonlSink::new(BufWriter::new(io::stdout())))),
        StdoutFormat::Text => sinks.push(Box::new(TerminalSink::new(
            BufWriter::new(io::stdout()),
            TerminalStyle {
                color: crate::replay::color_allowed(),
                compact_updates: true,
            },
        ))),
        StdoutFormat::Off => {}
    }
    if let Some(path) = &config.sinks.file {
        let f = File::options()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        sinks.push(Box::new(JsonlSink::new(BufWriter::new(f))));
    }
    if let Some((brokers, props, topic)) = &kafka_sink_config {
        let mut c = KafkaSinkConfig::new(brokers, topic);
        c.properties = props.clone();
        sinks.push(Box::new(
            KafkaInsightSink::new(&c).context("cannot start the Kafka producer")?,
        ));
    }
    if let Some(slack) = &config.slack {
        let mut slack = slack.clone();
        slack.routing.apply_topology(&engine.topology);
        let sink = SlackSink::new(slack).context("cannot start the Slack sink")?;
        register_slack_stats(&metrics, sink.stats_handle());
        sinks.push(Box::new(sink));
    }
    let mut fanout = Fanout {
        sinks,
        emitted: metrics.counter(&INSIGHTS_EMITTED, &[]),
    };

    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, shutdown.clone()).context("cannot handle signals")?;
    }
    let slots: Vec<Option<Box<dyn LiveSource>>> = sources
        .into_iter()
        .map(|mut s| match s.len() {
            0 => None,
            1 => s.pop(),
            _ => Some(Box::new(Both(s)) as Box<dyn LiveSource>),
        })
        .collect();

    let decode_errors = metrics.counter(&DECODE_ERRORS, &[]);
    let late = metrics.counter(&LATE_EVENTS, &[]);
    // Only Kafka sources yield undecodable records, and their worker already kept them (see
    // `DeadLettering`): here they are counted and logged.
    let mut on_rejected = |p: &kaizen_engine::Partition, offset: i64, _: &[u8], reason: &str| {
        decode_errors.inc();
        tracing::warn!(
            "undecodable message at {}/{}@{offset}: {reason}",
            p.stream,
            p.partition
        );
    };
    let mut on_late = |p: &kaizen_engine::Partition, offset: i64, e: &kaizen_model::Event| {
        late.inc();
        tracing::warn!(
            "late event at {}/{}@{offset}: {}",
            p.stream,
            p.partition,
            e.ts
        );
    };
    // HTTP ingest counts its events at the route, where their format is known.
    let topic_formats: std::collections::HashMap<String, &'static str> = config
        .kafka
        .iter()
        .flat_map(|k| &k.topics)
        .map(|t| (t.name.clone(), t.format.name()))
        .collect();
    let mut on_events = |p: &kaizen_engine::Partition, n: u64| {
        if let Some(format) = topic_formats.get(p.stream.as_str()) {
            let labels = [
                ("source", "kafka"),
                ("topic", p.stream.as_str()),
                ("format", format),
            ];
            metrics.counter(&EVENTS_IN, &labels).add(n);
        }
    };
    let mut on_history = |p: &kaizen_model::PastIncident| {
        if let Some(h) = history.as_mut() {
            if let Err(e) = h.append(p) {
                tracing::error!("cannot write history record {}: {e}", p.id);
            }
        }
    };
    let mut on_lag = |p: &kaizen_engine::Partition, n: i64| {
        let partition = p.partition.to_string();
        metrics
            .gauge(
                &CONSUMER_LAG,
                &[("topic", p.stream.as_str()), ("partition", &partition)],
            )
            .set(n as f64);
    };
    let engine_metrics = EngineMetrics::new(metrics.clone());
    let mut on_source_time =
        |p: &kaizen_engine::Partition, ts: u64| engine_metrics.source_time(p, ts);
    let mut on_frontier = |ts: u64| engine_metrics.frontier(ts);
    let mut on_emitted = |i: &kaizen_model::Insight, since: Option<std::time::Duration>| {
        engine_metrics.emitted(i, since)
    };
    let mut on_commit_error =
        |e: &str| tracing::error!("offset commit failed (records will be re-read): {e}");
    readiness.set(true);
    eprintln!(
        "kaizen: running on {} workers; SIGTERM or Ctrl-C stops",
        engine.workers
    );
    let report = run_live(
        slots,
        &engine,
        &LiveConfig {
            idle_timeout: config.engine.idle_partition,
            ..LiveConfig::default()
        },
        &mut fanout,
        LiveHooks {
            on_rejected: Some(&mut on_rejected),
            on_late: Some(&mut on_late),
            on_history: Some(&mut on_history),
            on_events: Some(&mut on_events),
            on_commit_error: Some(&mut on_commit_error),
            on_lag: Some(&mut on_lag),
            on_source_time: Some(&mut on_source_time),
            on_frontier: Some(&mut on_frontier),
            on_emitted: Some(&mut on_emitted),
        },
        shutdown,
    )?;
    readiness.set(false);
    fanout.flush()?;
    if let Some(dl) = &dead_letters {
        dl.lock()
            .map_err(|_| anyhow::anyhow!("the dead-letter output is poisoned"))?
            .flush()
            .map_err(|e| anyhow::anyhow!("cannot flush the dead letters: {e}"))?;
    }
    if let Some(f) = &dead_letter_file {
        if let Ok(mut sink) = f.lock() {
            sink.flush().context("cannot write the dead-letter file")?;
        }
    }
    if let Some(h) = history.as_mut() {
        h.flush().context("cannot write the history")?;
    }
    io::stdout().flush()?;
    eprintln!(
        "kaizen: stopped: {} events, {} undecodable, {} late, {} insight versions",
        report.events, report.rejected, report.late, report.insights
    );
    Ok(())
}
