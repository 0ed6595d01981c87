//! The scenario plan: which faults happen where and when, and every change to the estate.
//!
//! A pure function of the configuration's seed, start, duration, service count and fault
//! counts (never of rates or intervals), so the ground truth of a scenario does not move when
//! only its telemetry volume changes.

use kaizen_model::Symbol;

use crate::estate::{Estate, Kind};
use crate::faults::{FaultKind, FaultSpec};
use crate::rng::Rng;
use crate::ScenarioConfig;

const MIN: u64 = 60_000;

/// Why a change happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    /// Routine deploy.
    Deploy,
    /// Routine config change.
    Config,
    /// Routine feature flag flip.
    Flag,
    /// The deploy that starts fault `i` (bad deploys and memory leaks).
    FaultDeploy(usize),
    /// The rollback that ends fault `i`.
    FaultRollback(usize),
    /// The non-deploy remedy that ends fault `i`.
    FaultFix(usize),
}

/// One change event of the scenario.
#[derive(Clone, Debug)]
pub(crate) struct PlannedChange {
    pub ts: u64,
    pub svc: usize,
    pub cause: Cause,
    /// `deploy`, `config`, `feature_flag` or `rollback`.
    pub kind: Symbol,
    pub version: Option<String>,
    pub description: String,
    pub author: String,
}

/// The full plan.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub estate: Estate,
    pub start: u64,
    pub end: u64,
    /// In start order.
    pub faults: Vec<FaultSpec>,
    /// In time order.
    pub changes: Vec<PlannedChange>,
    /// Version each service runs at the scenario start.
    pub initial_versions: Vec<String>,
}

const PEOPLE: &[&str] = &[
    "alice.chen",
    "bob.okafor",
    "carla.mendes",
    "dmitri.ivanov",
    "erin.walsh",
    "farah.haddad",
    "george.lin",
    "hana.sato",
    "ivan.petrov",
    "julia.kowalski",
];
const DEPLOY_NOTES: &[&str] = &[
    "bump dependencies",
    "add pagination to list endpoints",
    "fix flaky retry on upstream 429",
    "structured logging for request errors",
    "refactor request validation",
    "upgrade runtime to latest patch release",
    "add cache hit ratio metrics",
    "tune connection pool defaults",
    "remove dead feature flag code",
    "improve error messages for bad input",
];
const CONFIG_KEYS: &[(&str, u64, u64)] = &[
    ("http.max_connections", 100, 400),
    ("cache.ttl_seconds", 30, 600),
    ("pool.max_size", 10, 60),
    ("rate_limit.per_client", 50, 500),
    ("worker.concurrency", 4, 32),
    ("retry.max_attempts", 2, 5),
];
const FLAGS: &[&str] = &[
    "new-checkout-ui",
    "recs-v2",
    "async-invoice",
    "dark-mode",
    "express-shipping",
    "search-typo-tolerance",
];

/// The default number of faults for a scenario of `duration`: about one per 40 minutes after a
/// 20-minute warm-up, leaving a 10-minute tail for incidents to resolve.
pub(crate) fn default_faults(duration_ms: u64) -> usize {
    let (warmup, tail) = margins(duration_ms);
    (duration_ms.saturating_sub(warmup + tail) / (40 * MIN)) as usize
}

fn margins(duration_ms: u64) -> (u64, u64) {
    (
        (20 * MIN).min(duration_ms / 6),
        (10 * MIN).min(duration_ms / 6),
    )
}

