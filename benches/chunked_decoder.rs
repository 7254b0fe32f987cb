//! What unframing an upstream body costs: the Anthropic API sends responses chunked, and the relay
//! decodes every read in place (`ChunkedDecoder::decode_in_place`) before it can look for event
//! boundaries, so this runs over every byte of every streamed answer.
//!
//! Inputs: a streamed answer of 70 events (64 text deltas), one event per chunk, delivered one
//! chunk per read (as a live stream arrives) or in reads of the relay's 16 KiB buffer (as a burst
//! does); and a 256 KiB body in one chunk (a large non-streamed answer), in 16 KiB reads. The
//! undecoded body is copied into the buffer outside the timing; the decoding of all its reads, as
//! one stream, is timed. `step` alone (what `decode_in_place` calls, and what the request body
//! reader uses) is measured over the same reads, without the compaction.
//!
//! In the large chunk, payload that already lies in place is not looked at (a read that starts
//! inside the chunk is all payload, moved onto itself): its cost is per read, not per byte, and
//! its throughput figure says how little each byte costs, not how fast memory is.

mod support;

use std::hint::black_box;
use std::ops::Range;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ringgate::http::chunked::{push_chunk, ChunkedDecoder, LAST_CHUNK};
use support::{chunked, decoded, fixed_reads, reads_of, sse_events, READ};

/// The payload of the large body.
const LARGE: usize = 256 * 1024;

const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(3);

/// A chunked body, the reads it arrives in, and the payload it decodes to.
struct Input {
    name: &'static str,
    wire: Vec<u8>,
    reads: Vec<Range<usize>>,
    payload: Vec<u8>,
}

fn inputs() -> Vec<Input> {
    let events = sse_events();
    let stream = chunked(&events);
    // Each chunk (size line, event, CRLF) in a read of its own, then the last chunk.
    let per_chunk = reads_of(
        events
            .iter()
            .map(|e| format!("{:x}", e.len()).len() + 2 + e.len() + 2)
            .chain([LAST_CHUNK.len()]),
    );
    assert_eq!(per_chunk.last().unwrap().end, stream.len());
    let body: Vec<u8> = (0..LARGE).map(|i| b"abcdefghijklmnop"[i % 16]).collect();
    let mut large = Vec::with_capacity(LARGE + 16);
    push_chunk(&mut large, &body);
    large.extend_from_slice(LAST_CHUNK);
    vec![
        Input {
            name: "sse, one chunk per read",
            reads: per_chunk,
            wire: stream.clone(),
            payload: decoded(&events),
        },
        Input {
            name: "sse, 16 KiB reads",
            reads: fixed_reads(stream.len(), READ),
            wire: stream,
            payload: decoded(&events),
        },
        Input {
            name: "256 KiB chunk, 16 KiB reads",
            reads: fixed_reads(large.len(), READ),
            wire: large,
            payload: body,
        },
    ]
}

/// Decodes each read where it lies, as the relay does with the read it just placed in its buffer;
/// returns the payload bytes.
fn decode_reads(buf: &mut [u8], reads: &[Range<usize>]) -> usize {
    let mut d = ChunkedDecoder::new();
    let mut payload = 0;
    for r in reads {
        let out = d.decode_in_place(&mut buf[r.clone()]);
        debug_assert!(out.error.is_none());
        payload += black_box(out.data);
    }
    assert!(d.is_done());
    payload
}

/// `step` over the reads, finding the payload without moving it.
fn step_reads(wire: &[u8], reads: &[Range<usize>]) -> usize {
    let mut d = ChunkedDecoder::new();
    let mut payload = 0;
    for r in reads {
        let input = &wire[r.clone()];
        let mut at = 0;
        while at < input.len() && !d.is_done() {
            let s = d.step(&input[at..]).unwrap();
            if let Some(data) = s.data {
                payload += black_box(data).len();
            }
            at += s.consumed;
        }
    }
    assert!(d.is_done());
    payload
}

fn decoder(c: &mut Criterion) {
    let inputs = inputs();
    let mut g = c.benchmark_group("chunked_decoder");
    g.warm_up_time(WARM_UP).measurement_time(MEASURE);
    for input in &inputs {
        // The payload comes out whole, however the reads split it.
        let mut buf = input.wire.clone();
        let mut out = Vec::new();
        let mut d = ChunkedDecoder::new();
        for r in &input.reads {
            let n = d.decode_in_place(&mut buf[r.clone()]).data;
            out.extend_from_slice(&buf[r.start..r.start + n]);
        }
        assert!(out == input.payload, "{}", input.name);
        assert_eq!(step_reads(&input.wire, &input.reads), input.payload.len());

        g.throughput(Throughput::Bytes(input.wire.len() as u64));
        let batch = if input.wire.len() > READ {
            BatchSize::LargeInput
        } else {
            BatchSize::SmallInput
        };
        g.bench_with_input(
            BenchmarkId::new("decode_in_place", input.name),
            input,
            |b, input| {
                b.iter_batched_ref(
                    || input.wire.clone(),
                    |buf| decode_reads(buf, &input.reads),
                    batch,
                )
            },
        );
        g.bench_with_input(BenchmarkId::new("step", input.name), input, |b, input| {
            b.iter(|| step_reads(black_box(&input.wire), &input.reads))
        });
    }
    g.finish();
}

criterion_group!(benches, decoder);
criterion_main!(benches);
