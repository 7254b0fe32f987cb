//! How many requests of one client key are in flight, streams included, and a cap on it.
//!
//! A stream can hold a slot for minutes and is relayed by whichever worker accepted it, so the
//! count is one atomic shared by all workers, and a slot is a [`Guard`] (`Send`, `'static`) that
//! travels with the request and gives the slot back when dropped, however the request ends.
//! Entering is a compare-and-swap loop: the count never exceeds the limit, not even for an
//! instant, so a request is never refused because of another one that was itself refused.

use std::sync::atomic::{AtomicU32, Ordering::*};
use std::sync::Arc;

/// The in-flight count of one key. A limit of 0 means no limit (the count is still kept).
#[derive(Debug, Default)]
pub struct Concurrency {
    limit: AtomicU32,
    current: AtomicU32,
}

/// One request in flight; dropping it leaves.
#[derive(Debug)]
pub struct Guard {
    of: Arc<Concurrency>,
}

impl Concurrency {
    pub fn new(limit: u32) -> Arc<Concurrency> {
        Arc::new(Concurrency {
            limit: AtomicU32::new(limit),
            current: AtomicU32::new(0),
        })
    }

    /// The cap, or 0 when there is none.
    pub fn limit(&self) -> u32 {
        self.limit.load(Relaxed)
    }

    /// A reload: requests already in flight stay; if they are more than the new limit, new ones
    /// wait until enough have left.
    pub fn set_limit(&self, limit: u32) {
        self.limit.store(limit, Relaxed);
    }

    /// Requests in flight now.
    pub fn current(&self) -> u32 {
        self.current.load(Relaxed)
    }

    /// A slot, or `None` when the limit is reached.
    pub fn try_enter(self: &Arc<Self>) -> Option<Guard> {
        let limit = match self.limit() {
            0 => u32::MAX,
            n => n,
        };
        self.current
            .fetch_update(AcqRel, Relaxed, |n| (n < limit).then_some(n + 1))
            .ok()
            .map(|_| Guard { of: self.clone() })
    }
}

impl Guard {
    /// The counter this slot belongs to.
    pub fn of(&self) -> &Arc<Concurrency> {
        &self.of
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.of.current.fetch_sub(1, AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_releases_on_drop() {
        let c = Concurrency::new(2);
        let a = c.try_enter().unwrap();
        let b = c.try_enter().unwrap();
        assert!(c.try_enter().is_none());
        assert_eq!(c.current(), 2);
        drop(a);
        assert_eq!(c.current(), 1);
        let _c = c.try_enter().unwrap();
        assert!(c.try_enter().is_none());
        drop(b);
        assert_eq!(c.current(), 1);
    }

    #[test]
    fn no_limit_still_counts() {
        let c = Concurrency::new(0);
        let guards: Vec<Guard> = (0..100).map(|_| c.try_enter().unwrap()).collect();
        assert_eq!(c.current(), 100);
        drop(guards);
        assert_eq!(c.current(), 0);
    }

    #[test]
    fn a_lower_limit_lets_the_flight_land() {
        let c = Concurrency::new(3);
        let held: Vec<Guard> = (0..3).map(|_| c.try_enter().unwrap()).collect();
        c.set_limit(1);
        assert!(c.try_enter().is_none());
        drop(held);
        assert!(c.try_enter().is_some());
    }

    #[test]
    fn a_guard_moves_to_another_thread() {
        fn is_send<T: Send + 'static>(_: &T) {}
        let c = Concurrency::new(1);
        let g = c.try_enter().unwrap();
        is_send(&g);
        std::thread::spawn(move || drop(g)).join().unwrap();
        assert_eq!(c.current(), 0);
    }

    #[test]
    fn threads_never_exceed_the_limit() {
        let c = Concurrency::new(3);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        if let Some(g) = c.try_enter() {
                            assert!(g.of().current() <= 3);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.current(), 0);
    }
}
