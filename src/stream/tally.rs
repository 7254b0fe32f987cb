//! What a relayed event stream said about itself: how many events, the token usage, and whether
//! it ended properly.
//!
//! Only the event name is read from most events. The two that carry usage, `message_start` and
//! `message_delta` (once each per message, with cumulative counts), are parsed; the deltas that
//! make up the bulk of a stream are never copied or parsed. `message_stop` tells a finished
//! stream from one the upstream cut short.

use serde::Deserialize;

/// Tokens of one message, as the upstream reported them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub events: u64,
    pub usage: Usage,
    /// `message_stop` was seen.
    pub stopped: bool,
    /// The upstream sent an `event: error` of its own.
    pub upstream_error: bool,
}

/// The usage fields a `message_delta` may carry; absent ones keep their earlier value.
#[derive(Deserialize)]
struct UsageUpdate {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct MessageStart {
    message: StartedMessage,
}

#[derive(Deserialize)]
struct StartedMessage {
    #[serde(default)]
    usage: Usage,
}

#[derive(Deserialize)]
struct MessageDelta {
    usage: Option<UsageUpdate>,
}

impl Tally {
    /// Takes note of one event (or, for an event too large for the relay buffer, its first part).
    pub fn observe(&mut self, event: &[u8]) {
        self.events += 1;
        match field(event, b"event") {
            Some(b"message_start") => {
                if let Some(start) = parse::<MessageStart>(event) {
                    self.usage = start.message.usage;
                }
            }
            Some(b"message_delta") => {
                if let Some(u) = parse::<MessageDelta>(event).and_then(|d| d.usage) {
                    let usage = &mut self.usage;
                    usage.input_tokens = u.input_tokens.unwrap_or(usage.input_tokens);
                    usage.output_tokens = u.output_tokens.unwrap_or(usage.output_tokens);
                    usage.cache_creation_input_tokens = u
                        .cache_creation_input_tokens
                        .unwrap_or(usage.cache_creation_input_tokens);
                    usage.cache_read_input_tokens = u
                        .cache_read_input_tokens
                        .unwrap_or(usage.cache_read_input_tokens);
                }
            }
            Some(b"message_stop") => self.stopped = true,
            Some(b"error") => self.upstream_error = true,
            _ => {}
        }
    }

    /// Whether the stream ended the way a complete answer does: with `message_stop`, or with the
    /// upstream's own error event.
    pub fn finished(&self) -> bool {
        self.stopped || self.upstream_error
    }
}

/// The value of the first line of `event` that sets `name` (`name: value`, one optional space).
fn field<'a>(event: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    event.split(|&b| b == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let value = line.strip_prefix(name)?.strip_prefix(b":")?;
        Some(value.strip_prefix(b" ").unwrap_or(value))
    })
}

/// Parses the `data` of an event (a copy: the JSON parser works in place).
fn parse<T: for<'de> Deserialize<'de>>(event: &[u8]) -> Option<T> {
    let mut data = field(event, b"data")?.to_vec();
    parse_json(&mut data)
}

thread_local! {
    /// The parser's working memory, kept: allocating it anew cost more than the parse of the
    /// small documents read here.
    static BUFFERS: std::cell::RefCell<simd_json::Buffers> = std::cell::RefCell::default();
}

/// Parses a small JSON document in place (it is overwritten).
pub fn parse_json<T: for<'de> Deserialize<'de>>(json: &mut [u8]) -> Option<T> {
    BUFFERS.with_borrow_mut(|b| simd_json::serde::from_slice_with_buffers(json, b).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &[u8] = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-haiku-4-5\",\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":7,\"cache_read_input_tokens\":100,\"output_tokens\":1}}}\n\n";

    #[test]
    fn usage_comes_from_start_and_final_delta() {
        let mut t = Tally::default();
        t.observe(START);
        t.observe(b"event: ping\ndata: {\"type\": \"ping\"}\n\n");
        t.observe(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\\\"usage\\\"\"}}\n\n");
        t.observe(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n");
        assert!(!t.finished());
        t.observe(b"event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n");
        assert_eq!(
            t,
            Tally {
                events: 5,
                usage: Usage {
                    input_tokens: 25,
                    output_tokens: 15,
                    cache_creation_input_tokens: 7,
                    cache_read_input_tokens: 100,
                },
                stopped: true,
                upstream_error: false,
            }
        );
    }

    #[test]
    fn a_delta_with_cumulative_input_counts_replaces_them() {
        let mut t = Tally::default();
        t.observe(START);
        t.observe(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"input_tokens\":30,\"output_tokens\":2,\"cache_read_input_tokens\":0}}\n\n");
        assert_eq!(t.usage.input_tokens, 30);
        assert_eq!(t.usage.cache_read_input_tokens, 0);
        assert_eq!(t.usage.cache_creation_input_tokens, 7);
    }

    #[test]
    fn an_upstream_error_event_finishes_the_stream() {
        let mut t = Tally::default();
        t.observe(b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
        assert!(t.finished() && t.upstream_error && !t.stopped);
    }

    #[test]
    fn odd_events_count_but_change_nothing() {
        let mut t = Tally::default();
        for e in [
            &b"data: only data\n\n"[..],
            b"event:message_start\ndata: not json\n\n",
            b"event: message_delta\n\n",
            b": comment\n\n",
            b"eventx: message_stop\n\n",
        ] {
            t.observe(e);
        }
        assert_eq!(t.events, 5);
        assert_eq!(t.usage, Usage::default());
        assert!(!t.finished());
    }
}
