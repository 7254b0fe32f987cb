//! Where a fetched credential lives: written by the refresher, read by every worker on every
//! request, never with a lock on the read side.
//!
//! A read is one atomic load of the current value (`arc_swap`). Each value carries its
//! generation, so that an upstream's refusal can be tied to the value it refused: a 401 or 403
//! asks for one refresh of that generation before the credential is blamed, and a value that
//! was itself fetched after such a refusal and refused again is the credential's fault.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwapOption;

/// One fetched value.
#[derive(Debug)]
pub struct Fetched<T> {
    pub value: T,
    /// When it stops working; `None` for a value that does not expire.
    pub expires: Option<SystemTime>,
    /// Counts the values the cell has held, from 1.
    pub generation: u64,
    /// It was fetched because an upstream refused the one before.
    pub after_refusal: bool,
}

/// What a refusal of a fetched value means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A refresh is asked for: a passing fault until the new value is in.
    Refreshing,
    /// The value was fetched after a refusal and refused again: the credential is at fault.
    Blame,
}

pub struct Cell<T> {
    current: ArcSwapOption<Fetched<T>>,
    generation: AtomicU64,
    /// The generation a refusal asked to be replaced (0: none).
    refused: AtomicU64,
    /// The next fetch answers a refusal.
    refresh_asked: AtomicBool,
    /// Why the last fetch failed, while it stands.
    failure: Mutex<Option<String>>,
}

impl<T> Default for Cell<T> {
    fn default() -> Self {
        Cell {
            current: ArcSwapOption::empty(),
            generation: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            refresh_asked: AtomicBool::new(false),
            failure: Mutex::new(None),
        }
    }
}

impl<T> Cell<T> {
    /// The current value, if one was fetched and has not expired at `now`.
    pub fn current(&self, now: SystemTime) -> Option<Arc<Fetched<T>>> {
        self.current
            .load_full()
            .filter(|f| f.expires.map_or(true, |e| e > now))
    }

    /// The current value even if it expired (to schedule the next fetch).
    pub fn latest(&self) -> Option<Arc<Fetched<T>>> {
        self.current.load_full()
    }

    /// Installs a newly fetched value.
    pub fn store(&self, value: T, expires: Option<SystemTime>) {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let after_refusal = self.refresh_asked.swap(false, Ordering::Relaxed);
        self.current.store(Some(Arc::new(Fetched {
            value,
            expires,
            generation,
            after_refusal,
        })));
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Notes a failed fetch; the old value stays while it is valid.
    pub fn failed(&self, why: String) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
    }

    /// Why the last fetch failed, if it did.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// An upstream refused the value of `generation`.
    pub fn refused(&self, fetched: &Fetched<T>) -> Refusal {
        if fetched.after_refusal {
            return Refusal::Blame;
        }
        if self
            .refused
            .fetch_max(fetched.generation, Ordering::Relaxed)
            < fetched.generation
        {
            self.refresh_asked.store(true, Ordering::Relaxed);
        }
        Refusal::Refreshing
    }

    /// Whether a refusal asked for a fetch not yet done.
    pub fn refresh_asked(&self) -> bool {
        self.refresh_asked.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn values_expire_and_carry_their_generation() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let cell: Cell<&str> = Cell::default();
        assert!(cell.current(t0).is_none());
        cell.store("a", Some(t0 + Duration::from_secs(60)));
        let a = cell.current(t0).unwrap();
        assert_eq!((a.value, a.generation), ("a", 1));
        assert!(
            cell.current(t0 + Duration::from_secs(60)).is_none(),
            "expired"
        );
        assert!(cell.latest().is_some());
        cell.failed("down".into());
        assert_eq!(cell.failure().as_deref(), Some("down"));
        cell.store("b", None);
        assert_eq!(cell.failure(), None);
        assert_eq!(
            cell.current(t0 + Duration::from_secs(1 << 40))
                .unwrap()
                .generation,
            2
        );
    }

    #[test]
    fn a_refusal_asks_for_one_refresh_before_blaming() {
        let cell: Cell<&str> = Cell::default();
        cell.store("old", None);
        let old = cell.latest().unwrap();
        assert_eq!(cell.refused(&old), Refusal::Refreshing);
        assert!(cell.refresh_asked());
        // More refusals of the same value, while the refresh is under way: still passing.
        assert_eq!(cell.refused(&old), Refusal::Refreshing);
        cell.store("new", None);
        assert!(!cell.refresh_asked());
        let new = cell.latest().unwrap();
        assert!(new.after_refusal);
        assert_eq!(cell.refused(&new), Refusal::Blame);
        // A late refusal of the old value asks for nothing more.
        assert_eq!(cell.refused(&old), Refusal::Refreshing);
        assert!(!cell.refresh_asked());
    }
}
