//! Interned strings for the names that repeat on every event (services, metric names, label keys).

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::hash::Hasher;
use std::sync::{Arc, LazyLock, RwLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::FxBuildHasher;

/// Above this many distinct strings the pool stops growing: new strings are still correct
/// `Symbol`s, just not shared. This bounds memory when a label turns out to be high-cardinality.
const POOL_CAPACITY: usize = 1 << 20;

/// The pool's strings live as long as the process (it is capped), so a pooled symbol is a
/// plain reference: cloning and dropping one touches no shared counter. A reference count
/// would be written by every worker that decodes, exchanges or drops an event naming it —
/// on the Kafka path that cache line bounced between cores several times per event.
static POOL: LazyLock<RwLock<HashSet<&'static str, FxBuildHasher>>> =
    LazyLock::new(Default::default);

/// Per thread, at most this many of the pool's strings are cached (a table of references:
/// the strings themselves are the pool's).
const LOCAL_CAPACITY: usize = 1 << 16;

thread_local! {
    static LOCAL: RefCell<HashSet<&'static str, FxBuildHasher>> =
        RefCell::new(HashSet::default());
}

/// An immutable, cheaply clonable, interned string.
///
/// Decoding the same service name a million times allocates it once; cloning is a copy.
/// Ordering and equality are by content, so symbols sort deterministically.
///
/// ```
/// use kaizen_model::Symbol;
/// let a = Symbol::new("checkout");
/// let b = Symbol::new("checkout");
/// assert_eq!(a, b);
/// assert!(a.ptr_eq(&b));
/// ```
#[derive(Clone)]
pub struct Symbol(Repr);

#[derive(Clone)]
enum Repr {
    /// In the pool.
    Pooled(&'static str),
    /// Seen after the pool filled up: shared by reference count, freed with its last user.
    Unpooled(Arc<str>),
}

impl Symbol {
    /// Returns the interned symbol for `s`, allocating only the first time `s` is seen.
    pub fn new(s: &str) -> Symbol {
        // The thread's own copy of the names it has seen first: the shared pool's lock is two
        // atomic operations on a line every worker writes, per name, several names per event.
        if let Ok(Some(found)) = LOCAL.try_with(|l| l.borrow().get(s).copied()) {
            return Symbol(Repr::Pooled(found));
        }
        let symbol = Self::intern(s);
        if let Repr::Pooled(pooled) = symbol.0 {
            let _ = LOCAL.try_with(|l| {
                let mut l = l.borrow_mut();
                if l.len() < LOCAL_CAPACITY {
                    l.insert(pooled);
                }
            });
        }
        symbol
    }

    /// The shared pool's symbol for `s`, or an unpooled one once the pool is full.
    fn intern(s: &str) -> Symbol {
        if let Ok(pool) = POOL.read() {
            if let Some(found) = pool.get(s) {
                return Symbol(Repr::Pooled(found));
            }
        }
        let Ok(mut pool) = POOL.write() else {
            return Symbol(Repr::Unpooled(Arc::from(s)));
        };
        if let Some(found) = pool.get(s) {
            return Symbol(Repr::Pooled(found));
        }
        if pool.len() >= POOL_CAPACITY {
            return Symbol(Repr::Unpooled(Arc::from(s)));
        }
        let fresh: &'static str = Box::leak(Box::from(s));
        pool.insert(fresh);
        Symbol(Repr::Pooled(fresh))
    }

    /// The symbol's text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Pooled(s) => s,
            Repr::Unpooled(s) => s,
        }
    }

    /// True when both symbols share one allocation (always the case for interned symbols).
    pub fn ptr_eq(&self, other: &Symbol) -> bool {
        std::ptr::eq(self.as_str(), other.as_str())
    }

    /// Where the pool keeps this text, if it is pooled: the pool holds one copy of each text
    /// for the life of the process, so equal addresses mean equal texts, and no two texts ever
    /// share one.
    pub fn pooled_address(&self) -> Option<usize> {
        match self.0 {
            Repr::Pooled(s) => Some(s.as_ptr() as usize),
            Repr::Unpooled(_) => None,
        }
    }

    /// A symbol that bypasses the pool, as symbols do once it is full.
    #[cfg(test)]
    pub(crate) fn unpooled(s: &str) -> Symbol {
        Symbol(Repr::Unpooled(Arc::from(s)))
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.as_str().is_empty()
    }
}

impl PartialEq for Symbol {
    fn eq(&self, other: &Symbol) -> bool {
        self.ptr_eq(other) || self.as_str() == other.as_str()
    }
}

impl Eq for Symbol {}

impl PartialOrd for Symbol {
    fn partial_cmp(&self, other: &Symbol) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Symbol {
    fn cmp(&self, other: &Symbol) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for Symbol {
    // As `str` hashes: maps keyed by symbols are looked up by `&str` (`Borrow<str>`).
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
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
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for Symbol {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Symbol {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
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
    fn a_symbol_past_the_pools_capacity_is_equal_to_a_pooled_one_in_every_way() {
        use std::hash::{BuildHasher, RandomState};
        let pooled = Symbol::new("orders");
        let unpooled = Symbol::unpooled("orders");
        assert_eq!(pooled, unpooled);
        assert!(!pooled.ptr_eq(&unpooled));
        assert_eq!(pooled.cmp(&unpooled), std::cmp::Ordering::Equal);
        let h = RandomState::new();
        assert_eq!(h.hash_one(&pooled), h.hash_one(&unpooled));
        assert_eq!(h.hash_one(&pooled), h.hash_one("orders"));
        assert_eq!(unpooled.clone().as_str(), "orders");
        assert!(Symbol::unpooled("a") < pooled);
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
