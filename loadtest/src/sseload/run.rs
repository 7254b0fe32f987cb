//! A whole run: check the target, start the client threads, watch the clock and the measured
//! processes from the main thread, and add up what the threads counted.
//!
//! The main thread takes no part in the load. It reads CPU time at the edges of the measured
//! window (so warm-up is not billed), and the target's memory every tick, keeping the most:
//! a target's memory can go on growing after the last stream opened (buffers fill as events
//! flow), so the peak is not the reading at any one moment picked in advance.

use std::io;
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ringgate::runtime::Driver;

use super::args::{Mode, Plan};
use super::procfs::{Kind, Probe};
use super::report::{Measured, Report};
use super::stats::Stats;
use super::worker::{Shared, Worker};
use super::{closed, hold, open};

/// Why a run has no result: bad input, a target that is not there, or a client thread that
/// failed (its counts lost).
#[derive(Debug)]
pub struct StartError(pub String);

/// Time for the threads to set up before the load starts together.
const SETUP: Duration = Duration::from_millis(20);
/// How often the main thread looks at the run.
const TICK: Duration = Duration::from_millis(2);

/// Runs `plan` to the end.
pub fn run(plan: Plan) -> Result<Report, StartError> {
    let addr = plan.target.addr;
    TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| StartError(format!("cannot connect to {addr}: {e}")))?;
    let probe = |pids: &[u32], kind: Kind, what: &str| {
        Probe::open(pids, kind).map_err(|e| StartError(format!("cannot read --{what}-pid {e}")))
    };
    let mut cpu = probe(&plan.cpu_pids, Kind::Cpu, "cpu")?;
    let mut rss = probe(&plan.rss_pids, Kind::Rss, "rss")?;
    let rss_baseline = rss.read().unwrap_or(0);

    let sockets = match plan.mode {
        Mode::Closed { concurrency } => concurrency,
        Mode::Open { connections, .. } => connections,
        Mode::Hold { streams, .. } => streams,
    };
    let limit = crate::limits::raise_open_files();
    if sockets as libc::rlim_t + 64 > limit {
        eprintln!(
            "sseload: warning: {sockets} connections but at most {limit} open files in this \
             process: expect connect errors (the hard limit could not be raised)"
        );
    }

    // Every request of the run is these bytes, for the whole life of the process.
    let request: &'static [u8] = Box::leak(plan.request.clone().into_boxed_slice());
    let shared = Arc::new(Shared::new(plan, request, Instant::now() + SETUP));
    let plan = &shared.plan;
    let threads: Vec<_> = (0..plan.threads)
        .map(|index| {
            let shared = shared.clone();
            thread::Builder::new()
                .name(format!("sseload-{index}"))
                .spawn(move || client_thread(shared, index))
                .map_err(|e| StartError(format!("cannot start a client thread: {e}")))
        })
        .collect::<Result<_, _>>()?;

    let hold = matches!(plan.mode, Mode::Hold { .. });
    sleep_until(shared.measure_from);
    let measure_cpu = !plan.cpu_pids.is_empty();
    let cpu_start = cpu.read().ok().filter(|_| measure_cpu);
    let measure_rss = !plan.rss_pids.is_empty();
    let mut rss_peak = None;
    loop {
        let now = Instant::now();
        if measure_rss {
            rss_peak = rss_peak.max(rss.read().ok());
        }
        if threads.iter().all(|t| t.is_finished())
            || shared.budget_spent()
            || shared.stop_at.is_some_and(|s| now >= s)
        {
            break;
        }
        thread::sleep(
            TICK.min(
                shared
                    .stop_at
                    .map_or(TICK, |s| s.saturating_duration_since(now)),
            ),
        );
    }
    let cpu_end = cpu.read().ok().filter(|_| measure_cpu);

    let (stats, last_end) = join_all(threads)?;
    let end = match (shared.stop_at, shared.budget_end()) {
        (Some(stop), _) => stop,
        (None, Some(budget_end)) => budget_end,
        (None, None) => last_end.unwrap_or_else(Instant::now),
    };
    let duration_s = end
        .saturating_duration_since(shared.measure_from)
        .as_secs_f64();
    let cpu_us = cpu_start.zip(cpu_end).map(|(a, b)| b.saturating_sub(a));
    if cpu_us.is_none() && measure_cpu {
        eprintln!("sseload: a --cpu-pid process could not be read at the end; no CPU figure");
    }
    let measured = Measured {
        duration_s,
        held_max: hold.then(|| shared.held_max.load(std::sync::atomic::Ordering::Relaxed)),
        cpu_us,
        rss_kib: rss_peak.map(|peak| (rss_baseline, peak)),
    };
    Ok(Report::new(plan, &stats, &measured))
}

