//! The per-core keep-alive pool: idle upstream connections kept for the next request.
//!
//! A new TLS connection costs a TCP round trip, a handshake and its CPU; a pooled one costs
//! nothing, so a connection whose response was read to the end (and whose upstream did not ask
//! to close) goes back here. Each worker core has its own pool, so taking and returning touch
//! no lock and a connection never changes threads.
//!
//! Reuse is last-in, first-out: the connection used most recently is the least likely to have
//! been closed by the upstream, and the ones at the bottom age out. An idle connection is dropped
//! after `idle_timeout` (checked when taking, and by a sweep so idle sockets do not linger), and
//! looked at before reuse: one the upstream closed meanwhile is dropped, not handed out.
//!
//! A connection that fails anyway (the upstream closed it just as the request went out) is the
//! caller's to retry once, on a fresh connection: see `api::attempt`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::UpstreamConn;

#[derive(Clone, Copy, Debug)]
pub struct PoolSettings {
    /// Idle connections kept per upstream and core; 0 turns pooling off.
    pub max_idle_per_origin: usize,
    pub idle_timeout: Duration,
}

/// Idle items, newest last; pure bookkeeping, so it can be tested without sockets.
pub struct IdleList<T> {
    items: VecDeque<(T, Instant)>,
}

impl<T> Default for IdleList<T> {
    fn default() -> Self {
        IdleList {
            items: VecDeque::new(),
        }
    }
}

impl<T> IdleList<T> {
    /// Keeps `item`, idle since `now`; when `max` are kept already, the oldest is given back to
    /// be closed.
    pub fn push(&mut self, item: T, now: Instant, max: usize) -> Option<T> {
        if max == 0 {
            return Some(item);
        }
        let evicted = (self.items.len() >= max).then(|| self.items.pop_front());
        self.items.push_back((item, now));
        evicted.flatten().map(|(item, _)| item)
    }

    /// The newest item idle for less than `timeout`; older ones are dropped on the way.
    pub fn pop_fresh(&mut self, now: Instant, timeout: Duration) -> Option<T> {
        self.expire(now, timeout);
        self.items.pop_back().map(|(item, _)| item)
    }

    /// Drops the items idle for `timeout` or longer; how many.
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> usize {
        let stale = self
            .items
            .iter()
            .take_while(|(_, since)| now.saturating_duration_since(*since) >= timeout)
            .count();
        self.items.drain(..stale);
        stale
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Counters of one core's pool (summed over cores by whoever reads them).
#[derive(Debug, Default)]
pub struct PoolCounters {
    /// Connections opened for a request (none idle, or pooling off).
    pub opened: AtomicU64,
    /// Requests sent on a pooled connection.
    pub reused: AtomicU64,
    /// Pooled connections that failed before any answer, the request retried on a new one.
    pub stale_retries: AtomicU64,
    /// Idle connections dropped: timed out, closed by the upstream, or over the limit.
    pub dropped_idle: AtomicU64,
}

/// A snapshot of [`PoolCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub opened: u64,
    pub reused: u64,
    pub stale_retries: u64,
    pub dropped_idle: u64,
}

impl PoolCounters {
    pub fn read(&self) -> PoolStats {
        PoolStats {
            opened: self.opened.load(Relaxed),
            reused: self.reused.load(Relaxed),
            stale_retries: self.stale_retries.load(Relaxed),
            dropped_idle: self.dropped_idle.load(Relaxed),
        }
    }
}

impl std::ops::Add for PoolStats {
    type Output = PoolStats;
    fn add(self, o: PoolStats) -> PoolStats {
        PoolStats {
            opened: self.opened + o.opened,
            reused: self.reused + o.reused,
            stale_retries: self.stale_retries + o.stale_retries,
            dropped_idle: self.dropped_idle + o.dropped_idle,
        }
    }
}

/// One core's idle connections, per upstream (indexed like the configuration's upstreams).
pub struct ConnPool {
    settings: PoolSettings,
    origins: RefCell<Vec<IdleList<UpstreamConn>>>,
    counters: Arc<PoolCounters>,
}

impl ConnPool {
    pub fn new(origins: usize, settings: PoolSettings, counters: Arc<PoolCounters>) -> ConnPool {
        ConnPool {
            settings,
            origins: RefCell::new((0..origins).map(|_| IdleList::default()).collect()),
            counters,
        }
    }

