//! The gateway's life after start: hot reload and graceful drain.
//!
//! A configuration and everything made from it (credential pool, upstream targets, listeners) is
//! a [`Generation`](generation::Generation), built on the thread that asks for it and published to
//! the workers, which switch to it between requests; a request finishes on the generation it
//! started with. A drain stops the accepting, lets what is in flight finish for a while, then cuts
//! the rest short in a way clients understand. [`Control`] is the handle for both, usable from any
//! thread; [`signals`] wires it to SIGHUP, SIGTERM and SIGINT for the binary.

mod beacon;
pub mod control;
pub mod generation;
pub mod phase;
pub mod signals;
pub mod worker;

pub use control::{Control, ReloadReport, Source};
