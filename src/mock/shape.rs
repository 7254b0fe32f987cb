//! The benchmark shape of a mock answer: how many deltas, how big, and when each one was sent.
//!
//! A load generator reaches the mock through whatever sits in between (a gateway forwards `x-`
//! headers untouched), so the shape is asked for per request, with headers, not with server
//! flags:
//!
//! - `x-mock-deltas: N` (0 to 1,000,000): a streaming Messages answer has exactly N text deltas
//!   instead of echoing the user's words; `message_delta` reports `output_tokens: N`.
//! - `x-mock-delta-bytes: S` (default 60, at most 1 MiB): each delta's text is exactly S bytes.
//!   It opens with a [`TAG_BYTES`]-byte tag, so a smaller S is raised to 25.
//! - `x-mock-reply-bytes: B` (at most 16 MiB): a non-streaming Messages answer whose text is B
//!   bytes, `output_tokens` ≈ B/4.
//!
//! A shaped stream is built whole before it is sent, like every mock answer, so the mock holds
//! about N × (S + 115) bytes per open stream: hold many streams with few deltas and a long
//! interval rather than many deltas. That product is at most [`MAX_STREAM_BYTES`] (64 MiB),
//! else the request is a 400, so no one request can ask the mock for more memory than it has.
//!
//! The shaped answers ignore `max_tokens`; `x-mock-deltas` only shapes streams and
//! `x-mock-reply-bytes` only non-streaming answers. A value that is not a whole number in range
//! is a 400 naming the header.
//!
//! Each delta's text opens with the tag `#IIIIII@TTTTTTTTTTTTTTTT ` — its 0-based index (6
//! digits) and the time it was written to the socket (16 digits of µs since the UNIX epoch,
//! CLOCK_REALTIME) — then `x` filler, so a client can check order and loss and measure how long
//! each event spent on the way. The time must be the send time, not the build time: answers are
//! built with [`PLACEHOLDER`] where it goes, at the same offset in each delta event of a stream
//! ([`STAMP_OFFSET`] in an Anthropic one; each dialect's stream says where in its own), and the
//! server overwrites it in place ([`stamp`]) right before the write that sends the event.
//!
//! The same headers shape the OpenAI and Gemini answers: their events are bigger, so each
//! dialect checks its own stream against [`MAX_STREAM_BYTES`] too ([`check_stream`]).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::http::ApiError;

pub const DELTAS_HEADER: &str = "x-mock-deltas";
pub const DELTA_BYTES_HEADER: &str = "x-mock-delta-bytes";
pub const REPLY_BYTES_HEADER: &str = "x-mock-reply-bytes";

pub const MAX_DELTAS: u64 = 1_000_000;
pub const MAX_DELTA_BYTES: u64 = 1 << 20;
pub const MAX_REPLY_BYTES: u64 = 16 << 20;
pub const DEFAULT_DELTA_BYTES: usize = 60;

/// Length of the tag that opens each shaped delta's text: `#`, 6 digits, `@`, 16 digits, space.
pub const TAG_BYTES: usize = 25;
/// Digits of the send time in the tag.
pub const STAMP_DIGITS: usize = 16;
/// What stands where the send time goes until the server stamps it: not digits, so a client
/// can tell an event that was never stamped from one that was.
pub const PLACEHOLDER: &[u8; STAMP_DIGITS] = b"????????????????";

/// Everything of a shaped delta event before its text.
const DELTA_HEAD: &str = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"";
const DELTA_TAIL: &str = "\"}}\n\n";
/// Where the send time sits in every shaped delta event: after the head, `#` and the index.
pub const STAMP_OFFSET: usize = DELTA_HEAD.len() + STAMP_IN_TEXT;
/// Bytes of a shaped delta event beside its text.
pub const DELTA_EVENT_BYTES: usize = DELTA_HEAD.len() + DELTA_TAIL.len();
/// The most bytes the delta events of one shaped stream may add up to. A stream is built whole
/// before it is sent, so the product of two headers each in range (a million deltas of a MiB)
/// would otherwise be a terabyte asked of the mock, or of the gateway its built-in mock runs in.
pub const MAX_STREAM_BYTES: u64 = 64 << 20;

