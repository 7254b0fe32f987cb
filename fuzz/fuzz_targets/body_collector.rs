//! The request body collector (`http::body::BodyCollector`). Byte 0 picks the framing (none, a
//! declared length from bytes 1–2, chunked) and byte 3 the limit (in 16-byte steps); the rest is
//! a split recipe and the body.
//! Asserts: the body kept never exceeds the limit; a declared length over the limit is refused
//! up front; the outcome (bytes consumed, complete or not, the error) and the body are the same
//! however the input is split; a complete length-framed body is exactly its declared length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringgate::http::body::BodyCollector;
use ringgate::http::head::BodyFraming;
use ringgate_fuzz::{pieces, recipe};

fn run(c: &mut BodyCollector, parts: &[&[u8]]) -> (usize, String) {
    let mut consumed = 0;
    for part in parts {
        let mut at = 0;
        while at < part.len() && !c.is_complete() {
            match c.feed(&part[at..]) {
                Ok(0) => break,
                Ok(n) => at += n,
                Err(e) => return (consumed + at, format!("{e:?}")),
            }
        }
        consumed += at;
        if c.is_complete() {
            break;
        }
    }
    (consumed, String::new())
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let declared = u16::from_be_bytes([data[1], data[2]]) as u64;
    let framing = match data[0] % 3 {
        0 => BodyFraming::None,
        1 => BodyFraming::Length(declared),
        _ => BodyFraming::Chunked,
    };
    let limit = data[3] as u64 * 16;
    let (sizes, input) = recipe(&data[4..]);
    let Ok(mut whole) = BodyCollector::new(framing, limit) else {
        assert!(matches!(framing, BodyFraming::Length(n) if n > limit));
        return;
    };
    let mut split = BodyCollector::new(framing, limit).unwrap();
    let w = run(&mut whole, &[input]);
    let s = run(&mut split, &pieces(input, &sizes));
    let failed = !w.1.is_empty();
    assert_eq!(w.1, s.1, "the error depends on the split");
    let (wc, sc) = (whole.is_complete(), split.is_complete());
    let (wb, sb) = (whole.finish(), split.finish());
    assert!(wb.len() as u64 <= limit && sb.len() as u64 <= limit);
    if !failed {
        assert_eq!((w.0, wc, &wb), (s.0, sc, &sb));
        if let (BodyFraming::Length(n), true) = (framing, wc) {
            assert_eq!(wb.len() as u64, n);
            assert_eq!(&wb[..], &input[..n as usize]);
        }
    }
});
