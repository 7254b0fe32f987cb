//! A shutdown signal that any thread can raise and every worker can await.
//!
//! Workers run single-threaded runtimes; the main thread (signals, the library handle) must wake
//! them without a lock on the request path. An atomic flag answers "are we stopping?" for free;
//! a waker list, touched only when a worker parks on it or the signal is raised, wakes them.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    raised: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Raises the signal; idempotent.
    pub fn raise(&self) {
        self.inner.raised.store(true, Ordering::Release);
        let wakers =
            std::mem::take(&mut *self.inner.wakers.lock().unwrap_or_else(|e| e.into_inner()));
        for w in wakers {
            w.wake();
        }
    }

    pub fn is_raised(&self) -> bool {
        self.inner.raised.load(Ordering::Acquire)
    }

    /// Resolves once the signal is raised.
    pub fn wait(&self) -> Wait<'_> {
        Wait { shutdown: self }
    }
}

pub struct Wait<'a> {
    shutdown: &'a Shutdown,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.shutdown.is_raised() {
            return Poll::Ready(());
        }
        let mut wakers = self
            .shutdown
            .inner
            .wakers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if self.shutdown.is_raised() {
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

    #[test]
    fn wakes_a_waiter_on_another_thread() {
        let s = Shutdown::new();
        let s2 = s.clone();
        let t = std::thread::spawn(move || {
            let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .build()
                .unwrap();
            rt.block_on(async move { s2.wait().await });
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        s.raise();
        t.join().unwrap();
        assert!(s.is_raised());
    }
}
