//! Interned strings for the names that repeat on every event (services, metric names, label keys).

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, LazyLock, RwLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Above this many distinct strings the pool stops growing: new strings are still correct
/// `Symbol`s, just not shared. This bounds memory when a label turns out to be high-cardinality.
const POOL_CAPACITY: usize = 1 << 20;

static POOL: LazyLock<RwLock<HashSet<Arc<str>, BuildHasherDefault<FxHasher>>>> =
    LazyLock::new(Default::default);

/// Per thread, at most this many of the pool's strings are cached (a table of pointers: the
/// strings themselves are the pool's).
const LOCAL_CAPACITY: usize = 1 << 16;

thread_local! {
    static LOCAL: RefCell<HashSet<Arc<str>, BuildHasherDefault<FxHasher>>> =
        RefCell::new(HashSet::default());
}

/// The Fx hash (as in rustc): a multiply-rotate per word. Interning looks every name up on the
/// hot path, and the pool's keys are not attacker-chosen in a way that matters (the pool is
/// capped), so speed wins over SipHash's DoS resistance here.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// An immutable, cheaply clonable, interned string.
///
/// Decoding the same service name a million times allocates it once; cloning is a reference
/// count increment. Ordering and equality are by content, so symbols sort deterministically.
///
/// ```
/// use kaizen_model::Symbol;
/// let a = Symbol::new("checkout");
/// let b = Symbol::new("checkout");
/// assert_eq!(a, b);
/// assert!(a.ptr_eq(&b));
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Symbol(Arc<str>);

impl Symbol {
    /// Returns the interned symbol for `s`, allocating only the first time `s` is seen.
    pub fn new(s: &str) -> Symbol {
        // The thread's own copy of the names it has seen first: the shared pool's lock is two
        // atomic operations on a line every worker writes, per name, several names per event.
        if let Ok(Some(found)) = LOCAL.try_with(|l| l.borrow().get(s).cloned()) {
            return Symbol(found);
        }
        let (symbol, pooled) = Self::intern(s);
        if pooled {
            let _ = LOCAL.try_with(|l| {
                let mut l = l.borrow_mut();
                if l.len() < LOCAL_CAPACITY {
                    l.insert(symbol.0.clone());
                }
            });
        }
        symbol
    }

    /// The shared pool's symbol for `s`, and whether it is in the pool (it is not once the
    /// pool is full).
    fn intern(s: &str) -> (Symbol, bool) {
        if let Ok(pool) = POOL.read() {
            if let Some(found) = pool.get(s) {
                return (Symbol(found.clone()), true);
            }
        }
        let Ok(mut pool) = POOL.write() else {
            return (Symbol(Arc::from(s)), false);
        };
        if let Some(found) = pool.get(s) {
            return (Symbol(found.clone()), true);
        }
        let fresh: Arc<str> = Arc::from(s);
        let pooled = pool.len() < POOL_CAPACITY;
        if pooled {
            pool.insert(fresh.clone());
        }
        (Symbol(fresh), pooled)
    }

    /// The symbol's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when both symbols share one allocation (always the case for interned symbols).
    pub fn ptr_eq(&self, other: &Symbol) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Default for Symbol {
    fn default() -> Self {
        Symbol::new("")
    }
}

impl From<&str> for Symbol {
    fn from(s: &str) -> Self {
        Symbol::new(s)
    }
}

impl AsRef<str> for Symbol {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Symbol {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Symbol {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Symbol {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Symbol::new(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_shares_allocations_and_orders_by_content() {
        let a = Symbol::new("payments");
        let b = Symbol::from("payments");
        assert!(a.ptr_eq(&b));
        assert!(Symbol::new("auth") < Symbol::new("cart"));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, "\"payments\"");
        let back: Symbol = serde_json::from_str(&json).unwrap();
        assert!(back.ptr_eq(&a));
    }

    #[test]
    fn threads_share_the_pool_through_their_own_caches() {
        let here = Symbol::new("inventory");
        let there = std::thread::spawn(|| Symbol::new("inventory"))
            .join()
            .unwrap();
        assert!(here.ptr_eq(&there));
        assert!(Symbol::new("inventory").ptr_eq(&there));
    }
}
