//! A real Kafka-protocol broker for the Kafka tests: Nisshi on 127.0.0.1, or any broker named
//! by `KAIZEN_TEST_BROKERS`.
//!
//! For: `tests/kafka.rs`. [`Broker::start`] runs `nisshi broker` on a free loopback port with
//! in-memory storage, waits until it accepts connections, and stops it when dropped. Nisshi
//! is found on `PATH` or in `$CARGO_HOME/bin` (`.ci/run` installs it there). With
//! `KAIZEN_TEST_BROKERS=host:port[,…]` no process is started and that broker is used instead
//! (tests use unique topic and group names, so a shared broker is fine). With neither, the
//! tests fail with a message saying what to do, unless `KAIZEN_SKIP_KAFKA_TESTS=1`.
//!
//! The broker runs under a small `sh` watchdog that reads the test's stdin pipe: when the test
//! process ends in any way (even SIGKILL), the pipe closes and the watchdog kills the broker,
//! so no broker outlives its test. Not for: anything but tests.

#![allow(dead_code)]

use std::fs::File;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const INSTALL: &str = "cargo install nisshi --version 0.8.1 --locked --ignore-rust-version \
                       --no-default-features --features dynostore,libsql";

/// A running broker (or an external one); dropping it stops the one it started.
pub struct Broker {
    /// `bootstrap.servers` for clients.
    pub bootstrap: String,
    /// librdkafka properties clients need besides `bootstrap.servers` (TLS settings).
    pub properties: Vec<(String, String)>,
    process: Option<Process>,
}

struct Process {
    child: Child,
    /// Closing it tells the watchdog to stop the broker.
    stdin: Option<ChildStdin>,
    log: PathBuf,
    /// Files to remove when the broker stops (its TLS key and certificate).
    scratch: Option<PathBuf>,
}

impl Broker {
    /// The broker for one test, or `None` when Kafka tests are skipped on purpose
    /// (`KAIZEN_SKIP_KAFKA_TESTS=1`). Panics, saying what to do, when there is no broker.
    pub fn start() -> Option<Broker> {
        if skipped() {
            return None;
        }
        if let Some(brokers) = external() {
            return Some(Broker {
                bootstrap: brokers,
                properties: Vec::new(),
                process: None,
            });
        }
        Some(Broker::spawn(&nisshi(), None))
    }

    /// A Nisshi broker whose listener only speaks TLS, with a fresh self-signed certificate
    /// for 127.0.0.1 (made by the `openssl` command); clients get `security.protocol=SSL` and
    /// the certificate as CA in [`Broker::properties`]. `None` when Kafka tests are skipped or
    /// `KAIZEN_TEST_BROKERS` names an external broker (whose TLS setup is unknown).
    pub fn start_tls() -> Option<Broker> {
        if skipped() {
            return None;
        }
        if external().is_some() {
            eprintln!("TLS test skipped: KAIZEN_TEST_BROKERS names an external broker");
            return None;
        }
        let binary = nisshi();
        let dir = std::env::temp_dir().join(unique("kaizen-tls"));
        std::fs::create_dir_all(&dir).expect("create a directory for the TLS files");
        let status = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1"])
            .arg("-keyout")
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("the TLS test needs the `openssl` command: {e}"));
        assert!(
            status.success(),
            "openssl could not make a certificate: {status}"
        );
        let mut broker = Broker::spawn(&binary, Some(&dir));
        broker.properties = vec![
            ("security.protocol".into(), "SSL".into()),
            (
                "ssl.ca.location".into(),
                dir.join("cert.pem").display().to_string(),
            ),
        ];
        Some(broker)
    }

    fn spawn(binary: &Path, tls: Option<&Path>) -> Broker {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("kaizen-nisshi-{port}.log"));
        let out = File::create(&log).expect("create the broker log file");
        let err = out.try_clone().expect("clone the broker log file");
        // fd 3 keeps the test's pipe; the background watchdog kills the broker at its EOF.
        let script = r#"exec 3<&0
"$0" "$@" </dev/null &
broker=$!
{ read -r _ <&3; kill "$broker" 2>/dev/null; sleep 3; kill -9 "$broker" 2>/dev/null; } &
wait "$broker""#;
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(binary)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://nisshi/"])
            .args(tls.iter().flat_map(|dir| {
                let cert = dir.join("cert.pem").into_os_string();
                let key = dir.join("key.pem").into_os_string();
                ["--cert".into(), cert, "--key".into(), key]
            }))
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut process = Process {
            stdin: None,
            child,
            log,
            scratch: tls.map(Path::to_path_buf),
        };
        process.stdin = process.child.stdin.take();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!(
                    "nisshi exited ({status}) before accepting connections on {addr}; its log:\n{}",
                    tail(&process.log)
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "nisshi did not accept connections on {addr} within 30 s; its log:\n{}",
                    tail(&process.log)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker {
            bootstrap: format!("127.0.0.1:{port}"),
            properties: Vec::new(),
            process: Some(process),
        }
    }

    /// The broker's log so far (empty for an external broker), for failure messages.
    pub fn log(&self) -> String {
        self.process
            .as_ref()
            .map(|p| tail(&p.log))
            .unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let Some(mut p) = self.process.take() else {
            return;
        };
        drop(p.stdin.take());
        if let Some(dir) = p.scratch.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = p.child.try_wait() {
                let _ = std::fs::remove_file(&p.log);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = p.child.kill();
        let _ = p.child.wait();
    }
}

/// A name no other test (nor an earlier run against a shared broker) uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{nanos:x}-{n}", std::process::id())
}

fn skipped() -> bool {
    let skip = std::env::var("KAIZEN_SKIP_KAFKA_TESTS").is_ok_and(|v| v == "1");
    if skip {
        eprintln!("Kafka test skipped: KAIZEN_SKIP_KAFKA_TESTS=1");
    }
    skip
}

fn external() -> Option<String> {
    let brokers = std::env::var("KAIZEN_TEST_BROKERS").ok()?;
    let brokers = brokers.trim();
    (!brokers.is_empty()).then(|| brokers.to_owned())
}

/// The Nisshi binary, or a panic saying how to get one (or how to do without).
fn nisshi() -> PathBuf {
    find_nisshi().unwrap_or_else(|| {
        panic!(
            "the Kafka tests need a broker and found none: install Nisshi with `{INSTALL}` \
             (.ci/run does), or point them at any Kafka broker with \
             KAIZEN_TEST_BROKERS=host:port, or skip them with KAIZEN_SKIP_KAFKA_TESTS=1"
        )
    })
}

fn find_nisshi() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    std::env::split_paths(&path)
        .chain(cargo_home.map(|c| c.join("bin")))
        .map(|dir| dir.join("nisshi"))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    let start = text.len().saturating_sub(4000);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_owned()
}
