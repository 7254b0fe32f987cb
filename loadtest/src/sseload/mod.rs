//! sseload: a stream-aware load generator for the Messages API.
//!
//! General HTTP benchmarks count responses and bytes; a gateway for streams has to be judged
//! on each event: that it arrives, in order, intact, and how long the gateway held it. sseload
//! asks the mock upstream (directly or through a gateway) for streams of a known shape whose
//! deltas carry their send time, checks every event, and measures the delay added to each.
//! It offers load in a closed loop, an open loop (coordinated omission corrected) or by
//! holding many streams at once, and can read the target's CPU time and memory from `/proc`.
//!
//! Modules: [`args`] (the command line and the plan), [`client`] (one HTTP/1.1 exchange),
//! [`stream_check`] (SSE validation), [`stats`] and [`report`] (counting and output),
//! [`procfs`], [`worker`] (per-thread and shared state), [`closed`], [`open`] and [`hold`]
//! (the three ways to offer load), and [`run`] (a whole run).

pub mod args;
pub mod client;
pub mod closed;
pub mod hold;
pub mod open;
pub mod procfs;
pub mod report;
pub mod run;
pub mod stats;
pub mod stream_check;
pub mod worker;
