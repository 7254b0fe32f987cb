//! Frames built by an encoder of this file's own (struct packing and `crc32fast`, sharing no code
//! with the reader), the known vector of TRANSLATION.md §3, every corruption the reader must
//! refuse, every split of a small stream; and in `botocore`, the frames botocore decoded.

use super::*;

// ------------------------------------------------------------------------------------------------
// The test encoder
// ------------------------------------------------------------------------------------------------

/// The bytes of headers, each as name length u8, name, type u8, value.
fn headers(hs: &[(&str, HeaderValue<'_>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in hs {
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        let sized = |b: &[u8]| [&(b.len() as u16).to_be_bytes()[..], b].concat();
        let (kind, bytes): (u8, Vec<u8>) = match *value {
            HeaderValue::Bool(b) => (if b { 0 } else { 1 }, vec![]),
            HeaderValue::Byte(v) => (2, v.to_be_bytes().to_vec()),
            HeaderValue::Int16(v) => (3, v.to_be_bytes().to_vec()),
            HeaderValue::Int32(v) => (4, v.to_be_bytes().to_vec()),
            HeaderValue::Int64(v) => (5, v.to_be_bytes().to_vec()),
            HeaderValue::Bytes(v) => (6, sized(v)),
            HeaderValue::String(v) => (7, sized(v.as_bytes())),
            HeaderValue::Timestamp(v) => (8, v.to_be_bytes().to_vec()),
            HeaderValue::Uuid(v) => (9, v.to_vec()),
        };
        out.push(kind);
        out.extend(bytes);
    }
    out
}

/// A frame of raw header bytes and a payload, with lengths `total` and `hlen` (the true ones
/// when `None`) and both CRCs right.
fn raw_frame(hbytes: &[u8], payload: &[u8], total: Option<u32>, hlen: Option<u32>) -> Vec<u8> {
    let total = total.unwrap_or((16 + hbytes.len() + payload.len()) as u32);
    let hlen = hlen.unwrap_or(hbytes.len() as u32);
    let mut out = Vec::new();
    out.extend(total.to_be_bytes());
    out.extend(hlen.to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend(prelude_crc.to_be_bytes());
    out.extend_from_slice(hbytes);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend(crc.to_be_bytes());
    out
}

fn encode(hs: &[(&str, HeaderValue<'_>)], payload: &[u8]) -> Vec<u8> {
    raw_frame(&headers(hs), payload, None, None)
}

// ------------------------------------------------------------------------------------------------
// Feeding
// ------------------------------------------------------------------------------------------------

/// A frame as owned strings: each header `name=value`, then the payload.
type Got = (Vec<String>, Vec<u8>);

fn own(f: Frame<'_>) -> Got {
    let hs = f
        .headers()
        .map(|h| format!("{}={:?}", h.name, h.value))
        .collect();
    (hs, f.payload().to_vec())
}

/// The frames of `input` fed in the pieces `cuts` makes, checking after every piece that no
/// more than the cap `max` (at least [`MIN_FRAME`]) is held; then whether the stream ended
/// between frames.
fn frames(input: &[u8], cuts: &[usize], max: usize) -> (Vec<Got>, Result<(), FrameError>) {
    let mut r = FrameReader::new(max);
    let mut got = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain([input.len()].iter()) {
        let fed = r.feed(&input[at..cut], |f| {
            got.push(own(f));
            Ok::<(), FrameError>(())
        });
        let cap = max.max(MIN_FRAME);
        assert!(r.held() <= cap, "{} bytes held, cap {cap}", r.held());
        if let Err(e) = fed {
            return (got, Err(e));
        }
        at = cut;
    }
    (got, r.finish())
}

/// The error that reading `input` whole stops at.
fn refused(input: &[u8], max: usize) -> FrameError {
    frames(input, &[], max).1.expect_err("refused")
}

fn chunk(text: &str) -> Vec<u8> {
    encode(
        &[
            (":event-type", HeaderValue::String("chunk")),
            (":content-type", HeaderValue::String("application/json")),
            (":message-type", HeaderValue::String("event")),
        ],
        format!(r#"{{"bytes":"{text}","p":"abc"}}"#).as_bytes(),
    )
}

// ------------------------------------------------------------------------------------------------
// Frames read
// ------------------------------------------------------------------------------------------------

#[test]
fn the_known_vector_of_translation_md() {
    let payload = br#"{"foo": "bar"}"#;
    let mut vector = vec![0, 0, 0, 0x1e, 0, 0, 0, 0, 0xba, 0xf2, 0xf6, 0x8a];
    vector.extend_from_slice(payload);
    vector.extend([0xae, 0x72, 0x58, 0xe4]);
    assert_eq!(encode(&[], payload), vector);
    let (got, end) = frames(&vector, &[], 1024);
    assert_eq!(got, vec![(vec![], payload.to_vec())]);
    assert_eq!(end, Ok(()));
}

#[test]
fn every_header_type_is_read() {
    let uuid: [u8; 16] = std::array::from_fn(|i| i as u8 * 17);
    let hs = [
        ("t", HeaderValue::Bool(true)),
        ("f", HeaderValue::Bool(false)),
        ("byte", HeaderValue::Byte(-128)),
        ("short", HeaderValue::Int16(-2)),
        ("int", HeaderValue::Int32(i32::MAX)),
        ("long", HeaderValue::Int64(i64::MIN)),
        ("bytes", HeaderValue::Bytes(&[0, 255, 7])),
        ("empty", HeaderValue::Bytes(&[])),
        ("string", HeaderValue::String("café ☃")),
        ("timestamp", HeaderValue::Timestamp(1_700_000_000_123)),
        ("uuid", HeaderValue::Uuid(&uuid)),
        ("", HeaderValue::String("a nameless header")),
    ];
    let bytes = encode(&hs, b"\x00payload\xff");
    let mut r = FrameReader::new(4096);
    let mut seen = 0;
    r.feed(&bytes, |f| {
        seen += 1;
        let got: Vec<(&str, HeaderValue<'_>)> = f.headers().map(|h| (h.name, h.value)).collect();
        assert_eq!(got, hs);
        assert_eq!(f.header("long"), Some(HeaderValue::Int64(i64::MIN)));
        assert_eq!(f.header("uuid"), Some(HeaderValue::Uuid(&uuid)));
        assert_eq!(f.header("missing"), None);
        assert_eq!(f.string("string"), Some("café ☃"));
        assert_eq!(f.string("int"), None, "not a string");
        assert_eq!(f.payload(), b"\x00payload\xff");
        Ok::<(), FrameError>(())
    })
    .unwrap();
    assert_eq!(seen, 1);
}

#[test]
fn a_long_name_and_the_longest_values() {
    let name = "n".repeat(255);
    let long = "v".repeat(65535);
    let bytes = encode(
        &[
            (&name, HeaderValue::String(&long)),
            ("b", HeaderValue::Bytes(long.as_bytes())),
        ],
        b"",
    );
    let (got, end) = frames(&bytes, &[], 1 << 20);
    assert_eq!(end, Ok(()));
    assert_eq!(got[0].0.len(), 2);
    assert!(got[0].0[0].starts_with(&format!("{name}=String(\"vvv")));
}

#[test]
fn bedrock_events_and_exceptions_are_named() {
    let mut r = FrameReader::new(4096);
    let mut names = Vec::new();
    let mut stream = chunk("eyJ0eXBlIjoicGluZyJ9");
    stream.extend(encode(
        &[
            (
                ":exception-type",
                HeaderValue::String("throttlingException"),
            ),
            (":content-type", HeaderValue::String("application/json")),
            (":message-type", HeaderValue::String("exception")),
        ],
        br#"{"message":"Too many requests"}"#,
    ));
    r.feed(&stream, |f| {
        let own = |s: Option<&str>| s.map(str::to_string);
        names.push((
            own(f.message_type()),
            own(f.event_type()),
            own(f.exception_type()),
        ));
        Ok::<(), FrameError>(())
    })
    .unwrap();
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        names,
        [
            (some("event"), some("chunk"), None),
            (some("exception"), None, some("throttlingException"))
        ]
    );
}

#[test]
fn a_frame_inside_one_read_is_not_copied_and_a_cut_one_is() {
    let stream = [chunk("a"), chunk("b")].concat();
    let cut = stream.len() / 2 + 3;
    let range = stream.as_ptr_range();
    let mut r = FrameReader::new(4096);
    let mut inside = Vec::new();
    let mut each = |f: Frame<'_>| {
        inside.push(range.contains(&f.payload().as_ptr()));
        Ok::<(), FrameError>(())
    };
    r.feed(&stream[..cut], &mut each).unwrap();
    r.feed(&stream[cut..], &mut each).unwrap();
    r.finish().unwrap();
    assert_eq!(inside, [true, false]);
}

// ------------------------------------------------------------------------------------------------
// Frames refused
// ------------------------------------------------------------------------------------------------

#[test]
fn a_corrupt_prelude_crc_is_refused_and_stays_refused() {
    let good = chunk("x");
    for at in 0..12 {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        assert!(
            matches!(refused(&bad, 4096), FrameError::PreludeCrc { .. }),
            "byte {at}"
        );
    }
    let mut bad = good.clone();
    bad[9] ^= 1;
    let mut r = FrameReader::new(4096);
    let first = r.feed(&bad, |_| Ok::<(), FrameError>(())).unwrap_err();
    // No frame can be found after a broken one: the reader says so again, whatever comes.
    assert_eq!(r.feed(&good, |_| Ok::<(), FrameError>(())), Err(first));
    assert_eq!(r.finish(), Err(first));
    assert_eq!(r.held(), 0);
}

#[test]
fn a_corrupt_message_crc_is_refused() {
    let good = chunk("x");
    for at in 12..good.len() {
        let mut bad = good.clone();
        bad[at] ^= 0x80;
        let e = refused(&bad, 4096);
        assert!(
            matches!(e, FrameError::MessageCrc { .. }),
            "byte {at}: {e:?}"
        );
        // The same when the frame comes a byte at a time.
        let cuts: Vec<usize> = (1..bad.len()).collect();
        assert_eq!(frames(&bad, &cuts, 4096).1, Err(e));
    }
}

#[test]
fn an_oversized_frame_is_refused_at_its_prelude() {
    let big = encode(&[], &[b'x'; 1000]);
    assert!(frames(&big, &[], big.len()).1.is_ok(), "exactly the cap");
    let mut r = FrameReader::new(big.len() - 1);
    // Only the prelude has come: that is enough to refuse, and nothing is held.
    let e = r
        .feed(&big[..12], |_| Ok::<(), FrameError>(()))
        .unwrap_err();
    assert_eq!(
        e,
        FrameError::TooLong {
            total: big.len() as u32,
            max: big.len() - 1
        }
    );
    assert_eq!(r.held(), 0);
    // A prelude that says 4 GiB, CRC and all.
    let huge = raw_frame(&[], &[], Some(u32::MAX), None);
    let e = refused(&huge[..12], 1 << 20);
    assert!(matches!(
        e,
        FrameError::TooLong {
            total: u32::MAX,
            ..
        }
    ));
}

#[test]
fn a_total_below_the_minimum_is_refused() {
    for total in [0, 4, 12, 15] {
        let f = raw_frame(&[], &[], Some(total), None);
        assert_eq!(refused(&f, 4096), FrameError::TooShort { total });
    }
}

#[test]
fn a_headers_length_past_the_end_is_refused() {
    let f = raw_frame(&[], b"abcdefgh", None, Some(9));
    assert_eq!(
        refused(&f, 4096),
        FrameError::HeadersLength {
            headers: 9,
            total: 24
        }
    );
    let f = raw_frame(&[], b"", None, Some(u32::MAX));
    assert!(matches!(
        refused(&f, 4096),
        FrameError::HeadersLength { .. }
    ));
    // Up to the message CRC is fine.
    let hs = headers(&[("a", HeaderValue::Bool(true))]);
    assert!(frames(&raw_frame(&hs, b"", None, None), &[], 4096)
        .1
        .is_ok());
}

#[test]
fn an_unknown_header_type_is_refused() {
    let mut hs = headers(&[("ok", HeaderValue::Int32(1))]);
    hs.extend(b"\x01x\x0a");
    assert_eq!(
        refused(&raw_frame(&hs, b"{}", None, None), 4096),
        FrameError::Header {
            offset: 12 + 8,
            fault: HeaderFault::UnknownType(10)
        }
    );
}

#[test]
fn a_header_that_runs_past_the_end_is_refused() {
    let cases: [&[u8]; 7] = [
        b"\x05ab",                   // a name longer than what is left
        b"\x01n",                    // no type
        b"\x01n\x04\x00\x00",        // an i32 of two bytes
        b"\x01n\x05\x00",            // an i64 of one byte
        b"\x01s\x07\x00\x10ab",      // a string longer than what is left
        b"\x01b\x06\x00",            // half a length
        b"\x01u\x09abcdefghijklmno", // a UUID of 15 bytes
    ];
    for hs in cases {
        // The payload after the headers does not lend them its bytes.
        let f = raw_frame(hs, b"0123456789abcdef", None, None);
        assert_eq!(
            refused(&f, 4096),
            FrameError::Header {
                offset: 12,
                fault: HeaderFault::PastEnd
            },
            "{hs:?}"
        );
    }
}

#[test]
fn a_header_not_utf8_is_refused() {
    for hs in [&b"\x02\xff\xfe\x00"[..], b"\x01s\x07\x00\x02\xc3\x28"] {
        let f = raw_frame(hs, b"", None, None);
        assert_eq!(
            refused(&f, 4096),
            FrameError::Header {
                offset: 12,
                fault: HeaderFault::NotUtf8
            }
        );
    }
}

#[test]
fn a_name_given_twice_is_refused_among_few_headers_and_many() {
    let t = HeaderValue::Bool(true);
    let few = headers(&[("a", t), ("b", t), ("a", t)]);
    assert_eq!(
        refused(&raw_frame(&few, b"", None, None), 4096),
        FrameError::Header {
            offset: 12 + 6,
            fault: HeaderFault::Duplicate
        }
    );
    // Forty headers of four bytes each: the 19th, 25th and 31st repeat earlier names.
    let names: Vec<String> = (0..40)
        .map(|i| match i {
            18 => "h03".to_string(),
            24 => "h20".to_string(),
            30 => "h03".to_string(),
            i => format!("h{i:02}"),
        })
        .collect();
    let hs: Vec<(&str, HeaderValue<'_>)> = names.iter().map(|n| (n.as_str(), t)).collect();
    let many = headers(&hs);
    assert_eq!(
        refused(&raw_frame(&many, b"", None, None), 1 << 20),
        FrameError::Header {
            offset: 12 + 18 * 5,
            fault: HeaderFault::Duplicate
        }
    );
    let distinct: Vec<String> = (0..40).map(|i| format!("h{i:02}")).collect();
    let hs: Vec<(&str, HeaderValue<'_>)> = distinct.iter().map(|n| (n.as_str(), t)).collect();
    assert!(frames(&encode(&hs, b""), &[], 1 << 20).1.is_ok());
}

#[test]
fn the_callers_error_stops_the_reading() {
    let stream = [chunk("1"), chunk("2")].concat();
    let mut r = FrameReader::new(4096);
    let mut seen = 0;
    let e = r.feed(&stream, |_| {
        seen += 1;
        Err("enough")
    });
    assert_eq!(e, Err("enough"));
    assert_eq!(seen, 1);
}

impl From<FrameError> for &'static str {
    fn from(_: FrameError) -> &'static str {
        "frame error"
    }
}

// ------------------------------------------------------------------------------------------------
// Splits and memory
// ------------------------------------------------------------------------------------------------

/// Three frames: no headers and no payload, a Bedrock chunk, one of every type.
fn small_stream() -> Vec<u8> {
    let uuid = [7u8; 16];
    [
        encode(&[], b""),
        chunk("eyJ9"),
        encode(
            &[
                ("t", HeaderValue::Bool(true)),
                ("b", HeaderValue::Byte(1)),
                ("s", HeaderValue::Int16(2)),
                ("i", HeaderValue::Int32(3)),
                ("l", HeaderValue::Int64(4)),
                ("y", HeaderValue::Bytes(b"yy")),
                ("z", HeaderValue::String("zz")),
                ("m", HeaderValue::Timestamp(5)),
                ("u", HeaderValue::Uuid(&uuid)),
            ],
            b"{}",
        ),
    ]
    .concat()
}

#[test]
fn every_split_gives_the_same_frames() {
    let stream = small_stream();
    let (whole, end) = frames(&stream, &[], 4096);
    assert_eq!(end, Ok(()));
    assert_eq!(whole.len(), 3);
    for a in 0..=stream.len() {
        for b in a..=stream.len() {
            assert_eq!(
                frames(&stream, &[a, b], 4096),
                (whole.clone(), Ok(())),
                "cut at {a} and {b}"
            );
        }
    }
    let every: Vec<usize> = (1..stream.len()).collect();
    assert_eq!(
        frames(&stream, &every, 4096),
        (whole, Ok(())),
        "byte by byte"
    );
}

#[test]
fn a_stream_that_ends_inside_a_frame_is_cut() {
    let stream = small_stream();
    let first = encode(&[], b"").len();
    for end in 1..stream.len() {
        let (_, r) = frames(&stream[..end], &[end / 2], 4096);
        let at_boundary = end == first || end == first + chunk("eyJ9").len();
        if at_boundary {
            assert_eq!(r, Ok(()), "ends at {end}");
        } else {
            assert!(matches!(r, Err(FrameError::Cut { .. })), "ends at {end}");
        }
    }
    assert_eq!(
        frames(&stream[..first + 5], &[], 4096).1,
        Err(FrameError::Cut { held: 5 })
    );
}

#[test]
fn what_is_held_never_exceeds_the_cap() {
    // Frames of sizes from the smallest to exactly the cap (16 + 184), fed in pieces of many
    // sizes: `frames` checks what is held after every piece.
    let max = 200;
    let stream: Vec<u8> = (0..=max - 16)
        .step_by(23)
        .flat_map(|n| encode(&[], &vec![b'p'; n]))
        .collect();
    for piece in [1, 2, 5, 11, 12, 13, 64, 199, 200, 201, 1000] {
        let cuts: Vec<usize> = (piece..stream.len()).step_by(piece).collect();
        let (got, end) = frames(&stream, &cuts, max);
        assert_eq!(end, Ok(()), "pieces of {piece}");
        assert_eq!(got.len(), 9);
    }
    // A cap below the smallest frame is taken as the smallest frame.
    assert_eq!(frames(&encode(&[], b""), &[3], 0).1, Ok(()));
    assert!(matches!(
        refused(&encode(&[], b"x"), 0),
        FrameError::TooLong { max: 16, .. }
    ));
}

#[test]
fn errors_read_as_what_the_upstream_did() {
    let e: String = FrameError::TooLong { total: 99, max: 16 }.into();
    assert_eq!(
        e,
        "sent an event-stream frame of 99 bytes, longer than 16 bytes"
    );
    let e = FrameError::Header {
        offset: 20,
        fault: HeaderFault::UnknownType(10),
    };
    assert_eq!(
        e.to_string(),
        "sent an event-stream frame with a header of unknown type 10 (at byte 20)"
    );
}

#[path = "eventstream_botocore_tests.rs"]
mod botocore;
