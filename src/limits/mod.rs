//! Limits and budgets per client key: the pure core (issue 18).
//!
//! Operators put ringgate in front of a shared Anthropic account to cap each team: requests,
//! input and output tokens per minute, requests in flight, and spend per UTC day and month. This
//! module is the arithmetic of those caps, shared by every worker without a lock; it does no I/O
//! and reads no clock (time is passed in as a [`Now`]), so every rule is tested alone.
//!
//! - [`rate`]: "N units per minute" (a GCRA in one atomic), settle and reload rules.
//! - [`concurrency`]: requests in flight, with a guard that travels with a stream.
//! - [`budget`]: spend per UTC day and month, in micro-USD, tagged with its period.
//! - [`prices`]: usage to micro-USD, from a table of model patterns.
//! - [`headers`]: `anthropic-ratelimit-*` headers and the refusals (429, or 400 for a budget).
//! - [`key`]: one key's limiters together: `admit` and `settle`.
//!
//! # Wiring (for the request path and the configuration)
//!
//! - **Configuration.** Each `[[api_keys]]` entry resolves (over the `[limits]` defaults) to a
//!   [`LimitSettings`]; refuse it when [`LimitSettings::validate`] does. `[prices]` becomes a
//!   [`PriceTable`]: [`PriceTable::with_overrides`] puts the operator's entries in front of the
//!   shipped ones, [`PriceTable::new`] uses only theirs; [`UnknownModel`] prices or refuses the rest.
//! - **State.** One `Arc<KeyLimits>` per key, built once with [`KeyLimits::new`] (its `epoch`:
//!   the process start) and kept across reloads, keyed by key name: a reload calls
//!   [`KeyLimits::apply`] with the new settings, so counts survive (a new key gets new limits; a
//!   removed key's may be dropped). Keys whose settings are all `None` need no `KeyLimits`.
//! - **Admission**, before routing, once the body is read: read the clock once
//!   ([`Now::read`]); if the key has a budget, [`PriceTable::check_model`] on the routed model;
//!   then [`KeyLimits::admit`] with [`Estimate::from_body_len`]. An `Err` is the answer (its
//!   `retry_after` is set for 429s); nothing reaches the upstream.
//! - **Every response** of a key with limits carries [`RateHeaders::of`]`(&limits, now)`
//!   (refusals included), written with [`RateHeaders::for_each`].
//! - **Settlement**, when the answer ends (a stream: after its last event, from the relay's
//!   `Tally`; a whole body: its `usage`): [`PriceTable::cost`] of the routed model and the
//!   [`Usage`](crate::stream::tally::Usage), then [`KeyLimits::settle`]. The [`Admitted`] value
//!   holds the concurrency slot: keep it with the stream; dropping it unsettled frees the slot and
//!   leaves the estimate counted. A request that failed before the upstream counted anything is
//!   settled with a default `Usage` and a cost of 0.
//! - **Persistence.** [`Budget::snapshot`] gives what to save (spent and period of day and
//!   month); after a restart [`Budget::restore`] merges it back, even after a few requests have
//!   been counted.
//! - **Admin and metrics.** [`RateLimiter::remaining`], [`RateLimiter::reset_at`],
//!   [`Concurrency::current`], [`Budget::spent`].
//!
//! [`Budget::snapshot`]: budget::Budget::snapshot
//! [`Budget::restore`]: budget::Budget::restore
//! [`Budget::spent`]: budget::Budget::spent
//! [`RateLimiter::remaining`]: rate::RateLimiter::remaining
//! [`RateLimiter::reset_at`]: rate::RateLimiter::reset_at
//! [`Concurrency::current`]: concurrency::Concurrency::current

use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub mod budget;
pub mod concurrency;
pub mod headers;
pub mod key;
pub mod prices;
pub mod rate;
pub mod registry;

pub use headers::RateHeaders;
pub use key::{Admitted, Estimate, KeyLimits, LimitSettings};
pub use prices::{Price, PriceEntry, PriceTable, UnknownModel};

/// The time of one operation, read once by the caller: the monotonic clock for the per-minute
/// limits (a wall clock that steps must not refill or freeze them), the wall clock for the
/// calendar budgets and for the `reset` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub mono: Instant,
    /// Milliseconds since the Unix epoch.
    pub unix_ms: u64,
}

impl Now {
    /// Both clocks, now.
    pub fn read() -> Now {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Now {
            mono: Instant::now(),
            unix_ms,
        }
    }

    pub fn unix_secs(&self) -> u64 {
        self.unix_ms / 1000
    }
}
