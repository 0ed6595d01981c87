//! Keeping only the newest version of each insight, in memory.

use std::collections::BTreeMap;
use std::io;

use kaizen_model::Insight;

use crate::InsightSink;

/// Remembers the latest version of every insight, by id: what evaluations and summaries read
/// after a replay.
#[derive(Default)]
pub struct LatestInsights(BTreeMap<String, Insight>);

impl LatestInsights {
    /// The latest versions, by id.
    pub fn by_id(&self) -> &BTreeMap<String, Insight> {
        &self.0
    }

    /// Number of distinct insights (incidents).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No insight yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl InsightSink for LatestInsights {
    fn emit(&mut self, insight: &Insight) -> io::Result<()> {
        self.0.insert(insight.id.clone(), insight.clone());
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
