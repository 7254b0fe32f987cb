//! The per-core timer of the relays: one timer wheel per worker thread, one tick task.
//!
//! Every relay on a core waits for at most one deadline at a time (its next flush, keep-alive or
//! idle limit). They all live in this thread's [`TimerWheel`]; a single task sleeps until the
//! next occupied slot, advances the wheel and wakes the relays whose deadline has come. The task
//! exists only while deadlines are pending, so an idle core pays nothing. Deadlines are rounded
//! up to the next tick: a relay is never woken early, and at most one tick late.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::wheel::{TimerKey, TimerWheel};

/// Granularity of the wheel.
pub const TICK: Duration = Duration::from_millis(2);
/// How late after its deadline a relay can be woken: the deadline rounded up to a tick, and the
/// tick task's own sleep rounded up to the runtime timer's millisecond.
pub const MAX_LATENESS: Duration = Duration::from_millis(TICK.as_millis() as u64 + 1);
/// Slots of the wheel: one rotation is about two seconds.
const SLOTS: usize = 1024;

struct Timers {
    wheel: TimerWheel<Waker>,
    /// Instant of tick 0.
    origin: Instant,
    /// The tick the tick task sleeps until, if it runs.
    ticker: Option<Ticker>,
}

struct Ticker {
    until: u64,
    /// Set when an earlier deadline arrived while it slept.
    poked: bool,
    waker: Option<Waker>,
}

thread_local! {
    static TIMERS: RefCell<Timers> = RefCell::new(Timers {
        wheel: TimerWheel::new(SLOTS),
        origin: Instant::now(),
        ticker: None,
    });
}

impl Timers {
    /// The first tick at or after `t`.
    fn tick_at_or_after(&self, t: Instant) -> u64 {
        let nanos = t.saturating_duration_since(self.origin).as_nanos();
        nanos.div_ceil(TICK.as_nanos()) as u64
    }

    /// The last tick at or before `t`.
    fn tick_before(&self, t: Instant) -> u64 {
        (t.saturating_duration_since(self.origin).as_nanos() / TICK.as_nanos()) as u64
    }

    fn instant_of(&self, tick: u64) -> Instant {
        self.origin + Duration::from_nanos(TICK.as_nanos() as u64 * tick)
    }

    /// Wakes the tick task early, to look at the wheel again.
    fn poke(&mut self) {
        if let Some(ticker) = &mut self.ticker {
            ticker.poked = true;
            if let Some(w) = ticker.waker.take() {
                w.wake();
            }
        }
    }
}

/// Completes at `deadline` (at most one tick later). Dropping it cancels the deadline.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        key: None,
    }
}

pub struct Sleep {
    deadline: Instant,
    key: Option<TimerKey>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        TIMERS.with_borrow_mut(|t| match self.key {
            Some(key) => match t.wheel.get_mut(key) {
                None => Poll::Ready(()),
                Some(waker) => {
                    waker.clone_from(cx.waker());
                    Poll::Pending
                }
            },
            None => {
                if Instant::now() >= self.deadline {
                    return Poll::Ready(());
                }
                let at = t.tick_at_or_after(self.deadline);
                self.key = Some(t.wheel.insert(at, cx.waker().clone()));
                match &mut t.ticker {
                    None => {
                        t.ticker = Some(Ticker {
                            until: at,
                            poked: false,
                            waker: None,
                        });
                        monoio::spawn(tick());
                    }
                    Some(ticker) if at < ticker.until => t.poke(),
                    Some(_) => {}
                }
                Poll::Pending
            }
        })
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            // The thread-local is gone only when the worker thread exits; nothing to cancel then.
            let _ = TIMERS.try_with(|t| {
                let t = &mut *t.borrow_mut();
                t.wheel.cancel(key);
                if t.wheel.is_empty() {
                    // Let the tick task see it has nothing left to do.
                    t.poke();
                }
            });
        }
    }
}

/// The tick task of this thread: runs while deadlines are pending.
async fn tick() {
    loop {
        let next = TIMERS.with_borrow_mut(|t| {
            let next = t.wheel.next_due();
            match (next, &mut t.ticker) {
                (None, _) => {
                    t.ticker = None;
                    None
                }
                (Some(next), Some(ticker)) => {
                    ticker.until = next;
                    ticker.poked = false;
                    Some(t.instant_of(next))
                }
                (Some(_), None) => unreachable!("the tick task runs only while registered"),
            }
        });
        let Some(when) = next else { return };
        monoio::select! {
            _ = monoio::time::sleep_until(when.into()) => {}
            _ = Poked => {}
        }
        TIMERS.with_borrow_mut(|t| {
            let now = t.tick_before(Instant::now());
            t.wheel.advance(now, Waker::wake);
        });
    }
}

/// Completes when a deadline earlier than the one the tick task sleeps for was added.
struct Poked;

impl Future for Poked {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        TIMERS.with_borrow_mut(|t| match &mut t.ticker {
            Some(ticker) if ticker.poked => Poll::Ready(()),
            Some(ticker) => {
                ticker.waker = Some(cx.waker().clone());
                Poll::Pending
            }
            None => Poll::Ready(()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::block_on as run;

    #[test]
    fn sleeps_are_never_early_and_at_most_a_few_ticks_late() {
        run(async {
            let start = Instant::now();
            let mut tasks = Vec::new();
            for ms in [30u64, 5, 17, 60, 1] {
                tasks.push(monoio::spawn(async move {
                    let deadline = start + Duration::from_millis(ms);
                    sleep_until(deadline).await;
                    Instant::now().duration_since(deadline)
                }));
            }
            for task in tasks {
                let late = task.await;
                // Generous: this machine is shared; the point is "not early, not lost".
                assert!(late < Duration::from_millis(500), "{late:?} late");
            }
            assert!(TIMERS.with_borrow(|t| t.wheel.is_empty()));
        });
    }

    #[test]
    fn a_dropped_sleep_leaves_nothing_behind_and_the_tick_task_ends() {
        run(async {
            let far = sleep_until(Instant::now() + Duration::from_secs(3600));
            let near = sleep_until(Instant::now() + Duration::from_millis(5));
            monoio::select! {
                _ = far => unreachable!("an hour has not passed"),
                _ = near => {}
            }
            assert!(TIMERS.with_borrow(|t| t.wheel.is_empty()));
            // The tick task notices the empty wheel on its next round and unregisters.
            monoio::time::sleep(Duration::from_millis(20)).await;
            assert!(TIMERS.with_borrow(|t| t.ticker.is_none()));
        });
    }

    #[test]
    fn an_earlier_deadline_wakes_the_sleeping_tick_task() {
        run(async {
            let late = monoio::spawn(sleep_until(Instant::now() + Duration::from_secs(3600)));
            monoio::time::sleep(Duration::from_millis(5)).await;
            let t0 = Instant::now();
            sleep_until(t0 + Duration::from_millis(10)).await;
            assert!(Instant::now() - t0 < Duration::from_millis(500));
            drop(late);
        });
    }
}
