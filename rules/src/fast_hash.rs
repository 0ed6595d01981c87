//! A fast, non-cryptographic hash for the maps rules touch on every row (groups, evidence
//! budgets). Their keys come from the operator's own rules and data, and a slow hash would cost
//! more than any collision attack could.

use std::hash::{BuildHasherDefault, Hasher};

/// `HashMap<K, V, FxBuild>`.
pub type FxBuild = BuildHasherDefault<Fx>;

/// The FxHash mixing step (as in rustc), over 8-byte words.
#[derive(Default)]
pub struct Fx(u64);

impl Hasher for Fx {
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

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words the hash mixes: whole 8-byte words, then the tail padded with zeros.
    fn reference(bytes: &[u8]) -> u64 {
        let mut h = Fx::default();
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            h.write_u64(u64::from_le_bytes(word));
        }
        h.finish()
    }

    #[test]
    fn hashes_every_length_as_padded_words() {
        let text: Vec<u8> = (0u8..40).collect();
        for n in 0..text.len() {
            let mut h = Fx::default();
            h.write(&text[..n]);
            assert_eq!(h.finish(), reference(&text[..n]), "length {n}");
        }
    }
}
