//! ringgate: an io_uring gateway for the Anthropic Messages API.
//!
//! Clients talk to it as they would to `api.anthropic.com`; it forwards their requests to an
//! upstream and relays the answers, streams included. See `DESIGN.md` in the shared folder for
//! the map; [`Gateway::start`] is the entry point.

pub mod access_log;
pub mod admin;
pub mod api;
pub mod config;
pub mod credentials;
pub mod dialect;
pub mod exchange;
pub mod gateway;
pub mod http;
pub mod json;
pub mod lifecycle;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod mock;
pub mod objects;
pub mod request_id;
pub mod routing;
pub mod runtime;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod stream;
pub mod upstream;

pub use config::Config;
pub use gateway::{Gateway, GatewayHandle};
