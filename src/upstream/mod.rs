//! The upstream side: where requests go, how to reach it, and how it answered.
//!
//! `client` opens connections (plain or TLS, see `conn` and `tls`) and exchanges one request for
//! a response head; `response` parses that head; `url` is the parsed `base_url`; `dns` resolves
//! upstream hosts on the blocking pool with a TTL cache, so a worker never waits on DNS and a
//! long-running gateway follows DNS changes. Pooling and the use of `dns` slot in behind
//! `client::connect` without the callers changing.

pub mod client;
pub mod conn;
pub mod dns;
pub mod response;
pub mod tls;
pub mod url;