/// Builds the plan for `config`.
pub(crate) fn plan(config: &ScenarioConfig) -> Plan {
    let estate = Estate::build(config.services);
    let start = config.start.as_millis();
    let duration = config.duration.as_millis().min(u128::from(u64::MAX / 4)) as u64;
    let end = start + duration;
    let mut rng = Rng::stream(config.seed, "plan", 0);
    let n = config.faults;
    let recurrences = if n >= 2 {
        config.recurrences.min(n - 1)
    } else {
        0
    };

    // Which positions repeat an earlier fault: preferably in the later two thirds.
    let mut is_rec = vec![false; n];
    let mut positions: Vec<usize> = ((n / 3).max(1)..n).collect();
    rng.shuffle(&mut positions);
    if positions.len() < recurrences {
        positions = (1..n).collect();
        rng.shuffle(&mut positions);
    }
    for &p in positions.iter().take(recurrences) {
        is_rec[p] = true;
    }

    let mut faults: Vec<FaultSpec> = Vec::with_capacity(n);
    let mut concurrent = vec![false; n];
    let mut kinds: Vec<FaultKind> = Vec::new();
    let mut recurred: Vec<usize> = Vec::new();
    let long = duration >= 8 * 60 * MIN;
    for i in 0..n {
        let want_concurrent = long && i > 0 && !concurrent[i - 1] && rng.chance(0.15);
        let spec = if is_rec[i] {
            let originals: Vec<usize> = (0..i)
                .filter(|&j| faults[j].recurrence_of.is_none())
                .collect();
            let fresh: Vec<usize> = originals
                .iter()
                .copied()
                .filter(|j| !recurred.contains(j))
                .collect();
            let pool = if fresh.is_empty() { &originals } else { &fresh };
            let orig = pool[rng.index(pool.len())];
            recurred.push(orig);
            let mut spec =
                FaultSpec::new(faults[orig].kind, faults[orig].origin, &estate, &mut rng);
            spec.max_hops = faults[orig].max_hops;
            spec.table = faults[orig].table;
            spec.recurrence_of = Some(orig);
            if want_concurrent && disjoint(&estate, &spec, &faults[i - 1]) {
                concurrent[i] = true;
            }
            spec
        } else {
            if kinds.is_empty() {
                kinds = FaultKind::ALL.to_vec();
                rng.shuffle(&mut kinds);
                kinds.reverse();
            }
            let kind = kinds.pop().unwrap_or(FaultKind::BadDeploy);
            let prev = faults
                .iter()
                .rev()
                .find(|f| f.recurrence_of.is_none())
                .map(|f| f.origin);
            let origin = choose_origin(&estate, kind, prev, &mut rng);
            let mut spec = FaultSpec::new(kind, origin, &estate, &mut rng);
            if want_concurrent {
                // Another origin on an unrelated part of the graph, if there is one.
                let mut options: Vec<usize> = (0..estate.services.len())
                    .filter(|&s| kind.origin_preference(&estate, s) > 0)
                    .collect();
                rng.shuffle(&mut options);
                for o in options {
                    // Same knobs (hence the same reach) as the spec that will be used.
                    let mut candidate = spec.clone();
                    candidate.origin = o;
                    let tables = estate.services[o].tables;
                    candidate.table = tables.first().copied().unwrap_or("orders");
                    if disjoint(&estate, &candidate, &faults[i - 1]) {
                        spec = candidate;
                        concurrent[i] = true;
                        break;
                    }
                }
            }
            spec
        };
        faults.push(spec);
    }

    layout(&estate, &mut faults, &concurrent, start, duration, &mut rng);
    let initial_versions: Vec<String> = (0..estate.services.len())
        .map(|i| {
            let mut r = Rng::stream(config.seed, "version", i as u64);
            format!("v{}.{}.{}", r.range(1, 4), r.range(0, 30), r.range(0, 20))
        })
        .collect();
    let changes = changes(
        config.seed,
        &estate,
        &mut faults,
        &initial_versions,
        start,
        end,
    );
    Plan {
        estate,
        start,
        end,
        faults,
        changes,
        initial_versions,
    }
}

fn choose_origin(estate: &Estate, kind: FaultKind, avoid: Option<usize>, rng: &mut Rng) -> usize {
    let n = estate.services.len();
    let best = (0..n)
        .map(|i| kind.origin_preference(estate, i))
        .max()
        .unwrap_or(0);
    let mut pool: Vec<usize> = (0..n)
        .filter(|&i| kind.origin_preference(estate, i) == best)
        .collect();
    if pool.len() > 1 {
        pool.retain(|&i| Some(i) != avoid);
    }
    pool.get(rng.index(pool.len())).copied().unwrap_or(0)
}

fn disjoint(estate: &Estate, a: &FaultSpec, b: &FaultSpec) -> bool {
    let ra = a.reach(estate);
    let rb = b.reach(estate);
    ra.iter().all(|x| rb.iter().all(|y| x.0 != y.0))
}

