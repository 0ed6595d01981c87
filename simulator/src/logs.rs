//! Rendering log templates: placeholders become request ids, users, IPs, durations, paths…

use std::fmt::Write;

use crate::estate::Service;
use crate::rng::{push_hex, Rng};

/// What a template may mention.
pub(crate) struct Ctx<'a> {
    pub svc: &'a Service,
    /// A neighbour (the callee at fault, or any neighbour for routine lines).
    pub peer: &'a str,
    /// Operations of the peer (for `{route}`); `{path}` always uses the service's own.
    pub routes: &'a [kaizen_model::Symbol],
    pub version: &'a str,
    /// The table a fault is about, if any.
    pub table: Option<&'static str>,
    /// Typical latency of the service, ms.
    pub p50: f64,
}

const QUERIES_CLIENTS: &[&str] = &[
    "acme-mobile",
    "partner-42",
    "ios-app",
    "android-app",
    "b2b-portal",
    "shopify-sync",
];

/// Appends `text` with its placeholders filled to `out`; returns the request id it generated,
/// if any (so the caller can attach a matching trace id).
pub(crate) fn render(out: &mut String, text: &str, ctx: &Ctx<'_>, rng: &mut Rng) -> Option<u64> {
    let mut rid = None;
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return rid;
        };
        let name = &after[..close];
        rest = &after[close + 1..];
        // Writing to a String cannot fail.
        let _ = match name {
            "rid" => {
                let v = rng.next_u64();
                rid = Some(v);
                push_hex(out, v, 16);
                Ok(())
            }
            "hex" => {
                push_hex(out, rng.next_u64(), 16);
                Ok(())
            }
            "hex8" => {
                push_hex(out, rng.next_u64(), 8);
                Ok(())
            }
            "uid" => write!(out, "u_{}", rng.range(100_000, 9_999_999)),
            "ip" => write!(
                out,
                "10.{}.{}.{}",
                rng.range(0, 255),
                rng.range(0, 255),
                rng.range(1, 254)
            ),
            "port" => write!(out, "{}", rng.range(32_768, 60_999)),
            "pid" => write!(out, "{}", rng.range(1_000, 65_000)),
            "ms" => write!(out, "{}", ((ctx.p50 * rng.uniform(0.4, 2.5)) as u64).max(1)),
            "slow" => write!(out, "{}", rng.range(1_500, 9_000)),
            "n" => write!(out, "{}", rng.range(1, 100)),
            "big" => write!(out, "{}", rng.range(100, 99_999)),
            "pct" => write!(out, "{}", rng.range(35, 99)),
            "heap" => write!(out, "{}", rng.range(1_800, 2_040)),
            "order" => write!(out, "ord_{:010}", rng.below(10_000_000_000)),
            "sku" => write!(out, "SKU-{:05}", rng.below(100_000)),
            "amount" => write!(out, "{}.{:02}", rng.range(5, 499), rng.below(100)),
            "client" => {
                out.push_str(QUERIES_CLIENTS[rng.index(QUERIES_CLIENTS.len())]);
                Ok(())
            }
            "table" => {
                let t = ctx.table.unwrap_or_else(|| {
                    ctx.svc
                        .tables
                        .get(rng.index(ctx.svc.tables.len()))
                        .copied()
                        .unwrap_or("record")
                });
                out.push_str(t);
                Ok(())
            }
            "peer" => {
                out.push_str(ctx.peer);
                Ok(())
            }
            "svc" => {
                out.push_str(ctx.svc.name.as_str());
                Ok(())
            }
            "pkg" => {
                out.extend(
                    ctx.svc
                        .name
                        .as_str()
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric()),
                );
                Ok(())
            }
            "version" => {
                out.push_str(ctx.version);
                Ok(())
            }
            "route" | "path" => {
                // `{path}` is one of the service's own endpoints, `{route}` one of the peer's.
                let routes = if name == "path" || ctx.routes.is_empty() {
                    &ctx.svc.ops
                } else {
                    ctx.routes
                };
                let route = routes
                    .get(rng.index(routes.len()))
                    .map(|s| s.as_str())
                    .unwrap_or("GET /");
                if name == "route" {
                    out.push_str(route);
                } else {
                    // A concrete path: `{id}` becomes a number.
                    let mut parts = route.split("{id}");
                    out.push_str(parts.next().unwrap_or(""));
                    for p in parts {
                        let _ = write!(out, "{}", rng.range(1, 99_999));
                        out.push_str(p);
                    }
                }
                Ok(())
            }
            other => {
                out.push('{');
                out.push_str(other);
                out.push('}');
                Ok(())
            }
        };
    }
    out.push_str(rest);
    rid
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estate::{Estate, Kind};
    use crate::faults::FaultKind;
    use crate::templates::{benign, fault, Template};

    #[test]
    fn every_template_renders_without_leftover_placeholders() {
        let estate = Estate::build(13);
        let mut rng = Rng::new(5);
        let kinds = [
            Kind::Web,
            Kind::Gateway,
            Kind::Service,
            Kind::Auth,
            Kind::Payments,
            Kind::Worker,
            Kind::Sql,
            Kind::Cache,
            Kind::Queue,
        ];
        let mut all: Vec<&'static [Template]> = kinds.iter().map(|&k| benign(k)).collect();
        for fk in FaultKind::ALL {
            for k in kinds {
                for hop in 1..3 {
                    all.push(fault(fk, k, None, 0, 0.5));
                    all.push(fault(fk, k, None, 0, 0.95));
                    all.push(fault(fk, k, Some(Kind::Payments), hop, 0.5));
                    all.push(fault(fk, k, Some(Kind::Sql), hop, 0.5));
                }
            }
        }
        let svc = &estate.services[6];
        let ctx = Ctx {
            svc,
            peer: "payments",
            routes: &estate.services[7].ops,
            version: "v1.2.3",
            table: None,
            p50: svc.base.p50,
        };
        for set in all {
            assert!(!set.is_empty());
            for t in set {
                let mut s = String::new();
                let rid = render(&mut s, t.2, &ctx, &mut rng);
                assert!(!s.contains('{') && !s.contains('}'), "{s}");
                assert_eq!(rid.is_some(), t.2.contains("{rid}"));
            }
        }
        let mut s = String::new();
        render(&mut s, "{route}", &ctx, &mut rng);
        assert!(s.starts_with("POST /"), "{s}");
    }
}
