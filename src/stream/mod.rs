//! Relaying response bodies, and event streams above all.

pub mod relay;
pub mod sse;
