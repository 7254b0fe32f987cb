//! Checks one SSE stream as its bytes arrive, however the reads split it.
//!
//! A benchmark that only counts bytes cannot tell a gateway that relays a stream from one that
//! loses, reorders or mangles it. So every event is checked as it completes: it must be exactly
//! `event: NAME\ndata: JSON\n\n` with a JSON `type` equal to NAME, come in the Messages order
//! (the frame `message_start`, `content_block_start`, the deltas, `content_block_stop`,
//! `message_delta`, `message_stop`, each frame event once; pings and errors anywhere before the
//! end), and each delta must carry the mock's tag (see `ringgate::mock::shape`) with the next
//! index and the text size asked for. The tag's send time gives each delta's added delay: its
//! arrival time minus the time the mock wrote it.
//!
//! Pure logic: the caller feeds decoded body bytes with the wall-clock time of the read that
//! brought them, and drains the delays when it wants them.

use std::borrow::Cow;

use memchr::memmem;
use ringgate::mock::shape;
use serde::Deserialize;

/// The frame of a one-block message, in order. A stream's place in it is how many of these
/// have come (or been skipped): deltas belong after the first two and before the third.
const FRAME: [&[u8]; 5] = [
    b"message_start",
    b"content_block_start",
    b"content_block_stop",
    b"message_delta",
    b"message_stop",
];
const STARTED: usize = 1;
const BLOCK_STOPPED: usize = 3;
const STOPPED: usize = FRAME.len();

/// The longest event kept whole: the mock's largest delta and then some. The rest of a longer
/// one is not kept, or a body that never ends an event would be held whole until its timeout.
const MAX_EVENT_BYTES: usize = shape::MAX_DELTA_BYTES as usize + 64 * 1024;

/// The fields of an event's data that are checked.
#[derive(Deserialize)]
struct Data<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

/// What a finished stream came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// `message_stop` arrived.
    pub complete: bool,
    /// Expected deltas that never arrived valid, and frame events skipped (a later one came
    /// first; those of a cut stream are not counted, it is incomplete).
    pub lost: u64,
}

/// The state of one stream's check; reused from stream to stream (see [`StreamCheck::reset`]).
#[derive(Debug)]
pub struct StreamCheck {
    expected_deltas: u64,
    text_bytes: usize,
    /// The start of an event whose end has not arrived yet.
    pending: Vec<u8>,
    /// Frame events come or skipped (see [`FRAME`]).
    stage: usize,
    /// Frame events skipped.
    skipped: u64,
    /// The pending event is too long to keep, and already counted (see [`Self::hold`]).
    overlong: bool,
    next_index: u64,
    /// Complete events received, valid or not.
    pub events: u64,
    /// Deltas received valid: well-formed, tagged, in order.
    pub deltas: u64,
    /// Events malformed or out of order.
    pub garbled: u64,
    /// In-band `event: error`s.
    pub error_events: u64,
    /// Added delay of each valid delta, µs, until drained.
    pub delays: Vec<u64>,
}

impl StreamCheck {
    /// A check for streams of `expected_deltas` deltas of `text_bytes` bytes of text each.
    pub fn new(expected_deltas: u64, text_bytes: usize) -> StreamCheck {
        StreamCheck {
            expected_deltas,
            text_bytes: text_bytes.max(shape::TAG_BYTES),
            pending: Vec::new(),
            stage: 0,
            skipped: 0,
            overlong: false,
            next_index: 0,
            events: 0,
            deltas: 0,
            garbled: 0,
            error_events: 0,
            delays: Vec::new(),
        }
    }

    pub fn expected_deltas(&self) -> u64 {
        self.expected_deltas
    }

    /// Ready for the next stream, keeping the buffers.
    pub fn reset(&mut self) {
        self.pending.clear();
        self.delays.clear();
        self.stage = 0;
        self.skipped = 0;
        self.overlong = false;
        self.next_index = 0;
        self.events = 0;
        self.deltas = 0;
        self.garbled = 0;
        self.error_events = 0;
    }

