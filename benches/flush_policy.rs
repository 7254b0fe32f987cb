//! What deciding when to write costs: for every read of an event stream the relay tells its
//! `Coalescer` what arrived (which scans for event boundaries), asks it whether to write
//! (`decide`) and, after each write, tells it what went out (`flushed`). This runs once per read
//! and once per write of every stream, so it must stay far below the cost of the write it saves.
//!
//! A streamed answer of 70 events arrives one event per read, an event every `GAP` of a synthetic
//! clock, into a relay buffer with the default policy (16 KiB, 8 KiB threshold, 120 ms interval):
//! coalescing gathers several events per write, immediate mode writes each. When a flush deadline
//! passes between two events, the relay's timer would wake it: the bench asks again at that
//! instant, as the relay does. The held bytes are a window over the stream: nothing is copied.

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringgate::stream::flush::{Coalescer, Decision, FlushMode, FlushPolicy};
use support::{decoded, sse_events, READ};

/// Time between two events of the stream (a token rate of 50 per second).
const GAP: Duration = Duration::from_millis(20);
/// The `[stream]` defaults.
const THRESHOLD: usize = 8 * 1024;
const INTERVAL: Duration = Duration::from_millis(120);

const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(3);

/// Writes whatever the policy says is due at `now`, by moving the window's start; returns the
/// next deadline.
fn settle(
    c: &mut Coalescer,
    stream: &[u8],
    base: &mut usize,
    end: usize,
    now: Instant,
    writes: &mut usize,
) -> Option<Instant> {
    loop {
        match c.decide(now) {
            Decision::Flush(cut) => {
                c.flushed(&stream[*base..end], cut);
                *base += cut;
                *writes += 1;
            }
            Decision::WaitUntil(t) => return Some(t),
            Decision::Wait => return None,
        }
    }
}

/// Relays the events of `stream` (their lengths in `events`) through a coalescer; returns the
/// number of writes.
fn relay(stream: &[u8], events: &[usize], policy: FlushPolicy, start: Instant) -> usize {
    let mut c = Coalescer::new(policy, READ, true);
    let (mut base, mut end, mut writes) = (0, 0, 0);
    let mut due = None;
    for (i, &len) in events.iter().enumerate() {
        let now = start + GAP * i as u32;
        if let Some(t) = due.filter(|&t| t <= now) {
            // Everything whole goes out then; the next deadline is set by the next arrival.
            settle(&mut c, stream, &mut base, end, t, &mut writes);
        }
        end += len;
        c.arrived(&stream[base..end], now, |found| {
            black_box(found);
        });
        due = settle(&mut c, stream, &mut base, end, now, &mut writes);
    }
    // The body's end: what is held goes out with it.
    if c.ready() > 0 {
        c.flushed(&stream[base..end], c.ready());
        base = end;
        writes += 1;
    }
    assert_eq!(base, stream.len());
    writes
}

fn coalescer(c: &mut Criterion) {
    let events = sse_events();
    let stream = decoded(&events);
    let lengths: Vec<usize> = events.iter().map(Vec::len).collect();
    let start = Instant::now();
    let mut g = c.benchmark_group("flush_policy");
    g.warm_up_time(WARM_UP).measurement_time(MEASURE);
    g.throughput(Throughput::Elements(events.len() as u64));
    for (name, mode) in [
        ("coalesce", FlushMode::Coalesce),
        ("immediate", FlushMode::Immediate),
    ] {
        let policy = FlushPolicy {
            mode,
            threshold: THRESHOLD,
            interval: INTERVAL,
        };
        let writes = relay(&stream, &lengths, policy, start);
        match mode {
            FlushMode::Immediate => assert_eq!(writes, events.len()),
            // About one write per interval, the first event on its own.
            FlushMode::Coalesce => assert!(writes < events.len() / 4, "{writes} writes"),
        }
        g.bench_with_input(
            BenchmarkId::new(
                "arrived+decide+flushed",
                format!("{name}, {} events", events.len()),
            ),
            &policy,
            |b, &policy| b.iter(|| relay(black_box(&stream), &lengths, policy, start)),
        );
    }
    g.finish();
}

criterion_group!(benches, coalescer);
criterion_main!(benches);