/// The shape a request asked for; the default is the mock's usual answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// A stream of exactly this many deltas of this many bytes of text each.
    pub stream: Option<StreamShape>,
    /// A non-streaming answer with this many bytes of text.
    pub reply_bytes: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamShape {
    pub deltas: usize,
    /// Bytes of text in each delta, at least [`TAG_BYTES`].
    pub delta_bytes: usize,
}

impl Shape {
    /// Reads the shape headers through `header` (a case-insensitive lookup).
    pub fn from_headers<'a>(header: impl Fn(&str) -> Option<&'a [u8]>) -> Result<Shape, ApiError> {
        let number = |name: &str, max: u64| -> Result<Option<usize>, ApiError> {
            let Some(value) = header(name) else {
                return Ok(None);
            };
            std::str::from_utf8(value)
                .ok()
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|&n| n <= max)
                .map(|n| Some(n as usize))
                .ok_or_else(|| {
                    ApiError::invalid_request(
                        format!("{name}: expected a whole number from 0 to {max}").into(),
                    )
                })
        };
        let deltas = number(DELTAS_HEADER, MAX_DELTAS)?;
        let delta_bytes = number(DELTA_BYTES_HEADER, MAX_DELTA_BYTES)?;
        let reply_bytes = number(REPLY_BYTES_HEADER, MAX_REPLY_BYTES)?;
        let stream = deltas.map(|deltas| StreamShape {
            deltas,
            delta_bytes: delta_bytes.unwrap_or(DEFAULT_DELTA_BYTES).max(TAG_BYTES),
        });
        if let Some(s) = stream {
            check_stream(s.deltas, s.delta_bytes, DELTA_EVENT_BYTES)?;
        }
        Ok(Shape {
            stream,
            reply_bytes,
        })
    }
}

/// The bytes of the delta events of an Anthropic stream of `deltas` deltas of `delta_bytes`
/// bytes of text (raised to [`TAG_BYTES`]), as [`MAX_STREAM_BYTES`] bounds them.
pub fn stream_bytes(deltas: usize, delta_bytes: usize) -> u64 {
    event_bytes(deltas, delta_bytes, DELTA_EVENT_BYTES)
}

fn event_bytes(deltas: usize, delta_bytes: usize, overhead: usize) -> u64 {
    (deltas as u64).saturating_mul((delta_bytes.max(TAG_BYTES) + overhead) as u64)
}

/// Refuses (a 400 naming the headers) a shaped stream whose delta events, each `overhead` bytes
/// beside its text, would add up to more than [`MAX_STREAM_BYTES`].
pub fn check_stream(deltas: usize, delta_bytes: usize, overhead: usize) -> Result<(), ApiError> {
    let bytes = event_bytes(deltas, delta_bytes, overhead);
    if bytes <= MAX_STREAM_BYTES {
        return Ok(());
    }
    Err(ApiError::invalid_request(
        format!(
            "{DELTAS_HEADER} × ({DELTA_BYTES_HEADER} + {overhead}) must be at most \
             {MAX_STREAM_BYTES} bytes, not {bytes}"
        )
        .into(),
    ))
}

/// The text of delta `index` of a shaped stream: `text_bytes` long (at least [`TAG_BYTES`]),
/// the tag with [`PLACEHOLDER`] for its send time, then `x` filler. Plain ASCII with nothing to
/// escape, so it sits in a JSON string as it is and the stamp's offset is the tag's.
pub fn delta_text(index: usize, text_bytes: usize) -> String {
    let text_bytes = text_bytes.max(TAG_BYTES);
    let mut text = String::with_capacity(text_bytes);
    push_delta_text(&mut text, index, text_bytes);
    text
}

fn push_delta_text(out: &mut String, index: usize, text_bytes: usize) {
    out.push('#');
    let mut digits = [0u8; 6];
    write_digits(&mut digits, index as u64);
    out.push_str(std::str::from_utf8(&digits).expect("ASCII digits"));
    out.push('@');
    out.push_str(std::str::from_utf8(PLACEHOLDER).expect("ASCII"));
    out.push(' ');
    out.extend(std::iter::repeat('x').take(text_bytes - TAG_BYTES));
}

/// Where the send time sits in a delta's text: after `#` and the index.
pub const STAMP_IN_TEXT: usize = 8;

/// Whether `event` holds a placeholder at `offset`: a stamp goes there.
pub fn has_placeholder(event: &[u8], offset: usize) -> bool {
    event.get(offset..offset + STAMP_DIGITS) == Some(&PLACEHOLDER[..])
}

