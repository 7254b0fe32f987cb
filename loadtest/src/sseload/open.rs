//! The open loop: requests at evenly spaced scheduled times, whatever the target does.
//!
//! A closed loop stops sending while the target stalls, so the stall hides in one slow request
//! (coordinated omission). Here each request has a scheduled time and its latency runs from
//! it: a request whose time comes while all connections are busy waits in a queue, and that
//! wait is part of its latency. Connections are opened as needed up to a limit and kept.
//!
//! The runtime's timers tick in milliseconds, so the dispatcher wakes up to about 2 ms after a
//! scheduled time. That lateness is the tool's, not the target's: a request sent at once on a
//! free connection counts from its send if that is at most [`TIMER_SLACK`] late, else from its
//! scheduled time plus the slack, so lateness beyond the slack (a saturated client thread)
//! still counts. A request that waited for a connection always counts from its scheduled time.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::client::{connect, Conn, Deadline, Fail};
use super::stream_check::StreamCheck;
use super::worker::{due, Worker};

/// Dispatch lateness forgiven as the timer's, not the target's.
pub const TIMER_SLACK: Duration = Duration::from_millis(2);

/// A connection slot: a connection (once opened) and its stream check.
struct Slot {
    conn: Option<Conn>,
    check: Option<StreamCheck>,
}

/// This thread's connections and the requests waiting for one.
struct Pool {
    idle: Vec<Slot>,
    /// Slots in use or idle.
    open: usize,
    max: usize,
    /// Scheduled times of requests waiting for a connection.
    queue: VecDeque<Instant>,
    /// Tasks still running.
    running: usize,
}

/// Sends `rate` requests/s from this thread, offset by `phase` (so threads interleave), over
/// at most `max_connections` connections, until the run stops.
pub async fn run(worker: Rc<Worker>, rate: f64, phase: f64, max_connections: usize) {
    let shared = worker.shared.clone();
    let pool = Rc::new(RefCell::new(Pool {
        idle: Vec::new(),
        open: 0,
        max: max_connections.max(1),
        queue: VecDeque::new(),
        running: 0,
    }));
    for i in 0u64.. {
        let Some(scheduled) = due(shared.start, (i as f64 + phase) / rate) else {
            break;
        };
        if shared.stop_at.is_some_and(|s| scheduled >= s) || shared.budget_spent() {
            break;
        }
        if scheduled > Instant::now() {
            monoio::time::sleep_until(scheduled.into()).await;
        }
        dispatch(&worker, &pool, scheduled);
    }
    while pool.borrow().running > 0 {
        monoio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Hands the request scheduled at `scheduled` to a free connection, or queues it.
fn dispatch(worker: &Rc<Worker>, pool: &Rc<RefCell<Pool>>, scheduled: Instant) {
    let mut p = pool.borrow_mut();
    let slot = match p.idle.pop() {
        Some(slot) => slot,
        None if p.open < p.max => {
            p.open += 1;
            Slot {
                conn: None,
                check: worker.new_check(),
            }
        }
        None => return p.queue.push_back(scheduled),
    };
    p.running += 1;
    monoio::spawn(serve(worker.clone(), pool.clone(), slot, scheduled));
}

/// Sends requests on `slot`, starting with the one scheduled at `scheduled`, then any that
/// queued meanwhile; parks the slot when none is waiting. Once the run is over it sends
/// nothing more: the queue of a saturated target can hold minutes of requests, and sending
/// them would only keep the run going, uncounted.
async fn serve(w: Rc<Worker>, pool: Rc<RefCell<Pool>>, mut slot: Slot, mut scheduled: Instant) {
    let mut queued = false;
    loop {
        let now = Instant::now();
        if w.shared.stopping(now) {
            pool.borrow_mut().queue.clear();
            break;
        }
        let start = if queued {
            scheduled
        } else {
            now.min(scheduled + TIMER_SLACK)
        };
        if !send(&w, &mut slot, start).await {
            break;
        }
        let mut p = pool.borrow_mut();
        match p.queue.pop_front() {
            Some(next) => {
                scheduled = next;
                queued = true;
            }
            None => {
                p.idle.push(slot);
                p.running -= 1;
                return;
            }
        }
    }
    let mut p = pool.borrow_mut();
    p.open -= 1;
    p.running -= 1;
}

/// One request on `slot` (connecting first if needed), counted from `start`; false once the
/// run is over.
async fn send(w: &Worker, slot: &mut Slot, start: Instant) -> bool {
    let shared = &w.shared;
    let plan = w.plan();
    let deadline = Deadline::new(Instant::now() + plan.timeout, shared.stop_at);
    let conn = match &mut slot.conn {
        Some(c) => c,
        None => match connect(plan.target.addr, w.buf_size(), deadline).await {
            Ok(c) => slot.conn.insert(c),
            Err(fail) => {
                w.connect_failed(start, fail);
                return fail != Fail::Abandoned;
            }
        },
    };
    let (tally, fail) = conn
        .exchange(shared.request, deadline, slot.check.as_mut(), &mut ())
        .await;
    w.record(start, Instant::now(), &tally, fail, slot.check.as_mut());
    if !tally.keep_alive {
        slot.conn = None;
    }
    fail != Some(Fail::Abandoned)
}
