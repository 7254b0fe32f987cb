//! The mock upstream: Anthropic-shaped answers with no key and no network.

pub mod answers;
pub mod server;
pub mod shape;
