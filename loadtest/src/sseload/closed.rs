//! The closed loop: a fixed number of connections, each sending its next request as soon as
//! the previous answer is complete.
//!
//! It measures the most a target can do at a given concurrency, and its latency as seen by
//! clients that wait for each answer; a stall slows the senders down with it, so latency under
//! a fixed offered load is the open loop's job.

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::client::{connect, Deadline, Fail};
use super::worker::Worker;

/// Pause after a failed connect, so an unreachable target is retried, not spun on.
const CONNECT_BACKOFF: Duration = Duration::from_millis(10);

/// Runs `connections` connections on this thread until the run stops.
pub async fn run(worker: Rc<Worker>, connections: usize) {
    let tasks: Vec<_> = (0..connections)
        .map(|_| monoio::spawn(connection(worker.clone())))
        .collect();
    for task in tasks {
        task.await;
    }
}

async fn connection(w: Rc<Worker>) {
    let shared = &w.shared;
    let plan = w.plan();
    monoio::time::sleep_until(shared.start.into()).await;
    let mut conn = None;
    let mut check = w.new_check();
    loop {
        let now = Instant::now();
        if shared.stopping(now) {
            return;
        }
        let deadline = Deadline::new(now + plan.timeout, shared.stop_at);
        let c = match &mut conn {
            Some(c) => c,
            None => match connect(plan.target.addr, w.buf_size(), deadline).await {
                Ok(c) => conn.insert(c),
                Err(fail) => {
                    w.connect_failed(now, fail);
                    if fail == Fail::Abandoned {
                        return;
                    }
                    monoio::time::sleep(CONNECT_BACKOFF).await;
                    continue;
                }
            },
        };
        // Latency runs from the send: a new connection's connect is not the request's.
        let start = Instant::now();
        let (tally, fail) = c
            .exchange(shared.request, deadline, check.as_mut(), &mut ())
            .await;
        w.record(start, Instant::now(), &tally, fail, check.as_mut());
        if fail == Some(Fail::Abandoned) {
            return;
        }
        if !tally.keep_alive {
            conn = None;
        }
    }
}
