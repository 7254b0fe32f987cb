//! Hold mode: many long streams open at once, one connection each.
//!
//! What a gateway costs per open stream (memory, and whether it still relays each event on
//! time) only shows with thousands held together. Streams are opened at a steady ramp, so the
//! target is not measured on how it survives a connect storm, and each counts as held from its
//! first event until it ends.

use std::rc::Rc;
use std::time::Instant;

use super::client::{connect, Deadline};
use super::worker::{due, HoldWatch, Worker};

/// Opens this thread's share of `streams` (every `threads`-th, from `index`), `ramp` per second
/// over all threads, and waits until all have ended.
pub async fn run(worker: Rc<Worker>, streams: usize, ramp: f64, index: usize, threads: usize) {
    let start = worker.shared.start;
    let mut tasks = Vec::new();
    for global in (index..streams).step_by(threads) {
        let Some(at) = due(start, global as f64 / ramp) else {
            break;
        };
        if at > Instant::now() {
            monoio::time::sleep_until(at.into()).await;
        }
        tasks.push(monoio::spawn(stream(worker.clone())));
    }
    for task in tasks {
        task.await;
    }
}

async fn stream(w: Rc<Worker>) {
    let plan = w.plan();
    let opened = Instant::now();
    let deadline = Deadline::new(opened + plan.timeout, None);
    let mut conn = match connect(plan.target.addr, w.buf_size(), deadline).await {
        Ok(c) => c,
        Err(fail) => return w.connect_failed(opened, fail),
    };
    // Time to first event and stream length run from the send, as in the other modes.
    let start = Instant::now();
    let mut check = w.new_check();
    let mut watch = HoldWatch {
        worker: &w,
        held: false,
    };
    let (tally, fail) = conn
        .exchange(w.shared.request, deadline, check.as_mut(), &mut watch)
        .await;
    // No longer held from here on.
    drop(watch);
    w.record(start, Instant::now(), &tally, fail, check.as_mut());
}
