//! Series keys of series seen before, so that a sample of a known series costs a lookup by the
//! addresses of its interned names instead of the stable hash of all their text (FNV reads a
//! byte at a time: the key was ~5 % of a worker's time on the Kafka path).

use std::hash::Hasher;

use super::Metric;
use crate::hash::avalanche;
use crate::{FxHasher, PrehashedMap, Symbol};

/// Longest identity cached (service, name, and this many labels less one, as pairs).
const MAX_WORDS: usize = 16;

/// A cache of [`Metric::series_key`] results, keyed by which interned strings a series is
/// made of. Pooled symbols live for the whole process and the pool holds one copy of each
/// text, so their addresses identify their content; a series with a symbol outside the pool
/// (or with very many labels) is hashed every time. Bounded: it starts over when full.
///
/// ```
/// use kaizen_model::{Labels, Metric, MetricKind, SeriesKeys, Symbol};
/// let m = Metric {
///     name: Symbol::new("cpu"),
///     value: 0.5,
///     metric_kind: MetricKind::Gauge,
///     labels: Labels::from_pairs([(Symbol::new("instance"), Symbol::new("a-0"))]),
/// };
/// let mut keys = SeriesKeys::new(1024);
/// let service = Symbol::new("checkout");
/// assert_eq!(keys.key(&m, &service), m.series_key(&service));
/// assert_eq!(keys.key(&m, &service), m.series_key(&service));
/// ```
#[derive(Debug)]
pub struct SeriesKeys {
    /// By a hash of the identity: the identity itself and its series key.
    known: PrehashedMap<(Box<[usize]>, u64)>,
    capacity: usize,
}

impl Default for SeriesKeys {
    /// Room for 128 Ki series (~100 bytes each): past that the cache starts over, and a
    /// detector with more live series than this hashes some of them per sample, as without it.
    fn default() -> Self {
        SeriesKeys::new(1 << 17)
    }
}

impl SeriesKeys {
    /// A cache that holds at most `capacity` series.
    pub fn new(capacity: usize) -> SeriesKeys {
        SeriesKeys {
            known: PrehashedMap::default(),
            capacity,
        }
    }

    /// Bytes held: the map's slots and the identities.
    pub fn bytes(&self) -> usize {
        let slot = std::mem::size_of::<(u64, (Box<[usize]>, u64))>() + 1;
        let words: usize = self.known.values().map(|(w, _)| w.len()).sum();
        self.known.capacity() * slot + words * std::mem::size_of::<usize>()
    }

    /// `metric.series_key(service)`, remembered.
    pub fn key(&mut self, metric: &Metric, service: &Symbol) -> u64 {
        let mut words = [0usize; MAX_WORDS];
        let Some(len) = identity(metric, service, &mut words) else {
            return metric.series_key(service);
        };
        let words = &words[..len];
        let mut fx = FxHasher::default();
        for &w in words {
            fx.write_usize(w);
        }
        // Fx leaves the low bits (the map's bucket index) poorly mixed.
        let h = avalanche(fx.finish());
        match self.known.get(&h) {
            Some((known, key)) if **known == *words => *key,
            // Another identity with the same hash keeps its place: this one is hashed each time.
            Some(_) => metric.series_key(service),
            None => {
                if self.known.len() >= self.capacity {
                    self.known.clear();
                }
                let key = metric.series_key(service);
                self.known.insert(h, (words.into(), key));
                key
            }
        }
    }
}

/// The addresses of a series' interned strings, in order, with the label count (two series
/// whose labels split the same strings differently must differ); `None` when one is not
/// pooled or there are too many.
fn identity(metric: &Metric, service: &Symbol, words: &mut [usize; MAX_WORDS]) -> Option<usize> {
    let n = 3 + 2 * metric.labels.len();
    if n > MAX_WORDS {
        return None;
    }
    words[0] = service.pooled_address()?;
    words[1] = metric.name.pooled_address()?;
    words[2] = metric.labels.len();
    for (i, (k, v)) in metric.labels.iter().enumerate() {
        words[3 + 2 * i] = k.pooled_address()?;
        words[4 + 2 * i] = v.pooled_address()?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Labels, MetricKind};

    fn metric(name: &str, labels: &[(&str, &str)]) -> Metric {
        Metric {
            name: Symbol::new(name),
            value: 1.0,
            metric_kind: MetricKind::Gauge,
            labels: Labels::from_pairs(
                labels.iter().map(|(k, v)| (Symbol::new(k), Symbol::new(v))),
            ),
        }
    }

    #[test]
    fn cached_keys_are_the_stable_hash_for_every_series() {
        let mut keys = SeriesKeys::new(3);
        let service = Symbol::new("orders");
        let series = [
            metric("latency", &[]),
            metric("latency", &[("instance", "orders-0")]),
            metric("latency", &[("instance", "orders-1")]),
            metric("errors", &[("instance", "orders-0"), ("route", "/pay")]),
            // Same strings, split into labels differently.
            metric("errors", &[("instance", "orders-0")]),
            metric("errors", &[("route", "/pay")]),
        ];
        // Twice round, past the capacity (the cache starts over), with an unpooled service.
        for _ in 0..2 {
            for m in &series {
                assert_eq!(keys.key(m, &service), m.series_key(&service));
                let other = Symbol::unpooled("orders");
                assert_eq!(keys.key(m, &other), m.series_key(&service));
            }
        }
        let many: Vec<(String, String)> = (0..10).map(|i| (format!("k{i}"), "v".into())).collect();
        let pairs: Vec<(&str, &str)> = many.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        let wide = metric("wide", &pairs);
        assert_eq!(keys.key(&wide, &service), wide.series_key(&service));
    }
}
