//! What the engine runs with.

use std::sync::Arc;
use std::time::Duration;

use kaizen_model::{PastIncident, Topology};
use kaizen_operators::{
    AlertConfig, AlertPipeline, BurnWindow, ChangeFeed, ColdStartConfig, ColdStartDetector,
    CorrelatorConfig, Detector, LogTemplateConfig, LogTemplateDetector, MetricAnomalyConfig,
    MetricAnomalyDetector, RecallConfig, SignalMapping, SloBurnDetector, ThresholdDetector,
    ThresholdRule,
};
use kaizen_rules::LiveRules;

/// Builds one worker's set of detectors. Every worker gets its own instances; events are
/// partitioned by service, so a detector only ever sees the services routed to its worker.
pub type DetectorFactory = Arc<dyn Fn() -> Vec<Box<dyn Detector>> + Send + Sync>;

/// Engine configuration. `Default` is what `kaizen replay` runs with.
#[derive(Clone)]
pub struct EngineConfig {
    /// Timely worker threads.
    pub workers: usize,
    /// How far behind the newest event time an event may arrive and still be processed.
    /// Later events are counted and reported as late, never silently dropped.
    pub allowed_lateness: Duration,
    /// Watermark granularity: the frontier advances in steps of this much event time.
    pub tick: Duration,
    /// The service topology, if known (edges are also learned from spans).
    pub topology: Topology,
    /// A call edge learned from spans leaves the graph this long (event time) after its last
    /// span; topology edges stay.
    pub span_edge_ttl: Duration,
    /// Metrics declared as golden signals, beyond the conventions kaizen reads by itself
    /// (OpenTelemetry, Prometheus; see `kaizen_operators::GoldenSignals`).
    pub golden: Vec<SignalMapping>,
    /// Static metric thresholds (absolute limits, on top of the learned baselines).
    pub thresholds: Vec<ThresholdRule>,
    /// Learned per-series baselines and anomaly windows.
    pub anomaly: MetricAnomalyConfig,
    /// Log template mining: new, spiking and error templates.
    pub log_templates: LogTemplateConfig,
    /// Alert dedup, flapping, grouping, inhibition and silences.
    pub alerts: AlertConfig,
    /// Incident correlation.
    pub correlator: CorrelatorConfig,
    /// Records read per batch before the workers are stepped.
    pub batch_size: usize,
    /// Recall of similar past incidents.
    pub recall: RecallConfig,
    /// Past incidents to recall from (loaded by the caller; updates come back through
    /// `ReplayHooks::on_history`).
    pub history: Vec<PastIncident>,
    /// User rules (`queries/`), replaceable while running; `None` runs no rule operators.
    pub rules: Option<LiveRules>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 1,
            allowed_lateness: Duration::from_secs(30),
            tick: Duration::from_secs(1),
            topology: Topology::default(),
            span_edge_ttl: Duration::from_secs(3600),
            golden: Vec::new(),
            thresholds: ThresholdRule::defaults(),
            anomaly: MetricAnomalyConfig::default(),
            log_templates: LogTemplateConfig::default(),
            alerts: AlertConfig::default(),
            correlator: CorrelatorConfig::default(),
            batch_size: 4096,
            recall: RecallConfig::default(),
            history: Vec::new(),
            rules: None,
        }
    }
}

impl EngineConfig {
    /// The detectors each worker runs over the services routed to it (every event but alerts).
    /// New per-service detectors plug in here.
    pub fn detector_factory(&self) -> DetectorFactory {
        let thresholds = self.thresholds.clone();
        let anomaly = self.anomaly.clone();
        let log_templates = self.log_templates.clone();
        let topology = self.topology.clone();
        Arc::new(move || {
            vec![
                Box::new(MetricAnomalyDetector::new(anomaly.clone())) as Box<dyn Detector>,
                Box::new(ColdStartDetector::new(ColdStartConfig {
                    warm_points: anomaly.scorer.warmup_points,
                    ..ColdStartConfig::default()
                })),
                Box::new(LogTemplateDetector::new(log_templates.clone())),
                Box::new(ThresholdDetector::new(thresholds.clone())),
                Box::new(SloBurnDetector::new(&topology, BurnWindow::workbook())),
                Box::new(ChangeFeed),
            ]
        })
    }

    /// The detectors that need every alert in one place (silences and inhibition look across
    /// services). They run on worker 0; alerts are a tiny share of the events.
    pub fn alert_detector_factory(&self) -> DetectorFactory {
        let alerts = self.alerts.clone();
        Arc::new(move || vec![Box::new(AlertPipeline::new(alerts.clone())) as Box<dyn Detector>])
    }
}
