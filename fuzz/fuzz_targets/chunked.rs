//! The chunked decoder (`http::chunked::ChunkedDecoder`), fed whole and in the pieces the
//! input's recipe asks for (see the crate's `recipe`).
//! Asserts: the payload, the bytes consumed, whether the body ended and the error are the same
//! however the input is split, and the same again through `decode_in_place`; the payload is
//! never longer than the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringgate::http::chunked::{ChunkedDecoder, ChunkedError};
use ringgate_fuzz::{pieces, recipe};

#[derive(Debug, PartialEq)]
struct Outcome {
    payload: Vec<u8>,
    consumed: usize,
    done: bool,
    error: Option<ChunkedError>,
}

fn run(parts: &[&[u8]]) -> Outcome {
    let mut d = ChunkedDecoder::new();
    let mut o = Outcome {
        payload: Vec::new(),
        consumed: 0,
        done: false,
        error: None,
    };
    'pieces: for part in parts {
        let mut at = 0;
        while at < part.len() && !d.is_done() {
            match d.step(&part[at..]) {
                Ok(step) => {
                    assert!(step.consumed > 0 && step.consumed <= part.len() - at);
                    if let Some(r) = step.data {
                        assert!(r.end <= step.consumed);
                        o.payload.extend_from_slice(&part[at + r.start..at + r.end]);
                    }
                    at += step.consumed;
                }
                Err(e) => {
                    o.error = Some(e);
                    break 'pieces;
                }
            }
        }
        o.consumed += at;
        if d.is_done() {
            break;
        }
    }
    o.done = d.is_done();
    o
}

fuzz_target!(|data: &[u8]| {
    let (sizes, input) = recipe(data);
    let whole = run(&[input]);
    let split = run(&pieces(input, &sizes));
    assert!(whole.payload.len() <= input.len());
    // Where an error stops the feeding, the split run has not counted its last piece.
    if whole.error.is_none() {
        assert_eq!(whole, split);
    } else {
        assert_eq!(
            (&whole.payload, &whole.error),
            (&split.payload, &split.error)
        );
    }
    let mut buf = input.to_vec();
    let inplace = ChunkedDecoder::new().decode_in_place(&mut buf);
    assert_eq!(&buf[..inplace.data], &whole.payload[..]);
    assert_eq!(inplace.error, whole.error);
    if whole.error.is_none() {
        assert_eq!(inplace.consumed, whole.consumed);
    }
});