/// Places faults in time: a warm-up, then slots (one fault, or two concurrent ones) separated by
/// at least 15 minutes of calm, spread over the scenario, ending before a tail. When more faults
/// are asked for than fit, every duration and gap shrinks by the same factor.
fn layout(
    estate: &Estate,
    faults: &mut [FaultSpec],
    concurrent: &[bool],
    start: u64,
    duration: u64,
    rng: &mut Rng,
) {
    if faults.is_empty() {
        return;
    }
    let (warmup, tail) = margins(duration);
    let avail = duration.saturating_sub(warmup + tail) as f64;
    // (first fault, fault count, per-fault (offset, length)).
    let mut slots: Vec<Vec<(f64, f64)>> = Vec::new();
    for (i, _) in faults.iter().enumerate() {
        let len = rng.range(10, 25) as f64 * MIN as f64;
        if concurrent[i] {
            if let Some(slot) = slots.last_mut() {
                let offset = rng.range(2, 8) as f64 * MIN as f64;
                slot.push((offset, len));
                continue;
            }
        }
        slots.push(vec![(0.0, len)]);
    }
    let slot_len = |s: &Vec<(f64, f64)>| s.iter().map(|(o, l)| o + l).fold(0.0, f64::max);
    let gaps: Vec<f64> = (1..slots.len())
        .map(|_| rng.range(15, 25) as f64 * MIN as f64)
        .collect();
    let needed: f64 = slots.iter().map(slot_len).sum::<f64>() + gaps.iter().sum::<f64>();
    let (scale, slack) = if needed > avail {
        (avail / needed, 0.0)
    } else {
        (1.0, avail - needed)
    };
    let weights: Vec<f64> = (0..=slots.len()).map(|_| rng.uniform(0.2, 1.0)).collect();
    let total_w: f64 = weights.iter().sum();
    let mut cursor = start as f64 + warmup as f64;
    let mut i = 0;
    for (k, slot) in slots.iter().enumerate() {
        cursor += slack * weights[k] / total_w;
        if k > 0 {
            cursor += gaps[k - 1] * scale;
        }
        for &(offset, len) in slot {
            let s = round_secs(cursor + offset * scale);
            let e = round_secs(cursor + (offset + len) * scale).max(s + 1000);
            faults[i].place(estate, s, e, rng);
            i += 1;
        }
        cursor += slot_len(slot) * scale;
    }
}

fn round_secs(ms: f64) -> u64 {
    ((ms / 1000.0).round() as u64) * 1000
}

/// Routine and fault-related changes, with version numbers, in time order; fills in remedies
/// and versions of the faults.
fn changes(
    seed: u64,
    estate: &Estate,
    faults: &mut [FaultSpec],
    initial: &[String],
    start: u64,
    end: u64,
) -> Vec<PlannedChange> {
    let days = (end - start) as f64 / (24.0 * 60.0 * MIN as f64);
    let mut out: Vec<PlannedChange> = Vec::new();
    for (i, s) in estate.services.iter().enumerate() {
        let mut rng = Rng::stream(seed, "changes", i as u64);
        let mut add = |rng: &mut Rng, rate: f64, cause: Cause| {
            for _ in 0..rng.count(rate * days) {
                let ts = start + rng.below(end - start) / 1000 * 1000;
                out.push(change(i, ts, cause));
            }
        };
        if !s.kind.is_data() {
            add(&mut rng, 3.0, Cause::Deploy);
        }
        add(&mut rng, 0.5, Cause::Config);
        if matches!(
            s.kind,
            Kind::Web | Kind::Gateway | Kind::Service | Kind::Auth | Kind::Payments
        ) {
            add(&mut rng, 0.4, Cause::Flag);
        }
    }
    // Keep the origins' change history unambiguous around their faults, and freeze deploys
    // between a bad deploy and its recurrence (the same bad version is re-deployed).
    out.retain(|c| {
        faults.iter().all(|f| {
            let near = c.svc == f.origin && c.ts + 30 * MIN >= f.start && c.ts <= f.end + 15 * MIN;
            let frozen = f.kind == FaultKind::BadDeploy
                && c.svc == f.origin
                && c.cause == Cause::Deploy
                && f.recurrence_of
                    .is_some_and(|o| c.ts >= faults[o].start && c.ts <= f.end);
            !near && !frozen
        })
    });
    for (i, f) in faults.iter().enumerate() {
        match f.kind {
            FaultKind::BadDeploy | FaultKind::MemoryLeak => {
                out.push(change(f.origin, f.start, Cause::FaultDeploy(i)));
                out.push(change(f.origin, f.end, Cause::FaultRollback(i)));
            }
            _ => out.push(change(f.origin, f.end, Cause::FaultFix(i))),
        }
    }
    out.sort_by_key(|c| (c.ts, c.svc, rank(c.cause)));
    let mut rng = Rng::stream(seed, "versions", 0);
    let mut current: Vec<String> = initial.to_vec();
    for c in &mut out {
        let name = estate.services[c.svc].name.as_str();
        let person = PEOPLE[rng.index(PEOPLE.len())];
        match c.cause {
            Cause::Deploy | Cause::FaultDeploy(_) => {
                let (version, note) = match c.cause {
                    Cause::FaultDeploy(f) => {
                        let original = faults[f]
                            .recurrence_of
                            .filter(|_| faults[f].kind == FaultKind::BadDeploy);
                        let bad = match original.and_then(|o| faults[o].bad_version.clone()) {
                            Some(v) => v,
                            None => bump(&current[c.svc], true),
                        };
                        faults[f].good_version = Some(current[c.svc].clone());
                        faults[f].bad_version = Some(bad.clone());
                        let note = if original.is_some() {
                            "re-apply reverted change after fix review"
                        } else {
                            DEPLOY_NOTES[rng.index(DEPLOY_NOTES.len())]
                        };
                        (bad, note)
                    }
                    _ => (
                        bump(&current[c.svc], rng.chance(0.2)),
                        DEPLOY_NOTES[rng.index(DEPLOY_NOTES.len())],
                    ),
                };
                c.description = format!("Deploy {name} {version}: {note}");
                c.author = if rng.chance(0.3) {
                    String::from("argo-cd")
                } else {
                    person.to_owned()
                };
                current[c.svc] = version.clone();
                c.version = Some(version);
            }
            Cause::FaultRollback(f) => {
                let good = faults[f]
                    .good_version
                    .clone()
                    .unwrap_or_else(|| current[c.svc].clone());
                c.description = format!("Rollback {name} to {good}");
                c.author = person.to_owned();
                current[c.svc] = good.clone();
                c.version = Some(good);
            }
            Cause::Config => {
                let (key, lo, hi) = CONFIG_KEYS[rng.index(CONFIG_KEYS.len())];
                let a = rng.range(lo, hi);
                let b = rng.range(lo, hi);
                c.description = format!("Set {key} from {a} to {b} on {name}");
                c.author = person.to_owned();
            }
            Cause::Flag => {
                let flag = FLAGS[rng.index(FLAGS.len())];
                let pct = [5, 10, 25, 50, 100][rng.index(5)];
                c.description =
                    format!("Enable feature flag '{flag}' for {pct}% of {name} traffic");
                c.author = person.to_owned();
            }
            Cause::FaultFix(f) => {
                c.description = fix_description(&faults[f], name, &mut rng);
                c.author = person.to_owned();
            }
        }
    }
    // Remedies: recurrences copy their original's.
    for i in 0..faults.len() {
        let name = estate.services[faults[i].origin].name.as_str();
        faults[i].remedy = match faults[i].recurrence_of {
            Some(o) => faults[o].remedy.clone(),
            None => remedy(&faults[i], name),
        };
    }
    out
}