/// Delta event `index` of a shaped stream, with its text `text_bytes` long (at least
/// [`TAG_BYTES`]) and [`PLACEHOLDER`] for its send time.
pub fn delta_event(index: usize, text_bytes: usize) -> String {
    let text_bytes = text_bytes.max(TAG_BYTES);
    let mut event = String::with_capacity(DELTA_HEAD.len() + text_bytes + DELTA_TAIL.len());
    event.push_str(DELTA_HEAD);
    push_delta_text(&mut event, index, text_bytes);
    event.push_str(DELTA_TAIL);
    event
}

/// The text of a shaped non-streaming answer.
pub fn reply_text(bytes: usize) -> String {
    "x".repeat(bytes)
}

/// The time to stamp now: µs since the UNIX epoch (CLOCK_REALTIME, as the client reads it).
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// `micros` as the digits of a send time.
pub fn stamp_digits(micros: u64) -> String {
    let mut digits = [0u8; STAMP_DIGITS];
    write_digits(&mut digits, micros);
    digits.iter().map(|&d| char::from(d)).collect()
}

/// Writes `micros` as the send time at each of `at` (offsets of stamps in `out`).
pub fn stamp(out: &mut [u8], at: &[usize], micros: u64) {
    let mut digits = [0u8; STAMP_DIGITS];
    write_digits(&mut digits, micros);
    for &i in at {
        out[i..i + STAMP_DIGITS].copy_from_slice(&digits);
    }
}

/// Reads the tag at the start of a shaped delta's text: its index and send time (µs). `None`
/// if the text does not open with a well-formed, stamped tag.
pub fn parse_tag(text: &[u8]) -> Option<(u32, u64)> {
    let tag = text.get(..TAG_BYTES)?;
    if tag[0] != b'#' || tag[7] != b'@' || tag[TAG_BYTES - 1] != b' ' {
        return None;
    }
    let index = read_digits(&tag[1..7])?;
    let micros = read_digits(&tag[8..8 + STAMP_DIGITS])?;
    Some((index as u32, micros))
}

/// `n`'s last `out.len()` decimal digits, zero-padded.
fn write_digits(out: &mut [u8], mut n: u64) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

