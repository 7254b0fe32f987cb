//! What the client threads share, and what each one keeps to itself.
//!
//! The threads share only a few atomics: when to measure, the measured-request budget, and the
//! held-stream count. Everything else — counts, histograms, connections — is per thread, so the
//! request path takes no lock and bounces no cache line between cores.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::args::{Mode, Plan};
use super::client::{Fail, Tally, Watch};
use super::stats::{ErrorKind, Finished, Stats};
use super::stream_check::StreamCheck;

/// The furthest ahead, in seconds, that load is scheduled (about 31 years): beyond what the
/// runtime's timers can be set to, `Instant` arithmetic and timers panic.
const HORIZON_SECS: f64 = 1e9;

/// `start` plus `secs` seconds; `None` past [`HORIZON_SECS`], where a schedule (a rate so low
/// that the next request is due in 10^300 s) ends rather than panics.
pub fn due(start: Instant, secs: f64) -> Option<Instant> {
    (secs <= HORIZON_SECS).then(|| start + std::time::Duration::from_secs_f64(secs))
}

/// The run as all threads see it.
pub struct Shared {
    pub plan: Plan,
    /// The run's one request.
    pub request: &'static [u8],
    /// When load starts.
    pub start: Instant,
    /// Requests that end from here on are counted, and those also sent from here on timed.
    pub measure_from: Instant,
    /// The end of the measured window; no request is counted or started after it.
    pub stop_at: Option<Instant>,
    measured: AtomicU64,
    budget_spent: AtomicBool,
    /// When the last request of the budget was counted, ns after `measure_from`.
    budget_end_ns: AtomicU64,
    /// Hold mode: streams open with their first event, now and at most.
    pub held: AtomicU64,
    pub held_max: AtomicU64,
}

impl Shared {
    pub fn new(plan: Plan, request: &'static [u8], start: Instant) -> Shared {
        let hold = matches!(plan.mode, Mode::Hold { .. });
        let measure_from = if hold { start } else { start + plan.warmup };
        let stop_at = match plan.requests {
            None if !hold => Some(measure_from + plan.duration),
            _ => None,
        };
        Shared {
            plan,
            request,
            start,
            measure_from,
            stop_at,
            measured: AtomicU64::new(0),
            budget_spent: AtomicBool::new(false),
            budget_end_ns: AtomicU64::new(0),
            held: AtomicU64::new(0),
            held_max: AtomicU64::new(0),
        }
    }

    /// No request should start any more.
    pub fn stopping(&self, now: Instant) -> bool {
        self.budget_spent.load(Ordering::Relaxed) || self.stop_at.is_some_and(|s| now >= s)
    }

    pub fn budget_spent(&self) -> bool {
        self.budget_spent.load(Ordering::Relaxed)
    }

    /// When the budget of `--requests` was spent, if it was.
    pub fn budget_end(&self) -> Option<Instant> {
        let ns = self.budget_end_ns.load(Ordering::Acquire);
        (ns > 0).then(|| self.measure_from + std::time::Duration::from_nanos(ns))
    }

    /// Whether a request that ended at `end` counts.
    fn measure(&self, end: Instant) -> bool {
        if end < self.measure_from || self.stop_at.is_some_and(|s| end >= s) {
            return false;
        }
        let Some(budget) = self.plan.requests else {
            return true;
        };
        let n = self.measured.fetch_add(1, Ordering::Relaxed) + 1;
        if n == budget {
            let ns = end.duration_since(self.measure_from).as_nanos().max(1) as u64;
            self.budget_end_ns.store(ns, Ordering::Release);
            self.budget_spent.store(true, Ordering::Relaxed);
        }
        n <= budget
    }
}

/// One client thread: the shared run and its own counts.
pub struct Worker {
    pub shared: Arc<Shared>,
    pub stats: RefCell<Stats>,
    /// The end of this thread's last counted request.
    pub last_end: RefCell<Option<Instant>>,
    buf_size: usize,
}

impl Worker {
    pub fn new(shared: Arc<Shared>) -> Worker {
        // Many connections get small buffers: 20,000 held streams must not cost gigabytes
        // here. Events longer than a buffer are put together by the stream check.
        let buf_size = match shared.plan.mode {
            Mode::Closed { .. } => 64 * 1024,
            Mode::Open { .. } => 16 * 1024,
            Mode::Hold { .. } => 4 * 1024,
        };
        Worker {
            shared,
            stats: RefCell::new(Stats::default()),
            last_end: RefCell::new(None),
            buf_size,
        }
    }

    pub fn plan(&self) -> &Plan {
        &self.shared.plan
    }

    pub fn buf_size(&self) -> usize {
        self.buf_size
    }

