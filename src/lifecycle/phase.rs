//! Where this worker is in a drain, and the connection tasks that must hear of it.
//!
//! A drain changes what the connections of a worker do: once it is [`Draining`](Phase::Draining)
//! an idle connection closes and a busy one closes after its response; once the drain timeout has
//! passed ([`Expired`](Phase::Expired)) a stream still running ends with an in-band error and a
//! request still waiting for its upstream gets a 529. The phase lives in a thread-local `Cell`, so
//! reading it costs next to nothing.
//!
//! Waking is arranged so that no request pays for it: instead of every future that looks at the
//! phase registering its waker (one registration per request, or per read), each connection task
//! registers once, when it is spawned through [`tracked`], and a phase change wakes all of them.
//! A future that waits for a phase ([`reached`]) only looks when its task is polled. So
//! [`reached`] is woken by a phase change only inside a tracked task; elsewhere (a built-in mock
//! upstream's connections on the same worker) it still sees the phase whenever its task is polled
//! for another reason, and is otherwise left alone, which is what those connections want.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::http::{ApiError, ErrorType};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Serving,
    /// Not accepting; connections close after the response in flight, idle ones at once.
    Draining,
    /// The drain timeout has passed: whatever is still running is cut short.
    Expired,
}

/// The message of the error a request or stream cut short by a drain gets.
pub const SHUTTING_DOWN: &str = "gateway shutting down";

/// The error a request cut short by a drain gets: 529 `overloaded_error`, which SDKs retry.
pub fn shutting_down() -> ApiError {
    ApiError::new(529, ErrorType::Overloaded, SHUTTING_DOWN.into())
}

struct Local {
    phase: Cell<Phase>,
    tasks: RefCell<Tasks>,
}

struct Tasks {
    /// One slot per tracked task: its waker once it has been polled.
    wakers: Vec<Option<Waker>>,
    free: Vec<usize>,
    /// Tracked tasks not yet ended (polled or not).
    live: usize,
    /// The task waiting for `live` to reach 0.
    all_ended: Option<Waker>,
}

thread_local! {
    // `const`: read on every poll of a connection task, so no lazy-initialisation check.
    static LOCAL: Local = const {
        Local {
            phase: Cell::new(Phase::Serving),
            tasks: RefCell::new(Tasks {
                wakers: Vec::new(),
                free: Vec::new(),
                live: 0,
                all_ended: None,
            }),
        }
    };
}

pub fn phase() -> Phase {
    LOCAL.with(|l| l.phase.get())
}

/// Whether this worker is draining (or past its drain timeout).
pub fn draining() -> bool {
    phase() >= Phase::Draining
}

/// Moves this worker to `next` (never back) and wakes every tracked task to look at it.
pub fn enter(next: Phase) {
    let wakers: Vec<Waker> = LOCAL.with(|l| {
        if next <= l.phase.get() {
            return Vec::new();
        }
        l.phase.set(next);
        l.tasks.borrow().wakers.iter().flatten().cloned().collect()
    });
    // Outside the borrow: waking only schedules the task, but nothing here should rely on it.
    for w in wakers {
        w.wake();
    }
}

/// Completes once this worker has reached `target`. Registers nothing: see the module comment.
pub fn reached(target: Phase) -> Reached {
    Reached { target }
}

pub struct Reached {
    target: Phase,
}

impl Future for Reached {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if phase() >= self.target {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// A connection task that hears of phase changes and is counted until it ends.
pub fn tracked<F: Future<Output = ()>>(task: F) -> Tracked<F> {
    LOCAL.with(|l| l.tasks.borrow_mut().live += 1);
    Tracked { task, slot: None }
}

pub struct Tracked<F> {
    task: F,
    slot: Option<usize>,
}

impl<F: Future<Output = ()>> Future for Tracked<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: `task` is never moved out of the pinned wrapper; `slot` is not structurally
        // pinned.
        let this = unsafe { self.get_unchecked_mut() };
        LOCAL.with(|l| {
            let mut t = l.tasks.borrow_mut();
            match this.slot {
                Some(i) => {
                    if !t.wakers[i]
                        .as_ref()
                        .is_some_and(|w| w.will_wake(cx.waker()))
                    {
                        t.wakers[i] = Some(cx.waker().clone());
                    }
                }
                None => {
                    let waker = Some(cx.waker().clone());
                    let i = match t.free.pop() {
                        Some(i) => {
                            t.wakers[i] = waker;
                            i
                        }
                        None => {
                            t.wakers.push(waker);
                            t.wakers.len() - 1
                        }
                    };
                    this.slot = Some(i);
                }
            }
        });
        // SAFETY: as above.
        unsafe { Pin::new_unchecked(&mut this.task) }.poll(cx)
    }
}

