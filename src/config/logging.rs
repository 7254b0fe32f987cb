//! `[log]`: what the gateway says on stderr, and in which shape.
//!
//! Operators ship stderr to a log store; `format = "json"` makes every line (the access log's
//! and the rest) one JSON object for it. `level` takes `RUST_LOG`-style directives so one noisy
//! module can be turned up without drowning the rest; `RUST_LOG`, when set, wins, as it does
//! for most Rust programs.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `RUST_LOG`-style directives: `info`, `warn,ringgate::upstream=debug`, …
    pub level: String,
    pub format: LogFormat,
    /// One line per request (target `ringgate::access`, level info).
    pub access: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
            access: true,
        }
    }
}

impl LogConfig {
    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        check_directives(&self.level).map_err(|e| ("level", e))
    }
}

/// Refuses directives that `env_filter` would skip with a warning nobody reads.
pub fn check_directives(spec: &str) -> Result<(), String> {
    if spec.trim().is_empty() {
        return Err("must not be empty (e.g. \"info\")".into());
    }
    env_filter::Builder::new()
        .try_parse(spec)
        .map(|_| ())
        .map_err(|e| format!("{e} (e.g. \"info\" or \"warn,ringgate::upstream=debug\")"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives() {
        for ok in [
            "info",
            "WARN",
            "warn,ringgate::upstream=debug",
            "ringgate",
            "info,ringgate::access=off",
            "debug/failover",
        ] {
            assert_eq!(check_directives(ok), Ok(()), "{ok}");
        }
        for (bad, needle) in [
            ("", "must not be empty"),
            ("verbose=loud", "loud"),
            ("info=debug=trace", "debug=trace"),
        ] {
            let e = check_directives(bad).unwrap_err();
            assert!(e.contains(needle), "{bad:?} -> {e}");
        }
    }
}
