//! What the relay does with every decoded byte of an event stream: find where events end
//! (`EventScanner`, which looks at each byte once so the relay can cut its writes at event
//! boundaries) and take note of each event (`Tally::observe`, which reads the event name of every
//! event and parses only `message_start` and `message_delta`, the two that carry usage).
//!
//! The stream is a streamed answer of 70 events (64 text deltas of ~60 bytes), arriving one event
//! per read (a live stream) or in reads of the relay's 16 KiB buffer (a burst). After each read
//! the whole events are taken away, as a flush would; the held bytes are a window over the
//! stream, so no copying is timed.

mod support;

use std::hint::black_box;
use std::ops::Range;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringgate::stream::sse::EventScanner;
use ringgate::stream::tally::{Tally, Usage};
use support::{decoded, fixed_reads, reads_of, sse_events, DELTAS, READ};

const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(3);

/// Scans `stream` as it arrives in `reads`, taking away the whole events after each read;
/// returns how many events were found.
fn scan(stream: &[u8], reads: &[Range<usize>]) -> usize {
    let mut s = EventScanner::new();
    let mut base = 0;
    let mut events = 0;
    for r in reads {
        let held = &stream[base..r.end];
        s.scan(held, |found| {
            black_box(found);
            events += 1;
        });
        let cut = s.ready();
        s.consumed(held, cut);
        base += cut;
    }
    events
}

fn scanner(c: &mut Criterion) {
    let events = sse_events();
    let stream = decoded(&events);
    let reads = [
        ("one event per read", reads_of(events.iter().map(Vec::len))),
        ("16 KiB reads", fixed_reads(stream.len(), READ)),
    ];
    let mut g = c.benchmark_group("sse_scan");
    g.warm_up_time(WARM_UP).measurement_time(MEASURE);
    g.throughput(Throughput::Bytes(stream.len() as u64));
    for (name, reads) in &reads {
        assert_eq!(scan(&stream, reads), events.len(), "{name}");
        g.bench_with_input(BenchmarkId::new("EventScanner", name), reads, |b, reads| {
            b.iter(|| scan(black_box(&stream), reads))
        });
    }
    g.finish();
}

fn tally(c: &mut Criterion) {
    let events = sse_events();
    let mut t = Tally::default();
    for e in &events {
        t.observe(e);
    }
    assert!(t.finished());
    assert_eq!(t.events, events.len() as u64);
    assert_eq!(
        t.usage,
        Usage {
            input_tokens: 2679,
            output_tokens: 987,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 18240,
        }
    );
    let named = |name: &str| {
        let line = format!("event: {name}\n");
        events
            .iter()
            .find(|e| e.starts_with(line.as_bytes()))
            .unwrap()
            .clone()
    };

    let mut g = c.benchmark_group("tally");
    g.warm_up_time(WARM_UP).measurement_time(MEASURE);
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function(format!("observe, whole stream ({DELTAS} deltas)"), |b| {
        b.iter(|| {
            let mut t = Tally::default();
            for e in &events {
                t.observe(black_box(e));
            }
            black_box(t)
        })
    });
    // The event each kind of work is for: a name only, or a name and a JSON parse.
    g.throughput(Throughput::Elements(1));
    for name in ["content_block_delta", "message_start", "message_delta"] {
        let event = named(name);
        g.bench_function(format!("observe, one {name}"), |b| {
            b.iter(|| {
                let mut t = Tally::default();
                t.observe(black_box(&event));
                black_box(t)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, scanner, tally);
criterion_main!(benches);