    /// Takes the next bytes of the stream, which one read brought at `arrival_us` (µs since
    /// the UNIX epoch).
    pub fn feed(&mut self, mut data: &[u8], arrival_us: u64) {
        if !self.pending.is_empty() {
            // The end of the pending event may straddle the two pieces.
            let end = if self.pending.ends_with(b"\n") && data.first() == Some(&b'\n') {
                Some(1)
            } else {
                memmem::find(data, b"\n\n").map(|i| i + 2)
            };
            let Some(end) = end else {
                self.hold(data);
                return;
            };
            self.pending.extend_from_slice(&data[..end]);
            let event = std::mem::take(&mut self.pending);
            if !std::mem::take(&mut self.overlong) {
                self.event(&event, arrival_us);
            }
            self.pending = event;
            self.pending.clear();
            data = &data[end..];
        }
        while let Some(i) = memmem::find(data, b"\n\n") {
            self.event(&data[..i + 2], arrival_us);
            data = &data[i + 2..];
        }
        self.hold(data);
    }

    /// Keeps the start of an event until its end comes. An event longer than
    /// [`MAX_EVENT_BYTES`] is counted (garbled) at once and not kept: only its last byte stays,
    /// so that its end is still found however the reads split it.
    fn hold(&mut self, data: &[u8]) {
        self.pending.extend_from_slice(data);
        if self.pending.len() > MAX_EVENT_BYTES {
            if !self.overlong {
                self.overlong = true;
                self.events += 1;
                self.garbled += 1;
            }
            let last = self.pending[self.pending.len() - 1];
            self.pending.clear();
            self.pending.push(last);
        }
    }

    /// Ends the stream: what it came to. Bytes of an event that never ended count as a garbled
    /// event.
    pub fn finish(&mut self) -> Verdict {
        // An overlong event was counted when it overflowed.
        if !self.pending.is_empty() && !self.overlong {
            self.garbled += 1;
        }
        self.pending.clear();
        self.overlong = false;
        Verdict {
            complete: self.stage == STOPPED,
            lost: self.expected_deltas.saturating_sub(self.deltas) + self.skipped,
        }
    }

    /// One complete event, `\n\n` included.
    fn event(&mut self, event: &[u8], arrival_us: u64) {
        if is_comment(event) {
            // Legal SSE that clients ignore, such as a gateway's `: keep-alive`.
            return;
        }
        self.events += 1;
        if !self.valid(event, arrival_us) {
            self.garbled += 1;
        }
    }

    fn valid(&mut self, event: &[u8], arrival_us: u64) -> bool {
        let Some((name, data)) = split_event(event) else {
            return false;
        };
        let Ok(data) = serde_json::from_slice::<Data<'_>>(data) else {
            return false;
        };
        if data.kind.as_bytes() != name {
            return false;
        }
        let stage = self.stage;
        let in_message = (STARTED..STOPPED).contains(&stage);
        if let Some(at) = FRAME.iter().position(|&f| f == name) {
            // Each in its turn, once; the first opens the message, so none can be skipped.
            if at < stage || (at > 0 && !in_message) {
                return false;
            }
            self.skipped += (at - stage) as u64;
            self.stage = at + 1;
            return true;
        }
        match name {
            b"error" => {
                self.error_events += 1;
                true
            }
            b"ping" => stage != STOPPED,
            b"content_block_delta" if in_message && stage < BLOCK_STOPPED => {
                let text = data.delta.and_then(|d| d.text);
                self.delta(text.as_deref().unwrap_or("").as_bytes(), arrival_us)
            }
            b"content_block_delta" => false,
            _ => in_message,
        }
    }

    fn delta(&mut self, text: &[u8], arrival_us: u64) -> bool {
        let Some((index, sent_us)) = shape::parse_tag(text) else {
            return false;
        };
        let index = u64::from(index);
        // A gap is loss (counted at the end); going back is disorder.
        if text.len() != self.text_bytes || index < self.next_index {
            return false;
        }
        self.next_index = index + 1;
        self.deltas += 1;
        self.delays.push(arrival_us.saturating_sub(sent_us));
        true
    }
}

/// Whether a block (`\n\n` included) is only comment lines, each starting with `:`.
fn is_comment(event: &[u8]) -> bool {
    let lines = &event[..event.len() - 2];
    lines
        .split(|&b| b == b'\n')
        .all(|l| l.first() == Some(&b':'))
}

