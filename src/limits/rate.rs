//! "N units per minute", shared by every worker thread, without a lock: the arithmetic behind the
//! requests, input-token and output-token limits of a client key.
//!
//! The limit behaves like Anthropic's own: a bucket of capacity `N` that refills continuously at
//! `N / 60` units per second, so a full bucket admits a burst of `N` and then one unit every
//! `60 / N` seconds. It is kept as a GCRA (generic cell rate algorithm): instead of a level and a
//! last-update time, one number, the *theoretical arrival time* (`tat`), says when the bucket will
//! be full again. Each unit moves `tat` forward by `60 s / N`; the level at `now` is
//! `max(tat - now, 0)` expressed in time, and a take is allowed while `tat` stays within one
//! minute of `now`. `tat` is nanoseconds since an epoch given at construction, in one
//! [`AtomicU64`] updated by a compare-and-swap loop, so every thread sees every take exactly.
//!
//! The time a cost stands for, `cost × 60 s / N`, is rounded down to the nanosecond once per
//! operation (not per unit): each operation may leave the client less than 1 ns of credit, a
//! relative excess below `N / 6·10¹⁰` (one extra request in six minutes at 100 000 a minute; a
//! burst from a full bucket is exact up to about 245 000). Token limits are taken in amounts of
//! hundreds or thousands per operation, where the excess is smaller still.
//!
//! Settling. A take made on an estimate is corrected afterwards with [`RateLimiter::give_back`]
//! or [`RateLimiter::charge`]. A charge always succeeds and may leave the bucket *in debt* (more
//! than a minute's worth taken): later takes then wait until the debt has drained, which keeps the
//! average at `N` per minute whatever the estimates were. A cost of 0 admits only a bucket that is
//! not in debt; that is how the output-token limit is checked when no output is known yet.
//!
//! A cost larger than the whole capacity could never fit. It is admitted when the bucket is full
//! (nothing taken) and puts it in debt, so a key limited to 10 000 tokens a minute can still send
//! one 15 000-token prompt, and then waits 90 s: the average still holds.
//!
//! Reload rule ([`RateLimiter::set_limit`]): the *units taken* are kept, not the fraction of the
//! bucket. A key that took 50 of 60 keeps those 50 under a new limit of 100 (50 remain) or of 30
//! (20 units in debt, drained at the new rate). Turning a limit off forgets the level; turning one
//! on starts with a full bucket.

use std::sync::atomic::{AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

const MINUTE_NS: u64 = 60_000_000_000;

/// A take that was admitted: `units` are now counted against the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Taken {
    pub units: u64,
}

/// A take that was refused; nothing was counted. `retry_after` is when the same take would be
/// admitted if nothing else happened meanwhile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub retry_after: Duration,
}

/// One "N units per minute" limit. `N` = 0 means no limit: every take is admitted and nothing is
/// counted.
#[derive(Debug)]
pub struct RateLimiter {
    epoch: Instant,
    /// N, units per minute; 0 when off.
    limit: AtomicU64,
    /// The theoretical arrival time, ns since `epoch`: when the bucket is full again.
    tat: AtomicU64,
}

impl RateLimiter {
    /// A limiter with a full bucket. `epoch` is any instant not later than the first `now` it
    /// will see (a `now` before it counts as the epoch); the process start does.
    pub fn new(per_minute: u64, epoch: Instant) -> RateLimiter {
        RateLimiter {
            epoch,
            limit: AtomicU64::new(per_minute),
            tat: AtomicU64::new(0),
        }
    }

    /// N, or 0 when off.
    pub fn limit(&self) -> u64 {
        self.limit.load(Relaxed)
    }

    pub fn is_on(&self) -> bool {
        self.limit() != 0
    }

    /// Forgets what was taken: the bucket is full again (an operator's reset of a key).
    pub fn reset(&self) {
        self.tat.store(0, Relaxed);
    }

