//! kaizen's rule language: SQL-like rule files that SREs write, parsed, checked against the
//! stream schemas, compiled to plans, and run as incremental state machines.
//!
//! A rule runs in two stages so that the dataflow can spread it over workers:
//! [`RuleFilter`] tests each row where it is and emits small [`RuleRow`]s keyed by the rule's
//! group; [`RuleEvaluator`] holds each group's windows, sequences and alert lifecycle and emits
//! signals (for correlation) or insights (straight to the sinks).
//!
//! Not here: the dataflow (the engine wires these two stages into timely) and any I/O beyond
//! reading rule files and fixtures.

mod aggregate;
mod check;
mod ddsketch;
mod diagnostic;
mod dispatch;
mod evaluate;
mod evidence;
mod expr;
mod filter;
mod firing;
mod fixtures;
mod graph;
mod join;
mod plan;
mod ruleset;
mod schema;
mod sequence;
mod syntax;
mod template;
mod value;

pub use diagnostic::{suggest, Location, RuleError, SourceFile};
pub use evaluate::{RuleEvaluator, RuleOutput, QUIET_MS};
pub use evidence::Evidence;
pub use filter::{RowKind, RuleFilter, RuleRow};
pub use fixtures::{fixture_path, run, run_fixture, run_inputs, run_with_graph, FixtureReport};
pub use graph::Dependencies;
pub use plan::{compile, Rule, Shape, Window};
pub use ruleset::{collect_sql, LiveRules, ReloadReport, RuleSet};
pub use schema::{Column, Row, StreamName, TemplateRef};
pub use syntax::{parse_file, parse_interval, Emit, RuleStatement, MAX_INTERVAL};
pub use value::{Type, Value};
