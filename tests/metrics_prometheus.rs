//! `/metrics` read by a real Prometheus server: `kaizen run` (HTTP only) takes a few webhooks,
//! Prometheus (Debian's `prometheus` package, on 127.0.0.1) scrapes it every second, and its
//! query API must return kaizen's counters, gauges and histograms — so the OpenMetrics page
//! is parsed by the parser that matters, not by a test's own.
//!
//! Needs the `prometheus` binary on `PATH` (`.ci/run` installs Debian's package when it is
//! missing); `KAIZEN_SKIP_PROMETHEUS_TESTS=1` skips it on purpose.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{free_port, wait_for, Kaizen};

/// A Prometheus server scraping one target every second; killed when dropped.
struct Prometheus {
    child: Child,
    port: u16,
}

impl Prometheus {
    fn start(dir: &Path, target: &str) -> Option<Prometheus> {
        if std::env::var_os("KAIZEN_SKIP_PROMETHEUS_TESTS").is_some_and(|v| v == "1") {
            eprintln!("Prometheus test skipped (KAIZEN_SKIP_PROMETHEUS_TESTS=1)");
            return None;
        }
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: kaizen\n    static_configs:\n      - targets: [\"{target}\"]\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `prometheus` ({e}): install Debian's package \
                     (apt-get install prometheus) or set KAIZEN_SKIP_PROMETHEUS_TESTS=1"
                )
            });
        Some(Prometheus { child, port })
    }

    /// `GET /api/v1/{path}` as JSON (`None` until the server answers).
    fn api(&self, path_and_query: &str) -> Option<Value> {
        let (status, body) = http(self.port, "GET", &format!("/api/v1/{path_and_query}"), "")?;
        (status == 200).then(|| serde_json::from_str(&body).ok())?
    }

    /// The instant vector of `query`.
    fn query(&self, query: &str) -> Vec<Value> {
        let q: String = form_encode(query);
        self.api(&format!("query?query={q}"))
            .and_then(|v| v["data"]["result"].as_array().cloned())
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One HTTP/1.0 request (so that no answer comes chunked); (status, body).
fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    let (_, body) = answer.split_once("\r\n\r\n")?;
    Some((status, body.to_owned()))
}

fn value(sample: &Value) -> f64 {
    sample["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[test]
fn a_real_prometheus_scrapes_counters_gauges_and_histograms() {
    let dir = std::env::temp_dir().join(format!("kaizen-prom-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let http_port = free_port();
    let config = dir.join("kaizen.toml");
    std::fs::write(
        &config,
        format!("[http]\nenabled = true\nlisten = \"127.0.0.1:{http_port}\"\n\n[sinks]\nstdout = \"off\"\n"),
    )
    .unwrap();
    let mut kaizen = Kaizen::start(&dir, &config, &[], "kaizen.stderr");
    assert!(
        wait_for(Duration::from_secs(30), || http(
            http_port, "GET", "/livez", ""
        )
        .is_some_and(|(s, _)| s == 200)),
        "kaizen did not come up: {}",
        kaizen.stderr()
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let events: String = (0..20)
        .map(|i| {
            format!(
                "{{\"ts\":{},\"kind\":\"metric\",\"service\":\"checkout\",\"name\":\"http_error_ratio\",\"value\":0.01}}\n",
                now - 60.0 + f64::from(i)
            )
        })
        .collect();
    let (status, body) = http(http_port, "POST", "/ingest/native", &events).unwrap();
    assert_eq!(status, 202, "{body}");
    let (status, _) = http(http_port, "POST", "/ingest/native", "{not json").unwrap();
    assert_eq!(status, 400);

    let Some(prometheus) = Prometheus::start(&dir, &format!("127.0.0.1:{http_port}")) else {
        return;
    };
    let up = wait_for(Duration::from_secs(60), || {
        prometheus
            .api("targets")
            .and_then(|v| {
                v["data"]["activeTargets"][0]["health"]
                    .as_str()
                    .map(|h| h == "up")
            })
            .unwrap_or(false)
    });
    let targets = prometheus.api("targets");
    assert!(up, "the target never came up: {targets:?}");
    let targets = targets.unwrap();
    assert_eq!(
        targets["data"]["activeTargets"][0]["lastError"], "",
        "{targets}"
    );

    // Samples land a scrape after the target is up.
    let events_in = r#"kaizen_events_in_total{source="http",format="native"}"#;
    assert!(
        wait_for(Duration::from_secs(30), || !prometheus
            .query(events_in)
            .is_empty()),
        "no {events_in} in Prometheus"
    );
    assert_eq!(value(&prometheus.query(events_in)[0]), 20.0);
    let errors = prometheus.query(r#"kaizen_decode_errors_total{format="native"}"#);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(value(&errors[0]), 1.0);
    // A histogram arrives as buckets Prometheus can take a quantile of.
    let decode_count =
        prometheus.query(r#"kaizen_decode_duration_seconds_count{source="http",format="native"}"#);
    assert_eq!(decode_count.len(), 1, "{decode_count:?}");
    assert_eq!(value(&decode_count[0]), 2.0);
    let p99 = prometheus.query(
        r#"histogram_quantile(0.99, sum by (le) (kaizen_decode_duration_seconds_bucket{format="native"}))"#,
    );
    assert_eq!(p99.len(), 1, "{p99:?}");
    assert!(value(&p99[0]) > 0.0 && value(&p99[0]) <= 2.5, "{p99:?}");
    // The TYPE of each family is what Prometheus recorded from the page.
    let meta = prometheus.api("metadata").unwrap();
    for (family, kind) in [
        ("kaizen_events_in", "counter"),
        ("kaizen_decode_duration_seconds", "histogram"),
        ("kaizen_http_requests", "counter"),
        ("process_resident_memory_bytes", "gauge"),
    ] {
        assert_eq!(meta["data"][family][0]["type"], kind, "{family}: {meta}");
    }
    let rss = prometheus.query("process_resident_memory_bytes");
    assert!(rss.len() == 1 && value(&rss[0]) > 1e6, "{rss:?}");
    // A source that has delivered has a delay; the last event was ~40 s before now.
    let delay = prometheus.query(r#"kaizen_source_delay_seconds{source="http"}"#);
    assert_eq!(delay.len(), 1, "{delay:?}");
    assert!(value(&delay[0]) >= 30.0, "{delay:?}");

    kaizen.stop("TERM", Duration::from_secs(20));
    drop(prometheus);
    let _ = std::fs::remove_dir_all(&dir);
}