    fn ns(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    fn at(&self, ns: u64) -> Instant {
        self.epoch + Duration::from_nanos(ns)
    }

    /// Admits `cost` units if they fit, counting them; otherwise counts nothing.
    pub fn try_take(&self, cost: u64, now: Instant) -> Result<Taken, Refused> {
        let limit = self.limit();
        if limit == 0 {
            return Ok(Taken { units: cost });
        }
        let now = self.ns(now);
        let span = span(cost, limit);
        let mut tat = self.tat.load(Relaxed);
        loop {
            let level = tat.saturating_sub(now);
            fits(level, span)?;
            if span == 0 {
                // Nothing to count: the check alone.
                return Ok(Taken { units: 0 });
            }
            match self
                .tat
                .compare_exchange_weak(tat, now + level + span, AcqRel, Relaxed)
            {
                Ok(_) => return Ok(Taken { units: cost }),
                Err(seen) => tat = seen,
            }
        }
    }

    /// Whether [`try_take`](Self::try_take) would admit `cost` now, counting nothing; the
    /// refusal it would give.
    pub fn check(&self, cost: u64, now: Instant) -> Result<(), Refused> {
        let limit = self.limit();
        if limit == 0 {
            return Ok(());
        }
        let level = self.tat.load(Acquire).saturating_sub(self.ns(now));
        fits(level, span(cost, limit))
    }

    /// Uncounts `units` taken earlier (an estimate that was too high, a take undone). The level
    /// never goes below empty: what already drained is not given twice.
    pub fn give_back(&self, units: u64, now: Instant) {
        let limit = self.limit();
        if limit == 0 || units == 0 {
            return;
        }
        let now = self.ns(now);
        let span = span(units, limit);
        let _ = self.tat.fetch_update(AcqRel, Relaxed, |tat| {
            (tat > now).then(|| tat.saturating_sub(span).max(now))
        });
    }

    /// Counts `units` more, admitted or not (an estimate that was too low, output tokens known at
    /// the end): may put the bucket in debt.
    pub fn charge(&self, units: u64, now: Instant) {
        let limit = self.limit();
        if limit == 0 || units == 0 {
            return;
        }
        let now = self.ns(now);
        let span = span(units, limit);
        let _ = self.tat.fetch_update(AcqRel, Relaxed, |tat| {
            Some(tat.max(now).saturating_add(span))
        });
    }

    /// Units a take could have now (0 in debt); `u64::MAX` when off.
    pub fn remaining(&self, now: Instant) -> u64 {
        let limit = self.limit();
        if limit == 0 {
            return u64::MAX;
        }
        let level = self.tat.load(Acquire).saturating_sub(self.ns(now));
        let free = MINUTE_NS.saturating_sub(level);
        (u128::from(free) * u128::from(limit) / u128::from(MINUTE_NS)) as u64
    }

    /// When the bucket is full again (`now` when it is, or when off).
    pub fn reset_at(&self, now: Instant) -> Instant {
        if !self.is_on() {
            return now;
        }
        let tat = self.tat.load(Acquire);
        if tat <= self.ns(now) {
            now
        } else {
            self.at(tat)
        }
    }

    /// Changes N (0: off), keeping the units taken (see the module's reload rule).
    pub fn set_limit(&self, per_minute: u64, now: Instant) {
        let old = self.limit.swap(per_minute, AcqRel);
        if old == per_minute {
            return;
        }
        let now = self.ns(now);
        let _ = self.tat.fetch_update(AcqRel, Relaxed, |tat| {
            if old == 0 || per_minute == 0 {
                return Some(0);
            }
            let level = tat.saturating_sub(now);
            // units = level × old / 1 min; new level = units × 1 min / new.
            let scaled = u128::from(level) * u128::from(old) / u128::from(per_minute);
            Some(now.saturating_add(scaled.min(u128::from(u64::MAX / 2)) as u64))
        });
    }
}

/// Whether `span` more fits on top of `level` (both in ns): it does while the total stays within a
/// minute, and always in an empty bucket (a cost over the capacity waits for that).
fn fits(level: u64, span: u64) -> Result<(), Refused> {
    let wanted = level.saturating_add(span);
    if wanted <= MINUTE_NS || level == 0 {
        return Ok(());
    }
    let wait = if span > MINUTE_NS {
        level
    } else {
        wanted - MINUTE_NS
    };
    Err(Refused {
        retry_after: Duration::from_nanos(wait),
    })
}

/// The time `cost` units stand for at `limit` per minute, in ns, rounded down.
fn span(cost: u64, limit: u64) -> u64 {
    let ns = u128::from(cost) * u128::from(MINUTE_NS) / u128::from(limit);
    ns.min(u128::from(u64::MAX / 2)) as u64
}

#[cfg(test)]
#[path = "rate_tests.rs"]
mod tests;
