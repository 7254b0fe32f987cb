//! The faults the mock can be told to have (`x-mock-fault`, or `--fault-for-key`): the error
//! answers, and the ways a stream goes wrong.
//!
//! Each fault means the same in every dialect; only its words differ. An error fault is a
//! dialect-neutral [`ApiError`] here that each dialect writes in its own error shape; a stream
//! fault bends a stream the dialect built (the dialect adds or removes its own events for
//! `big_event` and `no_message_stop`; the cut of `error_in_stream` and `garbage` and the
//! delivery of `drop_mid_stream` and `fragmented` are shared).

use super::answers::Delivery;
use crate::http::{ApiError, ErrorType};

/// Characters of text in the `big_event` fault's one large delta: more than a 16 KiB buffer.
pub const BIG_EVENT_TEXT: usize = 20_000;

/// Every `x-mock-fault` value the mock acts on: the error faults, then the stream-shaping ones.
/// Any other value is ignored, so a tool that picks a fault up front can check it against this.
pub const FAULTS: &[&str] = &[
    "rate_limit",
    "overloaded",
    "server_error",
    "auth",
    "permission",
    "drop_mid_stream",
    "fragmented",
    "big_event",
    "no_message_stop",
    "error_in_stream",
    "garbage",
];

/// The message of the error `error_in_stream` sends inside a stream.
pub const ERROR_IN_STREAM: &str = "mock: error in stream";
/// The data of the line `garbage` sends: not JSON, nor anything a reader may skip.
pub const GARBAGE: &str = "{mock garbage, not JSON";

/// Whether the mock acts on this `x-mock-fault` value.
pub fn is_fault(name: &str) -> bool {
    FAULTS.contains(&name)
}

/// The error an error fault answers with, whatever the request; `None` for other values
/// (including the stream faults, which shape a normal answer).
pub fn error_fault(name: &str) -> Option<ApiError> {
    let (status, kind, message) = match name {
        "rate_limit" => (429, ErrorType::RateLimit, "mock: rate limited"),
        "overloaded" => (529, ErrorType::Overloaded, "mock: overloaded"),
        "server_error" => (500, ErrorType::Api, "mock: internal server error"),
        "auth" => (401, ErrorType::Authentication, "mock: invalid API key"),
        "permission" => (403, ErrorType::Permission, "mock: permission denied"),
        _ => return None,
    };
    let mut e = ApiError::new(status, kind, message.into());
    if status == 429 {
        e.retry_after = Some(1);
    }
    Some(e)
}

/// A way a stream goes wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamFault {
    /// `drop_mid_stream`: the connection closes after a few events.
    Drop,
    /// `fragmented`: the whole answer in writes of 1 to 7 bytes.
    Fragmented,
    /// `big_event`: one text delta of [`BIG_EVENT_TEXT`] characters.
    BigEvent,
    /// `no_message_stop`: the stream ends without saying the answer ended.
    NoEnd,
    /// `error_in_stream`: two text deltas, then the dialect's error object, then the end.
    ErrorInStream,
    /// `garbage`: two text deltas, then a `data:` line that is not JSON, then the end.
    Garbage,
}

impl StreamFault {
    pub fn of(name: Option<&str>) -> Option<StreamFault> {
        Some(match name? {
            "drop_mid_stream" => StreamFault::Drop,
            "fragmented" => StreamFault::Fragmented,
            "big_event" => StreamFault::BigEvent,
            "no_message_stop" => StreamFault::NoEnd,
            "error_in_stream" => StreamFault::ErrorInStream,
            "garbage" => StreamFault::Garbage,
            _ => return None,
        })
    }
}

/// The events that end a stream with `fault` instead of its own end: `error` (the dialect's
/// error event) or the garbage line, after the second of the events at `text_at` (the indexes
/// of the text deltas, in order; with one, after it; with none, after the first event). Other
/// faults leave the events alone. Returns how to deliver them.
pub fn bend(
    events: &mut Vec<String>,
    text_at: impl IntoIterator<Item = usize>,
    fault: Option<StreamFault>,
    error: impl FnOnce() -> String,
) -> Delivery {
    match fault {
        Some(StreamFault::Drop) => Delivery::DropAfter(4.min(events.len().saturating_sub(1))),
        Some(StreamFault::Fragmented) => Delivery::Fragmented,
        Some(f @ (StreamFault::ErrorInStream | StreamFault::Garbage)) => {
            let mut text_at = text_at.into_iter();
            let first = text_at.next();
            let keep = text_at.next().or(first).map_or(1, |i| i + 1);
            events.truncate(keep);
            events.push(match f {
                StreamFault::Garbage => format!("data: {GARBAGE}\n\n"),
                _ => error(),
            });
            Delivery::Whole
        }
        _ => Delivery::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("data: {i}\n\n")).collect()
    }

    #[test]
    fn error_faults_have_their_status() {
        for (name, status) in [
            ("rate_limit", 429),
            ("overloaded", 529),
            ("server_error", 500),
            ("auth", 401),
            ("permission", 403),
        ] {
            let e = error_fault(name).unwrap();
            assert_eq!(e.status, status);
            assert_eq!(e.retry_after.is_some(), status == 429, "{name}");
        }
        for name in FAULTS.iter().skip(5) {
            assert_eq!(error_fault(name), None);
            assert!(StreamFault::of(Some(name)).is_some(), "{name}");
        }
        assert_eq!(StreamFault::of(Some("rate_limit")), None);
        assert_eq!(StreamFault::of(None), None);
    }

    #[test]
    fn the_bad_ends_come_after_the_second_text_delta() {
        let mut list = events(9);
        let d = bend(
            &mut list,
            [2, 3, 4, 5],
            Some(StreamFault::ErrorInStream),
            || "data: error\n\n".into(),
        );
        assert_eq!(d, Delivery::Whole);
        assert_eq!(list[..4], events(4)[..]);
        assert_eq!(list[4], "data: error\n\n");
        assert_eq!(list.len(), 5);

        let mut list = events(9);
        bend(&mut list, [2], Some(StreamFault::Garbage), String::new);
        assert_eq!(list.len(), 4);
        assert_eq!(list[3], format!("data: {GARBAGE}\n\n"));
        assert!(serde_json::from_str::<serde_json::Value>(GARBAGE).is_err());

        let mut list = events(3);
        bend(&mut list, [], Some(StreamFault::Garbage), String::new);
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn delivery_faults_leave_the_events_alone() {
        for (fault, delivery) in [
            (Some(StreamFault::Drop), Delivery::DropAfter(4)),
            (Some(StreamFault::Fragmented), Delivery::Fragmented),
            (Some(StreamFault::BigEvent), Delivery::Whole),
            (None, Delivery::Whole),
        ] {
            let mut list = events(9);
            assert_eq!(bend(&mut list, [2, 3], fault, String::new), delivery);
            assert_eq!(list, events(9));
        }
        let mut list = events(3);
        let d = bend(&mut list, [], Some(StreamFault::Drop), String::new);
        assert_eq!(d, Delivery::DropAfter(2));
    }
}
