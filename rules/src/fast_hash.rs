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
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
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
