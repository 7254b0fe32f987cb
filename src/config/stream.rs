//! `[stream]`: how response bodies, and event streams above all, are relayed.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::stream::flush::{FlushMode, FlushPolicy};
use crate::stream::relay::RelaySettings;
use crate::stream::timer;

/// `[stream]`: how event streams are relayed.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// The relay buffer of one stream, allocated once per stream.
    pub buffer_bytes: usize,
    /// A stream whose upstream sends nothing for this long is ended with an in-band error.
    pub upstream_idle_timeout_ms: u64,
    /// `coalesce`: gather events into fewer writes within the limits below; `immediate`: write
    /// each event as it arrives.
    pub mode: FlushMode,
    /// Whole events of at least this many bytes are written at once.
    pub flush_threshold_bytes: usize,
    /// No whole event waits longer than this for its write.
    pub flush_interval_ms: u64,
    /// A stream with nothing to send for this long gets a `: keep-alive` comment; 0 = never.
    pub keepalive_interval_ms: u64,
    /// A client that takes none of a write for this long loses the response (and the upstream
    /// connection is released).
    pub client_write_timeout_ms: u64,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            buffer_bytes: 16 * 1024,
            upstream_idle_timeout_ms: 300_000,
            mode: FlushMode::Coalesce,
            flush_threshold_bytes: 8 * 1024,
            flush_interval_ms: 120,
            keepalive_interval_ms: 15_000,
            client_write_timeout_ms: 60_000,
        }
    }
}

impl StreamConfig {
    pub fn relay_settings(&self) -> RelaySettings {
        let ms = Duration::from_millis;
        RelaySettings {
            buffer_bytes: self.buffer_bytes,
            idle_timeout: ms(self.upstream_idle_timeout_ms),
            flush: FlushPolicy {
                mode: self.mode,
                threshold: self.flush_threshold_bytes,
                // Aimed early by the timer's lateness, so that no event waits longer than the
                // configured interval: it is the bound users set, not a target.
                interval: ms(self.flush_interval_ms).saturating_sub(timer::MAX_LATENESS),
            },
            keepalive: (self.keepalive_interval_ms > 0).then(|| ms(self.keepalive_interval_ms)),
            write_timeout: ms(self.client_write_timeout_ms),
        }
    }

    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        if self.buffer_bytes < 1024 {
            return Err(("buffer_bytes", "must be at least 1024".into()));
        }
        if self.flush_threshold_bytes == 0 {
            // Above buffer_bytes it is harmless: a full buffer is written anyway.
            return Err(("flush_threshold_bytes", "must be at least 1".into()));
        }
        if self.upstream_idle_timeout_ms == 0 {
            return Err(("upstream_idle_timeout_ms", "must be at least 1".into()));
        }
        if self.client_write_timeout_ms == 0 {
            return Err(("client_write_timeout_ms", "must be at least 1".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flush_deadline_is_aimed_early_by_the_timers_lateness() {
        let settings = StreamConfig::default().relay_settings();
        assert_eq!(
            settings.flush.interval + timer::MAX_LATENESS,
            Duration::from_millis(120)
        );
    }
}
