//! The values rule expressions compute with, and their static types.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use kaizen_model::Symbol;

/// A value in a rule's row. Timestamps and intervals are milliseconds in `Num`; their static
/// type (see [`Type`]) keeps them apart at check time.
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// SQL NULL: absent column, label or failed conversion.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A number (also time in ms since the epoch, and intervals in ms).
    Num(f64),
    /// An interned string (service names, labels): cheap to clone.
    Sym(Symbol),
    /// A computed or free-text string.
    Str(Arc<str>),
    /// A fixed string (enum-like columns: `level`, `status`, `kind`): no allocation.
    Static(&'static str),
}

impl Value {
    /// A string value.
    pub fn str(s: &str) -> Value {
        Value::Str(Arc::from(s))
    }

    /// The string inside, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Sym(s) => Some(s.as_str()),
            Value::Str(s) => Some(s),
            Value::Static(s) => Some(s),
            _ => None,
        }
    }

    /// The number inside, if this is one (strings that look like numbers count).
    pub fn as_num(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            Value::Sym(_) | Value::Str(_) | Value::Static(_) => {
                self.as_str().and_then(|s| s.trim().parse().ok())
            }
            Value::Null => None,
        }
    }

    /// SQL truthiness: only `true` is true.
    pub fn is_true(&self) -> bool {
        matches!(self, Value::Bool(true))
    }

    /// Is this NULL?
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// SQL comparison: `None` when either side is NULL or the kinds are incomparable.
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Null, _) | (_, Value::Null) => None,
            (Value::Num(a), Value::Num(b)) => a.partial_cmp(b),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (a, b) => match (a.as_str(), b.as_str()) {
                (Some(x), Some(y)) => Some(x.cmp(y)),
                _ => match (a.as_num(), b.as_num()) {
                    (Some(x), Some(y)) => x.partial_cmp(&y),
                    _ => None,
                },
            },
        }
    }

    /// A total order for grouping and sorting (NULL first, then booleans, numbers, strings).
    pub fn total_cmp(&self, other: &Value) -> Ordering {
        fn rank(v: &Value) -> u8 {
            match v {
                Value::Null => 0,
                Value::Bool(_) => 1,
                Value::Num(_) => 2,
                Value::Sym(_) | Value::Str(_) | Value::Static(_) => 3,
            }
        }
        match (self, other) {
            (Value::Num(a), Value::Num(b)) => a.total_cmp(b),
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (a, b) if rank(a) == 3 && rank(b) == 3 => a.as_str().cmp(&b.as_str()),
            (a, b) => rank(a).cmp(&rank(b)),
        }
    }

    /// `self == other`, answered without comparing text where it can be: group keys are
    /// mostly interned names, and one name is one symbol unless the pool was full.
    pub fn same(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Sym(a), Value::Sym(b)) if a.ptr_eq(b) => true,
            // `total_cmp` of floats is equal exactly when the bits are.
            (Value::Num(a), Value::Num(b)) => a.to_bits() == b.to_bits(),
            (Value::Null, Value::Null) => true,
            _ => self.total_cmp(other) == Ordering::Equal,
        }
    }

    /// `same` for every pair of two keys.
    pub fn same_key(a: &[Value], b: &[Value]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
    }

    /// Feeds this value into a stable hash (for routing a group to a worker).
    pub fn hash_into(&self, h: &mut kaizen_model::StableHasher) {
        match self {
            Value::Null => h.write_str("\u{0}null"),
            Value::Bool(b) => h.write_str(if *b { "\u{0}t" } else { "\u{0}f" }),
            Value::Num(n) => h.write_str(&n.to_bits().to_string()),
            Value::Sym(_) | Value::Str(_) | Value::Static(_) => {
                h.write_str(self.as_str().unwrap_or_default())
            }
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.total_cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

impl std::hash::Hash for Value {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        // Consistent with `total_cmp`: every string kind hashes by its text.
        match self {
            Value::Null => 0u8.hash(h),
            Value::Bool(b) => (1u8, b).hash(h),
            Value::Num(n) => (2u8, n.to_bits()).hash(h),
            _ => (3u8, self.as_str().unwrap_or_default()).hash(h),
        }
    }
}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Value) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Value {
    fn cmp(&self, other: &Value) -> Ordering {
        self.total_cmp(other)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Num(n) => {
                if n.fract() == 0.0 && n.abs() < 1e15 {
                    write!(f, "{}", *n as i64)
                } else {
                    let text = format!("{n:.3}");
                    f.write_str(text.trim_end_matches('0').trim_end_matches('.'))
                }
            }
            Value::Sym(s) => f.write_str(s.as_str()),
            Value::Str(s) => f.write_str(s),
            Value::Static(s) => f.write_str(s),
        }
    }
}

/// The wire form: every string kind travels as a string, so a value survives both JSON (for
/// fixtures and explain output) and timely's bincode exchange between processes.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Plain {
    Null,
    Bool(bool),
    Num(f64),
    Str(Arc<str>),
}

#[derive(Serialize, Deserialize)]
enum Tagged {
    Null,
    Bool(bool),
    Num(f64),
    Str(Arc<str>),
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = || Arc::<str>::from(self.as_str().unwrap_or_default());
        if s.is_human_readable() {
            match self {
                Value::Null => Plain::Null,
                Value::Bool(b) => Plain::Bool(*b),
                Value::Num(n) => Plain::Num(*n),
                _ => Plain::Str(text()),
            }
            .serialize(s)
        } else {
            match self {
                Value::Null => Tagged::Null,
                Value::Bool(b) => Tagged::Bool(*b),
                Value::Num(n) => Tagged::Num(*n),
                _ => Tagged::Str(text()),
            }
            .serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        Ok(if d.is_human_readable() {
            match Plain::deserialize(d)? {
                Plain::Null => Value::Null,
                Plain::Bool(b) => Value::Bool(b),
                Plain::Num(n) => Value::Num(n),
                Plain::Str(s) => Value::Str(s),
            }
        } else {
            match Tagged::deserialize(d)? {
                Tagged::Null => Value::Null,
                Tagged::Bool(b) => Value::Bool(b),
                Tagged::Num(n) => Value::Num(n),
                Tagged::Str(s) => Value::Str(s),
            }
        })
    }
}

/// The static type of an expression, checked before a rule runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    /// Boolean.
    Bool,
    /// Number.
    Num,
    /// String.
    Str,
    /// A point in event time.
    Time,
    /// A duration.
    Interval,
    /// A label map (`labels['team']`).
    Map,
    /// NULL literal or a function whose type follows its arguments.
    Any,
}

impl Type {
    /// Can a value of type `self` be used where `want` is expected?
    pub fn fits(self, want: Type) -> bool {
        self == want
            || self == Type::Any
            || want == Type::Any
            || matches!(
                (self, want),
                (Type::Time, Type::Num) | (Type::Interval, Type::Num)
            )
    }

    /// Name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Type::Bool => "boolean",
            Type::Num => "number",
            Type::Str => "string",
            Type::Time => "timestamp",
            Type::Interval => "interval",
            Type::Map => "label map",
            Type::Any => "any",
        }
    }
}