/// `event: NAME\ndata: DATA\n\n` → (NAME, DATA), with one data line and nothing else.
fn split_event(event: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = event.strip_prefix(b"event: ")?.strip_suffix(b"\n\n")?;
    let newline = memchr::memchr(b'\n', rest)?;
    let (name, data) = (
        &rest[..newline],
        rest[newline + 1..].strip_prefix(b"data: ")?,
    );
    (!name.is_empty() && memchr::memchr(b'\n', data).is_none()).then_some((name, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stamped delta event as the mock sends it.
    fn delta(index: usize, bytes: usize, sent_us: u64) -> String {
        let mut e = shape::delta_event(index, bytes).into_bytes();
        shape::stamp(&mut e, &[shape::STAMP_OFFSET], sent_us);
        String::from_utf8(e).unwrap()
    }

    fn ev(name: &str, data: &str) -> String {
        format!("event: {name}\ndata: {data}\n\n")
    }

    /// A whole valid stream of `n` deltas of 40 bytes sent at 1000 + i.
    fn stream(n: usize) -> String {
        let mut s = ev(
            "message_start",
            r#"{"type":"message_start","message":{"id":"m"}}"#,
        );
        s += &ev(
            "content_block_start",
            r#"{"type":"content_block_start","index":0}"#,
        );
        s += &ev("ping", r#"{"type": "ping"}"#);
        for i in 0..n {
            s += &delta(i, 40, 1000 + i as u64);
        }
        s += &ev(
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        );
        s += &ev(
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}"#,
        );
        s += &ev("message_stop", r#"{"type":"message_stop"}"#);
        s
    }

    #[test]
    fn a_whole_stream_is_valid_however_it_is_split() {
        let whole = stream(5);
        for piece in [whole.len(), 1, 2, 3, 7, 64, 100] {
            let mut c = StreamCheck::new(5, 40);
            for chunk in whole.as_bytes().chunks(piece) {
                c.feed(chunk, 2000);
            }
            assert_eq!(
                (c.events, c.deltas, c.garbled, c.error_events),
                (11, 5, 0, 0),
                "{piece}"
            );
            assert_eq!(c.delays, [1000, 999, 998, 997, 996], "{piece}");
            assert_eq!(
                c.finish(),
                Verdict {
                    complete: true,
                    lost: 0
                }
            );
        }
    }

    #[test]
    fn delays_use_the_arrival_of_the_read_that_completed_the_event() {
        let s = delta(0, 40, 5_000);
        let mut c = StreamCheck::new(1, 40);
        c.feed(
            &ev("message_start", r#"{"type":"message_start"}"#).into_bytes(),
            1,
        );
        c.feed(&s.as_bytes()[..30], 6_000);
        c.feed(&s.as_bytes()[30..], 7_500);
        // Sent in the future (clock skew): no delay rather than a negative one.
        c.feed(delta(1, 40, 9_000).as_bytes(), 8_000);
        assert_eq!(c.delays, [2_500, 0]);
    }

    #[test]
    fn loss_disorder_and_damage_are_told_apart() {
        let mut c = StreamCheck::new(6, 40);
        let mut s = ev("message_start", r#"{"type":"message_start"}"#);
        for i in [0, 1, 3, 2, 4] {
            s += &delta(i, 40, 1);
        }
        // Wrong size, unstamped, a name that is not its type, bad JSON, not SSE at all.
        s += &delta(5, 41, 1);
        s += &shape::delta_event(5, 40);
        s += &ev("ping", r#"{"type":"pong"}"#);
        s += &ev("ping", r#"{"type":"ping""#);
        s += "data: {\"type\":\"ping\"}\n\n";
        s += &ev("message_stop", r#"{"type":"message_stop"}"#);
        s += &ev("ping", r#"{"type":"ping"}"#);
        c.feed(s.as_bytes(), 10);
        // 0, 1, 3, 4 are valid (2 came back after 3: disorder; 2 and 5 are then lost).
        assert_eq!(c.deltas, 4);
        assert_eq!(c.garbled, 1 + 5 + 1);
        assert_eq!(c.events, 1 + 5 + 5 + 1 + 1);
        assert_eq!(
            c.finish(),
            Verdict {
                complete: true,
                // And the frame's content_block_start, content_block_stop and message_delta,
                // which message_stop skipped.
                lost: 2 + 3
            }
        );
    }

    #[test]
    fn the_frame_of_the_message_is_checked_too() {
        // Without its message_delta (the usage a gateway tallies): one event lost.
        let whole = stream(2);
        let message_delta = whole.find("event: message_delta").unwrap();
        let message_stop = whole.find("event: message_stop").unwrap();
        let without = whole[..message_delta].to_string() + &whole[message_stop..];
        let mut c = StreamCheck::new(2, 40);
        c.feed(without.as_bytes(), 1);
        assert_eq!((c.deltas, c.garbled), (2, 0));
        assert_eq!(
            c.finish(),
            Verdict {
                complete: true,
                lost: 1
            }
        );
        // A block that ends twice, or a delta after its block ended: out of order.
        let stop = ev(
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        );
        let at = whole.find("event: content_block_stop").unwrap();
        for extra in [stop.clone(), delta(2, 40, 1)] {
            let twice = whole[..message_delta].to_string() + &extra + &whole[message_delta..];
            let mut c = StreamCheck::new(2, 40);
            c.feed(twice.as_bytes(), 1);
            assert_eq!((c.deltas, c.garbled), (2, 1), "{}", &twice[at..]);
            assert_eq!(c.finish().lost, 0);
        }
    }

    #[test]
    fn an_event_that_never_ends_is_dropped_not_kept() {
        let mut c = StreamCheck::new(1, 40);
        c.feed(
            b"event: message_start\ndata: {\"type\":\"message_start\"}\n\n",
            1,
        );
        let junk = vec![b'x'; 64 * 1024];
        for _ in 0..64 {
            c.feed(&junk, 1);
        }
        // 4 MiB without an end: counted once, not held.
        assert!(
            c.pending.capacity() <= 2 * MAX_EVENT_BYTES,
            "{}",
            c.pending.len()
        );
        assert_eq!((c.events, c.garbled), (2, 1));
        // Its end comes, and the stream goes on.
        c.feed(b"xx\n", 1);
        c.feed(format!("\n{}", delta(0, 40, 1)).as_bytes(), 1);
        assert_eq!((c.events, c.garbled, c.deltas), (3, 1, 1));
        assert_eq!(c.finish().lost, 0);
    }

    #[test]
    fn a_cut_stream_is_incomplete_with_its_partial_event_garbled() {
        let whole = stream(4);
        let cut = &whole.as_bytes()[..whole.find("#000002").unwrap()];
        let mut c = StreamCheck::new(4, 40);
        c.feed(cut, 1);
        assert_eq!((c.deltas, c.garbled), (2, 0));
        assert_eq!(
            c.finish(),
            Verdict {
                complete: false,
                lost: 2
            }
        );
        assert_eq!(c.garbled, 1);
        c.reset();
        assert_eq!((c.events, c.deltas, c.garbled), (0, 0, 0));
    }

    #[test]
    fn comments_between_events_are_neither_events_nor_damage() {
        let full = stream(3);
        let at = full.find("event: content_block_delta").unwrap();
        let with_comment = format!("{}: keep-alive\n\n{}", &full[..at], &full[at..]);
        let mut c = StreamCheck::new(3, 40);
        c.feed(with_comment.as_bytes(), 2000);
        assert_eq!((c.events, c.deltas, c.garbled), (9, 3, 0));
        assert_eq!(
            c.finish(),
            Verdict {
                complete: true,
                lost: 0
            }
        );
    }

    #[test]
    fn error_events_are_counted_and_order_is_kept() {
        let mut c = StreamCheck::new(2, 40);
        let mut s = delta(0, 40, 1);
        s += &ev("message_start", r#"{"type":"message_start"}"#);
        s += &ev("message_start", r#"{"type":"message_start"}"#);
        s += &ev(
            "error",
            r#"{"type":"error","error":{"type":"api_error","message":"upstream reset"}}"#,
        );
        c.feed(s.as_bytes(), 1);
        // A delta before message_start, and a second message_start, are out of order.
        assert_eq!(
            (c.events, c.garbled, c.error_events, c.deltas),
            (4, 2, 1, 0)
        );
        assert_eq!(
            c.finish(),
            Verdict {
                complete: false,
                lost: 2
            }
        );
    }
}
