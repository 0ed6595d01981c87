//! What the end-to-end tests of `kaizen run` share: a Kafka-protocol broker (Nisshi, or
//! `KAIZEN_TEST_BROKERS`), a Slack Web API stub on 127.0.0.1, clients for topics, offsets and
//! consumer groups, and the `kaizen` binary as a child process stopped by a signal.
//!
//! For: `tests/run_kafka.rs` and `tests/run_restart.rs` (each includes it as `mod support;`,
//! and each uses part of it). Not for: anything but tests.

#![allow(dead_code)]

#[path = "../../connectors/tests/support/nisshi.rs"]
pub mod nisshi;
#[path = "../../connectors/tests/support/slack_stub.rs"]
pub mod slack_stub;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

pub use nisshi::{unique, Broker};

/// 2026-01-01T00:00:00Z, in seconds: event time zero of the tests' events.
pub const T0: u64 = 1_767_225_600;

/// A librdkafka config for `broker` (bootstrap servers and its TLS properties).
pub fn client(broker: &Broker) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &broker.bootstrap);
    for (k, v) in &broker.properties {
        c.set(k, v);
    }
    c
}

/// Creates single-partition topics.
pub fn create_topics(broker: &Broker, names: &[&str]) {
    let admin: AdminClient<DefaultClientContext> = client(broker).create().expect("admin client");
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|n| NewTopic::new(n, 1, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in pollster::block_on(admin.create_topics(&topics, &options)).expect("create topics")
    {
        if let Err((topic, code)) = result {
            panic!("create topic {topic}: {code}");
        }
    }
}

/// A TCP port nothing listens on right now (on 127.0.0.1).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A producer that sends at once.
pub fn producer(broker: &Broker) -> BaseProducer {
    client(broker)
        .set("linger.ms", "0")
        .create()
        .expect("producer")
}

/// Queues one message to `partition` of `topic` (call `flush` on the producer to wait).
pub fn produce(p: &BaseProducer, topic: &str, partition: i32, payload: &[u8]) {
    let mut record = BaseRecord::<[u8], [u8]>::to(topic)
        .partition(partition)
        .payload(payload);
    loop {
        match p.send(record) {
            Ok(()) => break,
            // The local queue is full: let deliveries drain it, then try again.
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                r,
            )) => {
                p.poll(Duration::from_millis(50));
                record = r;
            }
            Err((e, _)) => panic!("queue a message: {e}"),
        }
    }
    p.poll(Duration::ZERO);
}

/// Produces every payload to partition 0 of `topic`, in order, and waits for the broker.
pub fn produce_all(broker: &Broker, topic: &str, payloads: &[String]) {
    let p = producer(broker);
    for payload in payloads {
        produce(&p, topic, 0, payload.as_bytes());
    }
    p.flush(Duration::from_secs(30))
        .expect("flush the producer");
}

/// Every message of `topic` (one partition) within `wait`, once at least `n` arrived.
pub fn read(broker: &Broker, topic: &str, n: usize, wait: Duration) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = client(broker)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            out.push(m.detach());
        }
    }
    out
}

/// The offset `group` committed for partition 0 of `topic` (`None`: nothing committed).
pub fn committed(broker: &Broker, group: &str, topic: &str) -> Option<i64> {
    let consumer: BaseConsumer = client(broker)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("offsets reader");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let tpl = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    let found = tpl.find_partition(topic, 0);
    match found.map(|e| e.offset()) {
        Some(Offset::Offset(o)) => Some(o),
        _ => None,
    }
}

/// Polls `done` every 200 ms until it holds or `wait` is up; whether it held.
pub fn wait_for(wait: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `kaizen run --config FILE` as a child process, its stderr kept in a file (a pipe nobody
/// reads could fill up and stall it). Killed if still running when dropped.
pub struct Kaizen {
    child: Child,
    stderr: PathBuf,
}

impl Kaizen {
    /// Starts `kaizen run --config config` in `dir` with extra environment variables; stdout
    /// is discarded, stderr goes to `dir/<stderr_name>`.
    pub fn start(dir: &Path, config: &Path, env: &[(&str, &str)], stderr_name: &str) -> Kaizen {
        let stderr = dir.join(stderr_name);
        let file = File::create(&stderr).expect("create the stderr file");
        let child = Command::new(env!("CARGO_BIN_EXE_kaizen"))
            .args(["run", "--config"])
            .arg(config)
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("kaizen starts");
        Kaizen { child, stderr }
    }

    /// Sends a signal (`TERM`, `KILL`, …) with the `kill` command.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("the kill command runs");
        assert!(status.success(), "kill -{name} failed: {status}");
    }

    /// Waits up to `wait` for the process to exit; `None` (after killing it) if it did not.
    pub fn wait(&mut self, wait: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + wait;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` and waits up to `wait` for the exit.
    pub fn stop(&mut self, signal: &str, wait: Duration) -> Option<ExitStatus> {
        self.signal(signal);
        self.wait(wait)
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Its stderr so far.
    pub fn stderr(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.stderr) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Kaizen {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
