//! The frames botocore decoded (`eventstream_frames.json`, written by
//! tests/oracles/eventstream_frames.py from frames it built itself): the reader must give the
//! same headers and payloads for every frame botocore read, refuse every frame botocore refused,
//! and refuse on purpose the few that botocore lets through.

use serde_json::{json, Value};

use super::*;

/// A header value as botocore gives it (and the JSON file holds it): bytes and UUIDs as hex,
/// every integer type as a number; and its type number on the wire.
fn as_botocore(v: HeaderValue<'_>) -> (u8, Value) {
    match v {
        HeaderValue::Bool(b) => (if b { 0 } else { 1 }, json!(b)),
        HeaderValue::Byte(n) => (2, json!(n)),
        HeaderValue::Int16(n) => (3, json!(n)),
        HeaderValue::Int32(n) => (4, json!(n)),
        HeaderValue::Int64(n) => (5, json!(n)),
        HeaderValue::Bytes(b) => (6, json!({ "hex": hex(b) })),
        HeaderValue::String(s) => (7, json!(s)),
        HeaderValue::Timestamp(n) => (8, json!(n)),
        HeaderValue::Uuid(b) => (9, json!({ "hex": hex(b) })),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn fault(e: FrameError) -> &'static str {
    match e {
        FrameError::PreludeCrc { .. } => "prelude_crc",
        FrameError::MessageCrc { .. } => "message_crc",
        FrameError::TooShort { .. } => "too_short",
        FrameError::TooLong { .. } => "too_long",
        FrameError::HeadersLength { .. } => "headers_length",
        FrameError::Header { fault, .. } => match fault {
            HeaderFault::UnknownType(_) => "unknown_type",
            HeaderFault::PastEnd => "past_end",
            HeaderFault::NotUtf8 => "not_utf8",
            HeaderFault::Duplicate => "duplicate",
        },
        FrameError::Cut { .. } => "cut",
    }
}

#[test]
fn botocore_reads_the_same_frames() {
    let doc: Value = serde_json::from_str(include_str!("eventstream_frames.json")).unwrap();
    let max = 1 << 20;
    let valid = doc["valid"].as_array().unwrap();
    assert!(valid.len() >= 10);
    let mut stream = Vec::new();
    for case in valid {
        let name = case["name"].as_str().unwrap();
        let bytes = unhex(case["frame"].as_str().unwrap());
        let mut r = FrameReader::new(max);
        let mut seen = 0;
        r.feed(&bytes, |f| {
            seen += 1;
            let hs: Vec<Value> = f
                .headers()
                .map(|h| {
                    let (kind, value) = as_botocore(h.value);
                    json!({ "name": h.name, "type": kind, "value": value })
                })
                .collect();
            assert_eq!(Value::from(hs), case["headers"], "{name}");
            assert_eq!(hex(f.payload()), case["payload"], "{name}");
            Ok::<(), FrameError>(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((seen, r.finish()), (1, Ok(())), "{name}");
        stream.extend(bytes);
    }
    // All of them as one stream, a byte at a time.
    let every: Vec<usize> = (1..stream.len()).collect();
    let (got, end) = frames(&stream, &every, max);
    assert_eq!((got.len(), end), (valid.len(), Ok(())));

    for list in ["rejected", "stricter"] {
        let cases = doc[list].as_array().unwrap();
        assert!(!cases.is_empty());
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let bytes = unhex(case["frame"].as_str().unwrap());
            let e = refused(&bytes, max);
            assert_eq!(fault(e), case["fault"], "{list} {name}: {e:?}");
        }
    }
}