fn rank(c: Cause) -> u8 {
    match c {
        Cause::FaultRollback(_) | Cause::FaultFix(_) => 0,
        Cause::FaultDeploy(_) => 1,
        _ => 2,
    }
}

fn change(svc: usize, ts: u64, cause: Cause) -> PlannedChange {
    let kind = match cause {
        Cause::Deploy | Cause::FaultDeploy(_) => "deploy",
        Cause::FaultRollback(_) => "rollback",
        Cause::Flag => "feature_flag",
        Cause::Config => "config",
        Cause::FaultFix(_) => "config",
    };
    PlannedChange {
        ts,
        svc,
        cause,
        kind: Symbol::new(kind),
        version: None,
        description: String::new(),
        author: String::new(),
    }
}

fn bump(version: &str, minor: bool) -> String {
    let mut parts = version
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let (a, b, c) = (
        parts.next().unwrap_or(1),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    if minor {
        format!("v{a}.{}.0", b + 1)
    } else {
        format!("v{a}.{b}.{}", c + 1)
    }
}

fn remedy(f: &FaultSpec, name: &str) -> String {
    match f.kind {
        FaultKind::BadDeploy => format!(
            "Roll back {name} to {}",
            f.good_version.as_deref().unwrap_or("the previous version")
        ),
        FaultKind::DatabaseSlowdown => format!(
            "Kill the long-running query on {name} / add missing index on {}",
            f.table
        ),
        FaultKind::DependencyOutage => format!("Fail over {name} to the secondary region"),
        FaultKind::MemoryLeak => format!("Restart {name} and roll back the leaking release"),
        FaultKind::CertificateExpiry => {
            format!("Renew and redeploy the TLS certificate for {name}")
        }
        FaultKind::NoisyNeighbor => format!("Move {name} off the noisy node / raise its CPU limit"),
        FaultKind::CascadingTimeouts => {
            format!("Shed load and raise timeouts budget on {name}; add circuit breaker")
        }
    }
}

fn fix_description(f: &FaultSpec, name: &str, rng: &mut Rng) -> String {
    match f.kind {
        FaultKind::DatabaseSlowdown => format!(
            "Terminated long-running query (pid {}) on {name} and created index on {}",
            rng.range(10_000, 99_999),
            f.table
        ),
        FaultKind::DependencyOutage => format!("Failed over {name} to secondary region us-west-2"),
        FaultKind::CertificateExpiry => {
            format!("Rotated TLS certificate for {name}.internal (valid 90 days)")
        }
        FaultKind::NoisyNeighbor => format!(
            "Raised CPU limit of {name} from 2 to 4 cores and cordoned node ip-10-0-{}-{}",
            rng.range(0, 15),
            rng.range(2, 250)
        ),
        FaultKind::CascadingTimeouts => {
            format!("Enabled load shedding and circuit breaker for calls to {name}")
        }
        FaultKind::BadDeploy | FaultKind::MemoryLeak => format!("Restarted {name}"),
    }
}
