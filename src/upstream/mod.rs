//! The upstream side: where requests go, how to reach it, and how it answered.
//!
//! `client` opens connections (plain or TLS, see `conn` and `tls`) and exchanges one request for
//! a response head; `response` parses that head; `url` is the parsed `base_url`; `proxy` opens a
//! CONNECT tunnel through an outbound HTTP proxy (`proxy_url`) for networks whose egress goes
//! through one. Pooling and off-thread DNS slot in behind `client::connect` without the callers
//! changing.

pub mod client;
pub mod conn;
pub mod proxy;
pub mod response;
pub mod tls;
pub mod url;