    /// A stream check for this run's requests, if they stream.
    pub fn new_check(&self) -> Option<StreamCheck> {
        let p = self.plan();
        p.stream
            .then(|| StreamCheck::new(p.deltas, p.delta_text_bytes))
    }

    /// Counts a request that ended at `end`, if it is measured. Its times (latency, time to
    /// first event, event delays) only count if it was also sent in the window: a request sent
    /// in the warm-up met what the warm-up is there to leave out (cold connections, the
    /// target's first connections upstream), and with streams longer than the warm-up the
    /// first batch of them would otherwise all be timed.
    pub fn record(
        &self,
        start: Instant,
        end: Instant,
        tally: &Tally,
        fail: Option<Fail>,
        check: Option<&mut StreamCheck>,
    ) {
        let error = match fail {
            Some(Fail::Abandoned) => return,
            Some(Fail::Error(kind)) => Some(kind),
            None => None,
        };
        let hold = matches!(self.plan().mode, Mode::Hold { .. });
        if !hold && !self.shared.measure(end) {
            if let Some(check) = check {
                check.delays.clear();
            }
            return;
        }
        *self.last_end.borrow_mut() = Some(end);
        self.stats.borrow_mut().record(Finished {
            start,
            end,
            timed: hold || start >= self.shared.measure_from,
            status: tally.status,
            error,
            reads: tally.reads,
            body_bytes: tally.body_bytes,
            first_event: tally.first_event,
            stream: check,
        });
    }

    /// Counts a connection that could not be opened.
    pub fn connect_failed(&self, start: Instant, fail: Fail) {
        let fail = match fail {
            Fail::Error(_) => Fail::Error(ErrorKind::Connect),
            abandoned => abandoned,
        };
        self.record(start, Instant::now(), &Tally::default(), Some(fail), None);
    }
}

/// Hold mode's view of a stream: counted as held from its first event until it ends, its
/// delays recorded as they come (everything in hold mode is measured, and 20,000 streams'
/// worth of buffered delays would be a lot of memory).
pub struct HoldWatch<'a> {
    pub worker: &'a Worker,
    pub held: bool,
}

impl Watch for HoldWatch<'_> {
    fn first_event(&mut self) {
        let shared = &self.worker.shared;
        let now = shared.held.fetch_add(1, Ordering::Relaxed) + 1;
        shared.held_max.fetch_max(now, Ordering::Relaxed);
        self.held = true;
    }

    fn fed(&mut self, check: &mut StreamCheck) {
        if !check.delays.is_empty() {
            let mut stats = self.worker.stats.borrow_mut();
            for &d in &check.delays {
                stats.stream.event_delay.saturating_record(d);
            }
            check.delays.clear();
        }
    }
}

impl Drop for HoldWatch<'_> {
    fn drop(&mut self) {
        if self.held {
            self.worker.shared.held.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::*;
    use crate::sseload::args::Args;

    fn worker(extra: &[&str]) -> Worker {
        let args = Args::try_parse_from(
            ["sseload", "--url", "http://127.0.0.1:9"]
                .iter()
                .chain(extra),
        )
        .unwrap();
        let plan = Plan::from_args(&args).unwrap();
        Worker::new(Arc::new(Shared::new(plan, b"", Instant::now())))
    }

    #[test]
    fn a_request_started_in_the_warmup_is_counted_but_not_timed() {
        let w = worker(&["--warmup", "1", "--stream", "--deltas", "1"]);
        let from = w.shared.measure_from;
        let ok = Tally {
            status: Some(200),
            ..Tally::default()
        };
        let mut check = w.new_check().unwrap();
        check.delays.push(7);
        // Sent in the warm-up, ended in the window: it counts, its times do not.
        let early = from - Duration::from_millis(100);
        let tally = Tally {
            first_event: Some(early + Duration::from_millis(1)),
            ..ok.clone()
        };
        w.record(
            early,
            from + Duration::from_millis(50),
            &tally,
            None,
            Some(&mut check),
        );
        {
            let s = w.stats.borrow();
            assert_eq!(s.requests, 1);
            assert_eq!(
                (
                    s.latency.len(),
                    s.stream.ttfe.len(),
                    s.stream.event_delay.len()
                ),
                (0, 0, 0)
            );
        }
        assert!(check.delays.is_empty());
        // Sent in the window: timed.
        let tally = Tally {
            first_event: Some(from + Duration::from_millis(2)),
            ..ok
        };
        w.record(from, from + Duration::from_millis(60), &tally, None, None);
        let s = w.stats.borrow();
        assert_eq!((s.requests, s.latency.len()), (2, 1));
    }
}
