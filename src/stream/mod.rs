//! Relaying response bodies, and event streams above all.

pub mod flush;
pub mod json_usage;
pub mod relay;
pub mod sse;
pub mod tally;
pub mod timer;
pub mod translate;
pub mod wheel;
