//! Log template mining: every log line fingerprinted to its template, online.
//!
//! [`TemplateMiner`] turns `Connection to 10.0.0.7 timed out after 3000 ms` into template
//! `Connection to <*> timed out after <*> ms` with its parameters, in one pass and bounded
//! memory; [`LogTemplateDetector`] runs one miner per service and turns new, spiking and
//! error templates into signals.

mod align;
mod detector;
mod mask;
mod miner;

pub use detector::{LogTemplateConfig, LogTemplateDetector};
pub use mask::WILDCARD;
pub use miner::{TemplateConfig, TemplateId, TemplateMatch, TemplateMiner};
