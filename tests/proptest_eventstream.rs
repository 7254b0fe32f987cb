//! Property tests for the Bedrock event-stream frame reader: random valid frames, in any split,
//! give back exactly the frames generated; a stream with one byte changed gives the frames
//! before that byte and then an error; a stream cut short gives the frames wholly before the
//! cut; and random bytes never panic the reader nor make it hold more than its cap.
//!
//! The frames are written by an encoder of this file's own (struct packing and `crc32fast`), and
//! every property is held against what was generated, not against the reader's idea of it.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

use ringgate::dialect::bedrock::eventstream::{
    Frame, FrameError, FrameReader, HeaderValue, MIN_FRAME,
};

/// No regression files: this test may only add itself to the repository.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------------------------------------------
// Generated frames and their encoding
// ------------------------------------------------------------------------------------------------

/// A header value as generated, owned.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Bool(bool),
    Byte(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Bytes(Vec<u8>),
    String(String),
    Timestamp(i64),
    Uuid([u8; 16]),
}

impl Value {
    fn of(v: HeaderValue<'_>) -> Value {
        match v {
            HeaderValue::Bool(b) => Value::Bool(b),
            HeaderValue::Byte(n) => Value::Byte(n),
            HeaderValue::Int16(n) => Value::Int16(n),
            HeaderValue::Int32(n) => Value::Int32(n),
            HeaderValue::Int64(n) => Value::Int64(n),
            HeaderValue::Bytes(b) => Value::Bytes(b.to_vec()),
            HeaderValue::String(s) => Value::String(s.to_string()),
            HeaderValue::Timestamp(n) => Value::Timestamp(n),
            HeaderValue::Uuid(u) => Value::Uuid(*u),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
struct GenFrame {
    headers: Vec<(String, Value)>,
    payload: Vec<u8>,
}

impl GenFrame {
    fn of(f: Frame<'_>) -> GenFrame {
        GenFrame {
            headers: f
                .headers()
                .map(|h| (h.name.to_string(), Value::of(h.value)))
                .collect(),
            payload: f.payload().to_vec(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut hs = Vec::new();
        for (name, value) in &self.headers {
            hs.push(name.len() as u8);
            hs.extend_from_slice(name.as_bytes());
            let (kind, bytes): (u8, Vec<u8>) = match value {
                Value::Bool(true) => (0, vec![]),
                Value::Bool(false) => (1, vec![]),
                Value::Byte(n) => (2, n.to_be_bytes().to_vec()),
                Value::Int16(n) => (3, n.to_be_bytes().to_vec()),
                Value::Int32(n) => (4, n.to_be_bytes().to_vec()),
                Value::Int64(n) => (5, n.to_be_bytes().to_vec()),
                Value::Bytes(b) => (6, [&(b.len() as u16).to_be_bytes()[..], b].concat()),
                Value::String(s) => (
                    7,
                    [&(s.len() as u16).to_be_bytes()[..], s.as_bytes()].concat(),
                ),
                Value::Timestamp(n) => (8, n.to_be_bytes().to_vec()),
                Value::Uuid(u) => (9, u.to_vec()),
            };
            hs.push(kind);
            hs.extend(bytes);
        }
        let total = (16 + hs.len() + self.payload.len()) as u32;
        let mut out = Vec::new();
        out.extend(total.to_be_bytes());
        out.extend((hs.len() as u32).to_be_bytes());
        let crc = crc32fast::hash(&out);
        out.extend(crc.to_be_bytes());
        out.extend(hs);
        out.extend_from_slice(&self.payload);
        let crc = crc32fast::hash(&out);
        out.extend(crc.to_be_bytes());
        out
    }
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i8>().prop_map(Value::Byte),
        any::<i16>().prop_map(Value::Int16),
        any::<i32>().prop_map(Value::Int32),
        any::<i64>().prop_map(Value::Int64),
        vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
        "\\PC{0,20}".prop_map(Value::String),
        any::<i64>().prop_map(Value::Timestamp),
        any::<[u8; 16]>().prop_map(Value::Uuid),
    ]
}

fn gen_frame() -> impl Strategy<Value = GenFrame> {
    let name = prop_oneof![4 => "[:a-z-]{0,14}", 1 => "\\PC{0,20}"];
    let payload = prop_oneof![6 => vec(any::<u8>(), 0..120), 1 => vec(any::<u8>(), 0..3000)];
    (vec((name, value()), 0..8), payload).prop_map(|(mut headers, payload)| {
        // A name once: the reader refuses a frame that gives one twice.
        let mut seen = std::collections::HashSet::new();
        headers.retain(|(n, _)| seen.insert(n.clone()));
        GenFrame { headers, payload }
    })
}

/// Frames, their bytes as one stream, and where each frame ends in it.
fn wire(frames: &[GenFrame]) -> (Vec<u8>, Vec<usize>) {
    let (mut bytes, mut ends) = (Vec::new(), Vec::new());
    for f in frames {
        bytes.extend(f.encode());
        ends.push(bytes.len());
    }
    (bytes, ends)
}

// ------------------------------------------------------------------------------------------------
// Feeding
// ------------------------------------------------------------------------------------------------

/// Mostly tiny splits (1–13 bytes, across a prelude's 12), sometimes larger ones.
fn split_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        3 => vec(1usize..=13, 1..16),
        1 => vec(prop_oneof![1usize..=13, 14usize..=4000], 1..8),
    ]
}

/// What the reader gave for `bytes` fed in pieces of `sizes` (cycled): the frames, then the
/// error that stopped it, or how the stream ended. Checks after every piece that no more than
/// the cap is held.
fn run(bytes: &[u8], sizes: &[usize], max: usize) -> (Vec<GenFrame>, Result<(), FrameError>) {
    let mut r = FrameReader::new(max);
    let cap = max.max(MIN_FRAME);
    let mut got = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < bytes.len() {
        let n = sizes[i % sizes.len()].max(1).min(bytes.len() - at);
        i += 1;
        let fed = r.feed(&bytes[at..at + n], |f| {
            got.push(GenFrame::of(f));
            Ok::<(), FrameError>(())
        });
        assert!(r.held() <= cap, "{} bytes held, cap {cap}", r.held());
        if let Err(e) = fed {
            return (got, Err(e));
        }
        at += n;
    }
    (got, r.finish())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_split_of_valid_frames_gives_the_frames_generated(
        frames in vec(gen_frame(), 0..6),
        sizes in split_sizes(),
    ) {
        let (bytes, _) = wire(&frames);
        // The largest frame is exactly at the cap.
        let max = frames.iter().map(|f| f.encode().len()).max().unwrap_or(MIN_FRAME);
        let (got, end) = run(&bytes, &sizes, max);
        prop_assert_eq!(end, Ok(()));
        prop_assert_eq!(got, frames.clone());
        let (got, end) = run(&bytes, &[bytes.len().max(1)], max);
        prop_assert_eq!(end, Ok(()));
        prop_assert_eq!(got, frames);
    }

    #[test]
    fn one_changed_byte_gives_the_frames_before_it_then_an_error(
        frames in vec(gen_frame(), 1..5),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
        sizes in split_sizes(),
    ) {
        let (mut bytes, ends) = wire(&frames);
        let at = at.index(bytes.len());
        bytes[at] ^= xor;
        // CRC32 finds every error of 32 bits or fewer in a row, so the frame is always refused.
        let before = ends.iter().filter(|&&e| e <= at).count();
        let (got, end) = run(&bytes, &sizes, 1 << 20);
        prop_assert!(end.is_err(), "byte {} changed, {:?}", at, end);
        prop_assert_eq!(got, frames[..before].to_vec());
    }

    #[test]
    fn a_stream_cut_short_gives_the_frames_wholly_before_the_cut(
        frames in vec(gen_frame(), 1..5),
        cut in any::<prop::sample::Index>(),
        sizes in split_sizes(),
    ) {
        let (bytes, ends) = wire(&frames);
        let cut = cut.index(bytes.len());
        let before = ends.iter().filter(|&&e| e <= cut).count();
        let (got, end) = run(&bytes[..cut], &sizes, 1 << 20);
        prop_assert_eq!(got, frames[..before].to_vec());
        let start = if before == 0 { 0 } else { ends[before - 1] };
        if cut == start {
            prop_assert_eq!(end, Ok(()));
        } else {
            prop_assert_eq!(end, Err(FrameError::Cut { held: cut - start }));
        }
    }

    #[test]
    fn random_bytes_never_panic_nor_hold_more_than_the_cap(
        bytes in prop_oneof![
            vec(any::<u8>(), 0..3000),
            // A prelude whose CRC is right and whose lengths are anything, then random bytes.
            (any::<u32>(), any::<u32>(), vec(any::<u8>(), 0..3000)).prop_map(|(t, h, rest)| {
                let mut b = t.to_be_bytes().to_vec();
                b.extend(h.to_be_bytes());
                let crc = crc32fast::hash(&b);
                b.extend(crc.to_be_bytes());
                b.extend(rest);
                b
            }),
        ],
        max in 0usize..4000,
        sizes in split_sizes(),
    ) {
        // `run` checks the cap after every piece; any frame found must at least be read whole.
        let (got, _) = run(&bytes, &sizes, max);
        for f in got {
            prop_assert!(f.encode().len() <= max.max(MIN_FRAME));
        }
    }
}
