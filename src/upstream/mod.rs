//! The upstream side: where requests go, how to reach it, and how it answered.
//!
//! `dns` resolves upstream host names off the worker threads and caches them; `dial` opens
//! connections (plain or TLS, see `conn` and `tls`; through a CONNECT tunnel of an outbound HTTP
//! proxy, see `proxy`, where egress must go through one); `pool` keeps them between requests;
//! `client` exchanges one request for a response head, `response` parses that head, and `url` is
//! the parsed `base_url`.

pub mod client;
pub mod conn;
pub mod dial;
pub mod dns;
pub mod pool;
pub mod proxy;
pub mod response;
pub mod tls;
pub mod url;