fn read_digits(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(headers: &[(&str, &str)]) -> Result<Shape, ApiError> {
        Shape::from_headers(|name| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_bytes())
        })
    }

    #[test]
    fn headers_choose_the_shape() {
        assert_eq!(shape(&[]).unwrap(), Shape::default());
        let s = shape(&[("x-mock-deltas", "8")]).unwrap();
        assert_eq!(
            s.stream,
            Some(StreamShape {
                deltas: 8,
                delta_bytes: 60
            })
        );
        let s = shape(&[("x-mock-deltas", "0"), ("x-mock-delta-bytes", " 3 ")]).unwrap();
        assert_eq!(
            s.stream,
            Some(StreamShape {
                deltas: 0,
                delta_bytes: TAG_BYTES
            })
        );
        let s = shape(&[
            ("x-mock-reply-bytes", "16777216"),
            ("x-mock-delta-bytes", "99"),
        ]);
        assert_eq!(
            s.unwrap(),
            Shape {
                stream: None,
                reply_bytes: Some(16 << 20)
            }
        );
    }

    #[test]
    fn bad_values_are_a_400_naming_the_header() {
        for (name, value) in [
            ("x-mock-deltas", "1000001"),
            ("x-mock-deltas", "-1"),
            ("x-mock-deltas", "+5"),
            ("x-mock-deltas", ""),
            ("x-mock-deltas", "1e3"),
            ("x-mock-delta-bytes", "1048577"),
            ("x-mock-reply-bytes", "16777217"),
            ("x-mock-reply-bytes", "99999999999999999999999"),
        ] {
            let e = shape(&[(name, value)]).unwrap_err();
            assert_eq!(e.status, 400);
            let body = e.body("req_1");
            assert!(
                body.contains(name) && body.contains("invalid_request_error"),
                "{name}: {value:?} -> {body}"
            );
        }
    }

    #[test]
    fn a_stream_too_big_to_build_is_a_400() {
        // Each bound alone is met; together they would be a terabyte built in memory.
        let e = shape(&[
            ("x-mock-deltas", "1000000"),
            ("x-mock-delta-bytes", "1048576"),
        ])
        .unwrap_err();
        assert_eq!(e.status, 400);
        let body = e.body("req_1");
        assert!(
            body.contains("x-mock-deltas") && body.contains("x-mock-delta-bytes"),
            "{body}"
        );
        let fits = MAX_STREAM_BYTES / (60 + DELTA_EVENT_BYTES as u64);
        let s = shape(&[("x-mock-deltas", &fits.to_string())]).unwrap();
        assert_eq!(s.stream.unwrap().deltas as u64, fits);
        assert!(shape(&[("x-mock-deltas", &(fits + 1).to_string())]).is_err());
        assert_eq!(
            delta_event(0, 60).len(),
            60 + DELTA_EVENT_BYTES,
            "the overhead is the event's"
        );
    }

    #[test]
    fn a_delta_event_has_its_size_index_and_placeholder() {
        for (index, bytes, text_len) in
            [(0, 60, 60), (41, 25, 25), (999_999, 3, 25), (7, 4096, 4096)]
        {
            let event = delta_event(index, bytes);
            let text_at = DELTA_HEAD.len();
            assert_eq!(event.len(), text_at + text_len + DELTA_TAIL.len());
            let text = &event.as_bytes()[text_at..text_at + text_len];
            assert_eq!(text[0], b'#');
            assert_eq!(&text[1..7], format!("{index:06}").as_bytes());
            assert_eq!(
                &event.as_bytes()[STAMP_OFFSET..STAMP_OFFSET + 16],
                PLACEHOLDER
            );
            assert!(text[TAG_BYTES..].iter().all(|&b| b == b'x'));
            // Not stamped yet: no tag a client would accept.
            assert_eq!(parse_tag(text), None);
            let data = event
                .strip_prefix("event: content_block_delta\ndata: ")
                .unwrap();
            let mut data = data.trim_end().as_bytes().to_vec();
            let v = simd_json::to_owned_value(&mut data).unwrap();
            use simd_json::prelude::*;
            assert_eq!(v["delta"]["text"].as_str().unwrap().len(), text_len);
        }
    }

    #[test]
    fn stamps_round_trip_through_the_tag() {
        let mut out = b"--".to_vec();
        let first = out.len();
        out.extend_from_slice(delta_event(3, 40).as_bytes());
        let second = out.len();
        out.extend_from_slice(delta_event(4, 40).as_bytes());
        let micros = 1_761_000_000_123_456;
        stamp(
            &mut out,
            &[first + STAMP_OFFSET, second + STAMP_OFFSET],
            micros,
        );
        for (at, index) in [(first, 3), (second, 4)] {
            let text = &out[at + DELTA_HEAD.len()..];
            assert_eq!(parse_tag(text), Some((index, micros)));
        }
        assert_eq!(parse_tag(b"#000012@0000000000000042 xx"), Some((12, 42)));
        for bad in [
            &b"#000012@0000000000000042"[..],
            b"#00001a@0000000000000042 ",
            b"#000012@000000000000004  ",
            b"x000012@0000000000000042 ",
            b"#000012@0000000000000042x",
        ] {
            assert_eq!(parse_tag(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_delta_text_is_the_text_of_a_delta_event() {
        let event = delta_event(12, 40);
        let text = delta_text(12, 40);
        assert_eq!(&event[DELTA_HEAD.len()..DELTA_HEAD.len() + 40], text);
        assert_eq!(delta_text(0, 3).len(), TAG_BYTES);
        assert!(has_placeholder(event.as_bytes(), STAMP_OFFSET));
        assert!(has_placeholder(text.as_bytes(), STAMP_IN_TEXT));
        assert!(!has_placeholder(text.as_bytes(), STAMP_IN_TEXT + 1));
        assert!(!has_placeholder(b"short", 2));
    }

    #[test]
    fn each_dialect_checks_its_own_event_size() {
        assert!(check_stream(1000, 60, DELTA_EVENT_BYTES).is_ok());
        let fits = MAX_STREAM_BYTES / 300;
        assert!(check_stream(fits as usize, 100, 200).is_ok());
        let e = check_stream(fits as usize + 1, 100, 200).unwrap_err();
        assert!(
            e.message
                .contains("x-mock-deltas × (x-mock-delta-bytes + 200)"),
            "{}",
            e.message
        );
    }

    #[test]
    fn now_is_a_16_digit_time() {
        let now = now_micros();
        assert!((1_000_000_000_000_000..10_000_000_000_000_000).contains(&now));
    }
}
