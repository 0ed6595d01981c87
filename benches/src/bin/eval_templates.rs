//! Grouping and parsing accuracy of the template miner on a Loghub-2k style folder.
fn main() {}
