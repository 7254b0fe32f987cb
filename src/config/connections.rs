//! `[pool]` and `[dns]`: how upstream connections are kept and how upstream hosts are resolved.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::upstream::pool::PoolSettings;

/// `[pool]`: idle upstream connections kept per worker core for the next request.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// Idle connections kept per upstream on each worker; 0 opens a connection per request.
    pub max_idle_per_origin: usize,
    /// An idle connection older than this is closed rather than reused.
    pub idle_timeout_ms: u64,
    /// Connections opened to each upstream by each worker at start, so the first requests do
    /// not pay for a handshake (at most `max_idle_per_origin`).
    pub prewarm: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_idle_per_origin: 32,
            // Below the idle timeouts servers commonly use (nginx 75 s, Go 90 s), so the
            // gateway usually closes first; a connection closed by the server meanwhile is
            // noticed before reuse, or retried.
            idle_timeout_ms: 30_000,
            prewarm: 0,
        }
    }
}

impl PoolConfig {
    pub fn settings(&self) -> PoolSettings {
        PoolSettings {
            max_idle_per_origin: self.max_idle_per_origin,
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
        }
    }

    /// Connections each worker opens per upstream at start.
    pub fn prewarm_count(&self) -> usize {
        self.prewarm.min(self.max_idle_per_origin)
    }

    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        if self.idle_timeout_ms == 0 {
            return Err((
                "idle_timeout_ms",
                "must be at least 1 (set max_idle_per_origin = 0 to turn pooling off)".into(),
            ));
        }
        if self.prewarm > self.max_idle_per_origin {
            return Err((
                "prewarm",
                format!(
                    "cannot exceed max_idle_per_origin ({}): prewarmed connections are kept idle",
                    self.max_idle_per_origin
                ),
            ));
        }
        Ok(())
    }
}

/// `[dns]`: upstream host names are resolved off the worker threads and cached.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// How long a resolved address list is used before it is looked up again (the system
    /// resolver does not tell record TTLs).
    pub ttl_ms: u64,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig { ttl_ms: 30_000 }
    }
}

impl DnsConfig {
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms)
    }

    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        if self.ttl_ms == 0 {
            return Err(("ttl_ms", "must be at least 1".into()));
        }
        Ok(())
    }
}
