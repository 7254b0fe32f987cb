//! A counter any thread can bump and every worker can await a change of.
//!
//! It is how a reload or a drain, decided on the main thread, reaches the workers: each worker
//! parks one task on it and looks at the shared state when it moves. Like `Shutdown`, waiting
//! touches a lock only when a task parks (once per worker per change), never on a request.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
pub struct Beacon {
    epoch: AtomicU64,
    wakers: Mutex<Vec<Waker>>,
}

impl Beacon {
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Moves the counter on and wakes every task waiting for a change.
    pub fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|e| e.into_inner()));
        for w in wakers {
            w.wake();
        }
    }

    /// Resolves once the counter is no longer `seen`.
    pub fn changed(&self, seen: u64) -> Changed<'_> {
        Changed { beacon: self, seen }
    }
}

pub struct Changed<'a> {
    beacon: &'a Beacon,
    seen: u64,
}

impl Future for Changed<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.beacon.epoch() != self.seen {
            return Poll::Ready(());
        }
        let mut wakers = self.beacon.wakers.lock().unwrap_or_else(|e| e.into_inner());
        // Checked again under the lock: a bump between the first look and here has already
        // taken the wakers, and would be missed.
        if self.beacon.epoch() != self.seen {
            return Poll::Ready(());
        }
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_bump_on_another_thread_wakes_the_waiter() {
        let beacon = Arc::new(Beacon::default());
        let b = beacon.clone();
        let seen = beacon.epoch();
        let t = std::thread::spawn(move || {
            let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .build()
                .unwrap();
            rt.block_on(async move { b.changed(seen).await });
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        beacon.bump();
        t.join().unwrap();
        assert_eq!(beacon.epoch(), seen + 1);
    }

    #[test]
    fn a_change_already_made_is_ready_at_once() {
        let beacon = Beacon::default();
        beacon.bump();
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .unwrap();
        rt.block_on(beacon.changed(0));
    }
}