impl<F> Drop for Tracked<F> {
    fn drop(&mut self) {
        // The thread-local is gone only when the worker thread exits; nothing to count then.
        let last = LOCAL.try_with(|l| {
            let mut t = l.tasks.borrow_mut();
            if let Some(i) = self.slot {
                t.wakers[i] = None;
                t.free.push(i);
            }
            t.live -= 1;
            if t.live == 0 {
                t.all_ended.take()
            } else {
                None
            }
        });
        if let Ok(Some(w)) = last {
            w.wake();
        }
    }
}

/// Tracked tasks not yet ended on this worker.
pub fn live() -> usize {
    LOCAL.with(|l| l.tasks.borrow().live)
}

/// Completes once no tracked task is left on this worker (at once if there is none).
pub fn all_ended() -> AllEnded {
    AllEnded
}

pub struct AllEnded;

impl Future for AllEnded {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        LOCAL.with(|l| {
            let mut t = l.tasks.borrow_mut();
            if t.live == 0 {
                return Poll::Ready(());
            }
            t.all_ended = Some(cx.waker().clone());
            Poll::Pending
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::block_on;
    use std::rc::Rc;
    use std::time::Duration;

    #[test]
    fn a_phase_change_wakes_tracked_tasks_and_the_count_follows_them() {
        block_on(async {
            let seen = Rc::new(Cell::new(0));
            let mut tasks = Vec::new();
            for target in [Phase::Draining, Phase::Expired] {
                let seen = seen.clone();
                tasks.push(monoio::spawn(tracked(async move {
                    reached(target).await;
                    seen.set(seen.get() + 1);
                })));
            }
            assert_eq!(live(), 2);
            monoio::time::sleep(Duration::from_millis(5)).await;
            assert_eq!((phase(), seen.get()), (Phase::Serving, 0));

            enter(Phase::Draining);
            assert!(draining());
            monoio::time::sleep(Duration::from_millis(5)).await;
            assert_eq!((seen.get(), live()), (1, 1));

            enter(Phase::Serving);
            assert_eq!(phase(), Phase::Draining, "a drain never goes back");

            let waiting = monoio::spawn(all_ended());
            enter(Phase::Expired);
            waiting.await;
            assert_eq!((seen.get(), live()), (2, 0));
            for t in tasks {
                t.await;
            }
        });
    }

    #[test]
    fn slots_are_reused_and_dropped_tasks_are_counted_out() {
        block_on(async {
            for _ in 0..3 {
                // Polled once (so it takes a slot), then dropped with the select.
                let task = tracked(std::future::pending::<()>());
                assert_eq!(live(), 1);
                monoio::select! {
                    _ = task => unreachable!("pending"),
                    _ = monoio::time::sleep(Duration::from_millis(1)) => {}
                }
                assert_eq!(live(), 0);
                // A never-polled task counts too, until dropped.
                let never = tracked(async {});
                assert_eq!(live(), 1);
                drop(never);
            }
            LOCAL.with(|l| assert_eq!(l.tasks.borrow().wakers.len(), 1));
            all_ended().await;
        });
    }

    #[test]
    fn the_drain_error_is_a_529_overloaded_error() {
        let e = shutting_down();
        assert_eq!((e.status, e.kind), (529, ErrorType::Overloaded));
        assert_eq!(
            e.stream_event(),
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"gateway shutting down\"}}\n\n"
        );
    }
}