type Counted = io::Result<(Stats, Option<Instant>)>;

/// What the client threads counted, added up, and the end of the last counted request. A thread
/// that failed took its counts with it, so a sum without them would be a result short of what
/// was sent (a rate a fraction of the real one): that is the tool's failure, not a result.
fn join_all(
    threads: Vec<thread::JoinHandle<Counted>>,
) -> Result<(Stats, Option<Instant>), StartError> {
    let mut stats = Stats::default();
    let mut last_end = None;
    let mut failed = Vec::new();
    for t in threads {
        match t.join() {
            Ok(Ok((s, end))) => {
                stats.merge(&s);
                last_end = last_end.max(end);
            }
            Ok(Err(e)) => failed.push(format!("a client thread could not run: {e}")),
            Err(_) => failed.push("a client thread panicked".to_string()),
        }
    }
    if failed.is_empty() {
        Ok((stats, last_end))
    } else {
        Err(StartError(format!("{}; no result", failed.join("; "))))
    }
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        thread::sleep(t - now);
    }
}

/// One client thread: its own runtime (io_uring, or epoll where io_uring is not allowed or
/// `--io-driver epoll` asks for it), its share of the load, and its counts at the end.
fn client_thread(shared: Arc<Shared>, index: usize) -> Counted {
    Ok(match shared.plan.driver {
        Driver::IoUring => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()?
            .block_on(client_main(shared, index)),
        Driver::Epoll => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()?
            .block_on(client_main(shared, index)),
    })
}

/// This thread's share of the load; its counts and the end of its last counted request.
async fn client_main(shared: Arc<Shared>, index: usize) -> (Stats, Option<Instant>) {
    let plan = &shared.plan;
    let threads = plan.threads;
    let worker = Rc::new(Worker::new(shared.clone()));
    match plan.mode {
        Mode::Closed { concurrency } => {
            let mine = concurrency / threads + usize::from(index < concurrency % threads);
            closed::run(worker.clone(), mine).await;
        }
        Mode::Open { rate, connections } => {
            let mine = connections / threads + usize::from(index < connections % threads);
            let per_thread = rate / threads as f64;
            // Thread k sends at (i·T + k)/R: the threads' schedules interleave evenly.
            open::run(
                worker.clone(),
                per_thread,
                index as f64 / threads as f64,
                mine,
            )
            .await;
        }
        Mode::Hold { streams, ramp } => {
            hold::run(worker.clone(), streams, ramp, index, threads).await;
        }
    }
    let stats = worker.stats.take();
    let end = *worker.last_end.borrow();
    (stats, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_client_thread_fails_the_run() {
        let counted = || {
            let stats = Stats {
                requests: 5,
                ..Stats::default()
            };
            Ok((stats, Some(Instant::now())))
        };
        let (stats, end) = join_all(vec![thread::spawn(counted), thread::spawn(counted)]).unwrap();
        assert_eq!((stats.requests, end.is_some()), (10, true));
        let e = join_all(vec![
            thread::spawn(counted),
            thread::spawn(|| panic!("a bug in a client thread")),
            thread::spawn(|| Err(io::Error::other("no io_uring"))),
        ])
        .unwrap_err();
        assert!(
            e.0.contains("panicked") && e.0.contains("no io_uring"),
            "{}",
            e.0
        );
    }
}
