//! The mock upstream: Anthropic-shaped answers with no key and no network.

pub mod answers;
pub mod directives;
pub mod faults;
pub mod script;
pub mod server;
pub mod shape;
