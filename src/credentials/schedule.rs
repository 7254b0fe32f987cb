//! When a fetched credential is fetched again: before it expires, by a margin that scales with
//! its lifetime, and, after a failed fetch, soon but not in a loop.
//!
//! A margin fixed in minutes would have a credential that lives one minute (a short STS session)
//! fetched on every pass; one proportional to the lifetime gives it most of its life, and a
//! long-lived one a few minutes' head start, never more than [`MAX_MARGIN`]; never sooner than
//! [`MIN_GAP`] after the last fetch. A value that comes already expired counts as a failed fetch,
//! retried with a backoff. Pure: times in.

use std::time::{Duration, SystemTime};

/// The most time a renewal comes before the expiry.
pub const MAX_MARGIN: Duration = Duration::from_secs(5 * 60);
/// The longest wait between two attempts after failures.
pub const MAX_RETRY: Duration = Duration::from_secs(60);
/// The shortest wait between two fetches: a source that keeps giving values about to expire is
/// not asked again in a loop.
pub const MIN_GAP: Duration = Duration::from_secs(1);

/// When a value fetched at `fetched` that expires at `expires` is to be fetched again; `None`
/// for one that does not expire.
pub fn renew_at(fetched: SystemTime, expires: Option<SystemTime>) -> Option<SystemTime> {
    let expires = expires?;
    let lifetime = expires.duration_since(fetched).unwrap_or(Duration::ZERO);
    Some((expires - (lifetime / 4).min(MAX_MARGIN)).max(fetched + MIN_GAP))
}

/// Whether a value that expires at `expires`, fetched at `now`, came already expired (a clock
/// ahead of the issuer's): a failed fetch, not one to schedule from.
pub fn expired_on_arrival(now: SystemTime, expires: Option<SystemTime>) -> bool {
    expires.is_some_and(|e| e <= now)
}

/// How long to wait after the `failures`th failure in a row (1 s, doubling, at most a minute).
pub fn retry_after(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(6)).min(MAX_RETRY)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: SystemTime = SystemTime::UNIX_EPOCH;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn renewals_come_before_expiry_by_a_margin_that_scales() {
        assert_eq!(
            renew_at(T0, Some(T0 + s(60))),
            Some(T0 + s(45)),
            "a one-minute credential"
        );
        assert_eq!(
            renew_at(T0, Some(T0 + s(3600))),
            Some(T0 + s(3300)),
            "at most five minutes"
        );
        assert_eq!(renew_at(T0, Some(T0 + s(600))), Some(T0 + s(450)));
        assert_eq!(renew_at(T0, None), None, "a value that does not expire");
        // About to expire, or expired, when fetched: not before the shortest gap.
        assert_eq!(renew_at(T0, Some(T0 + s(1) / 2)), Some(T0 + MIN_GAP));
        assert_eq!(renew_at(T0 + s(10), Some(T0)), Some(T0 + s(10) + MIN_GAP));
        assert!(expired_on_arrival(T0 + s(10), Some(T0)));
        assert!(expired_on_arrival(T0, Some(T0)));
        assert!(!expired_on_arrival(T0, Some(T0 + s(1))));
        assert!(!expired_on_arrival(T0, None));
    }

    #[test]
    fn retries_back_off_to_a_minute() {
        let waits: Vec<u64> = (1..=9).map(|n| retry_after(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(retry_after(0), s(1));
    }
}
