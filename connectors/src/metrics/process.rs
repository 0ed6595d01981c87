//! The standard `process_*` series every Prometheus client exports, read from `/proc` at
//! each scrape: resident and virtual memory, CPU time, open and allowed file descriptors,
//! start time. On systems without `/proc` they are not registered.

use std::fs;
use std::sync::Arc;

use super::{MetricDef, MetricKind, Registry, Series};

const RESIDENT: MetricDef = MetricDef::new(
    "process_resident_memory_bytes",
    "Resident memory size in bytes.",
);
const VIRTUAL: MetricDef = MetricDef::new(
    "process_virtual_memory_bytes",
    "Virtual memory size in bytes.",
);
const CPU: MetricDef = MetricDef::new(
    "process_cpu_seconds_total",
    "Total user and system CPU time spent in seconds.",
);
const OPEN_FDS: MetricDef = MetricDef::new("process_open_fds", "Number of open file descriptors.");
const MAX_FDS: MetricDef = MetricDef::new(
    "process_max_fds",
    "Maximum number of open file descriptors.",
);
const START: MetricDef = MetricDef::new(
    "process_start_time_seconds",
    "Start time of the process since unix epoch in seconds.",
);

/// The `process_*` families, for checks that dashboards name real series.
pub const PROCESS_FAMILIES: &[MetricDef] = &[RESIDENT, VIRTUAL, CPU, OPEN_FDS, MAX_FDS, START];

/// Linux's USER_HZ: the unit of the CPU and start times in `/proc/self/stat`, 100 on every
/// architecture Linux supports for user space.
const TICKS_PER_SECOND: f64 = 100.0;

/// Registers the `process_*` series (Linux only: nothing happens without `/proc/self`).
pub fn register_process_metrics(registry: &Registry) {
    if fs::metadata("/proc/self/stat").is_err() {
        return;
    }
    registry.gauge_fn(&RESIDENT, &[], || status_kib("VmRSS:") * 1024.0);
    registry.gauge_fn(&VIRTUAL, &[], || status_kib("VmSize:") * 1024.0);
    let cpu = || {
        let f = stat_fields();
        (field(&f, 14) + field(&f, 15)) / TICKS_PER_SECOND
    };
    registry.insert(&CPU, MetricKind::Counter, &[], Series::Func(Arc::new(cpu)));
    registry.gauge_fn(&OPEN_FDS, &[], || {
        fs::read_dir("/proc/self/fd").map_or(f64::NAN, |d| d.count() as f64)
    });
    registry.gauge_fn(&MAX_FDS, &[], max_fds);
    // Start time: boot time plus the process's start in ticks after boot.
    let start = boot_time() + field(&stat_fields(), 22) / TICKS_PER_SECOND;
    registry.gauge_fn(&START, &[], move || start);
}

/// The fields of `/proc/self/stat` after the command name (which may hold spaces), numbered
/// as in proc(5): the first returned is field 3.
fn stat_fields() -> Vec<String> {
    let text = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_comm = text.rsplit_once(')').map_or("", |(_, rest)| rest);
    after_comm.split_whitespace().map(str::to_owned).collect()
}

fn field(fields: &[String], n: usize) -> f64 {
    n.checked_sub(3)
        .and_then(|i| fields.get(i))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn status_kib(key: &str) -> f64 {
    let text = fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn max_fds() -> f64 {
    let text = fs::read_to_string("/proc/self/limits").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn boot_time() -> f64 {
    let text = fs::read_to_string("/proc/stat").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_series_are_read_from_proc() {
        let r = Registry::new();
        register_process_metrics(&r);
        let text = r.render();
        if fs::metadata("/proc/self/stat").is_err() {
            assert_eq!(text, "# EOF\n");
            return;
        }
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN)
        };
        assert!(value("process_resident_memory_bytes") > 1e6, "{text}");
        assert!(value("process_open_fds") >= 3.0, "{text}");
        assert!(
            value("process_max_fds") >= value("process_open_fds"),
            "{text}"
        );
        assert!(value("process_cpu_seconds_total") >= 0.0, "{text}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let start = value("process_start_time_seconds");
        assert!(
            start > now - 86_400.0 * 365.0 && start <= now + 1.0,
            "{start} vs {now}"
        );
    }
}