    /// An idle connection to `origin` that is still open, counted as reused.
    pub fn take(&self, origin: usize) -> Option<UpstreamConn> {
        let now = Instant::now();
        let mut origins = self.origins.borrow_mut();
        let idle = &mut origins[origin];
        let timeout = self.settings.idle_timeout;
        self.count_dropped(idle.expire(now, timeout));
        while let Some(conn) = idle.pop_fresh(now, timeout) {
            if conn.still_open() {
                self.counters.reused.fetch_add(1, Relaxed);
                return Some(conn);
            }
            self.count_dropped(1);
        }
        None
    }

    /// Keeps a connection whose response ended cleanly, for the next request to `origin`.
    pub fn put(&self, origin: usize, conn: UpstreamConn) {
        let max = self.settings.max_idle_per_origin;
        let evicted = self.origins.borrow_mut()[origin].push(conn, Instant::now(), max);
        // Closed outside the borrow; with pooling off every connection ends here.
        if evicted.is_some() && max > 0 {
            self.count_dropped(1);
        }
    }

    /// Counts a connection opened for a request.
    pub fn opened(&self) {
        self.counters.opened.fetch_add(1, Relaxed);
    }

    /// Counts a reused connection that failed before its answer.
    pub fn stale_retry(&self) {
        self.counters.stale_retries.fetch_add(1, Relaxed);
    }

    /// Closes the connections idle for too long.
    pub fn sweep(&self) {
        let now = Instant::now();
        let timeout = self.settings.idle_timeout;
        let dropped: usize = (self.origins.borrow_mut().iter_mut())
            .map(|idle| idle.expire(now, timeout))
            .sum();
        self.count_dropped(dropped);
    }

    /// How often [`sweep`](Self::sweep) should run: often enough that a connection outlives its
    /// timeout by a fraction of it at most.
    pub fn sweep_interval(&self) -> Duration {
        (self.settings.idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(5))
    }

    fn count_dropped(&self, n: usize) {
        if n > 0 {
            self.counters.dropped_idle.fetch_add(n as u64, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn newest_first() {
        let (mut idle, t) = (IdleList::default(), Instant::now());
        for i in 0..3 {
            assert_eq!(idle.push(i, t, 8), None);
        }
        assert_eq!(idle.pop_fresh(t, MINUTE), Some(2));
        assert_eq!(idle.pop_fresh(t, MINUTE), Some(1));
        idle.push(7, t, 8);
        assert_eq!(idle.pop_fresh(t, MINUTE), Some(7));
        assert_eq!(idle.pop_fresh(t, MINUTE), Some(0));
        assert_eq!(idle.pop_fresh(t, MINUTE), None);
    }

    #[test]
    fn the_oldest_goes_when_full() {
        let (mut idle, t) = (IdleList::default(), Instant::now());
        assert_eq!(idle.push(1, t, 2), None);
        assert_eq!(idle.push(2, t, 2), None);
        assert_eq!(idle.push(3, t, 2), Some(1));
        assert_eq!(idle.len(), 2);
        assert_eq!(idle.pop_fresh(t, MINUTE), Some(3));
        assert_eq!(idle.pop_fresh(t, MINUTE), Some(2));
    }

    #[test]
    fn nothing_is_kept_with_pooling_off() {
        let (mut idle, t) = (IdleList::default(), Instant::now());
        assert_eq!(idle.push(1, t, 0), Some(1));
        assert!(idle.is_empty());
    }

    #[test]
    fn idle_items_time_out() {
        let (mut idle, t) = (IdleList::default(), Instant::now());
        let s = Duration::from_secs;
        idle.push("old", t, 8);
        idle.push("mid", t + s(10), 8);
        idle.push("new", t + s(20), 8);
        // At t+30 with a 15 s timeout, "old" (30 s) and "mid" (20 s) are too old.
        assert_eq!(idle.expire(t + s(30), s(15)), 2);
        assert_eq!(idle.len(), 1);
        assert_eq!(idle.pop_fresh(t + s(34), s(15)), Some("new"));
        idle.push("a", t, 8);
        idle.push("b", t + s(1), 8);
        // Exactly at the timeout counts as expired: taking never hands out an expired item.
        assert_eq!(idle.pop_fresh(t + s(16), s(15)), None);
        assert!(idle.is_empty());
    }
}
