//! `[server]`: listeners, workers and the limits on what clients may send.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// `[server]`: listeners, workers and inbound limits.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// One address or several; each gets one `SO_REUSEPORT` listener per worker.
    pub listen: Listen,
    /// Worker threads; 0 means one per available core.
    pub workers: usize,
    pub pin_cores: bool,
    /// `auto` uses io_uring when the kernel allows it and falls back to epoll.
    pub io_driver: IoDriver,
    /// The largest body of a request collected before it is forwarded (messages, counts).
    pub max_body_bytes: u64,
    /// The largest upload (`POST /v1/files`) or batch (`POST /v1/messages/batches`): those
    /// bodies go upstream as they arrive and are never held whole.
    pub max_upload_bytes: u64,
    /// How clients reach this gateway (e.g. `https://llm.example.com`), for the links it hands
    /// out: a batch's `results_url`. When unset, `http://` and the request's `Host`.
    pub public_url: Option<String>,
    /// The largest request head accepted (431 beyond). Also the size of each connection's buffer.
    pub max_head_bytes: usize,
    pub request_head_timeout_ms: u64,
    /// How long a request body may stall between two reads before the request gets 408.
    pub request_body_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    /// On SIGTERM or SIGINT: how long requests and streams in flight may go on before the
    /// remaining streams are ended with an in-band `overloaded_error`.
    pub drain_timeout_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: Listen::One("127.0.0.1:8080".into()),
            workers: 0,
            pin_cores: true,
            io_driver: IoDriver::Auto,
            max_body_bytes: 32 * 1024 * 1024,
            max_upload_bytes: 512 * 1024 * 1024,
            public_url: None,
            max_head_bytes: 16 * 1024,
            request_head_timeout_ms: 10_000,
            request_body_timeout_ms: 30_000,
            idle_timeout_ms: 75_000,
            drain_timeout_ms: 30_000,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Listen {
    One(String),
    Many(Vec<String>),
}

impl Listen {
    pub fn addresses(&self) -> Vec<&str> {
        match self {
            Listen::One(a) => vec![a.as_str()],
            Listen::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IoDriver {
    Auto,
    IoUring,
    Epoll,
}

pub(super) fn check_server(s: &ServerConfig) -> Result<(), (&'static str, String)> {
    if s.listen.addresses().is_empty() {
        return Err(("listen", "must name at least one address".into()));
    }
    for a in s.listen.addresses() {
        if a.parse::<SocketAddr>().is_err() {
            return Err((
                "listen",
                format!("{a:?} is not an IP:port address (e.g. \"127.0.0.1:8080\")"),
            ));
        }
    }
    if s.workers > 1024 {
        return Err(("workers", "at most 1024".into()));
    }
    if s.max_head_bytes < 1024 || s.max_head_bytes > 1024 * 1024 {
        return Err(("max_head_bytes", "must be between 1024 and 1048576".into()));
    }
    if s.max_body_bytes == 0 {
        return Err(("max_body_bytes", "must be greater than 0".into()));
    }
    if s.max_upload_bytes == 0 {
        return Err(("max_upload_bytes", "must be greater than 0".into()));
    }
    if let Some(url) = &s.public_url {
        let ok = (url.starts_with("http://") || url.starts_with("https://"))
            && !url
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control());
        if !ok {
            return Err((
                "public_url",
                format!(
                    "{url:?} must be an http:// or https:// URL, e.g. \"https://llm.example.com\""
                ),
            ));
        }
    }
    for (k, v) in [
        ("request_head_timeout_ms", s.request_head_timeout_ms),
        ("request_body_timeout_ms", s.request_body_timeout_ms),
        ("idle_timeout_ms", s.idle_timeout_ms),
        ("drain_timeout_ms", s.drain_timeout_ms),
    ] {
        if v == 0 {
            return Err((k, "must be greater than 0".into()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_timeout_defaults_to_thirty_seconds_and_must_be_positive() {
        let s = ServerConfig::default();
        assert_eq!(s.drain_timeout_ms, 30_000);
        assert!(check_server(&s).is_ok());
        let zero = ServerConfig {
            drain_timeout_ms: 0,
            ..s
        };
        assert_eq!(check_server(&zero).unwrap_err().0, "drain_timeout_ms");
        let parsed: ServerConfig = toml::from_str("drain_timeout_ms = 500").unwrap();
        assert_eq!(parsed.drain_timeout_ms, 500);
    }
}
