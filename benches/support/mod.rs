//! Inputs shared by the stream benches: one realistic upstream event stream, as the Anthropic API
//! sends it for a short streamed answer, in its decoded form (what the client gets) and chunked
//! (what the upstream puts on the wire), and the reads it arrives in.
//!
//! Every bench that includes this module uses only part of it.
#![allow(dead_code)]

use std::ops::Range;

use ringgate::http::chunked::{push_chunk, LAST_CHUNK};

/// `content_block_delta` events in the stream.
pub const DELTAS: usize = 64;
/// Bytes of text each delta carries (before JSON escaping).
pub const DELTA_TEXT: usize = 60;
/// The relay's buffer size (the `stream.buffer_bytes` default), and so its largest read.
pub const READ: usize = 16 * 1024;

const WORDS: [&str; 16] = [
    "the",
    "submission",
    "queue",
    "holds",
    "entries",
    "that",
    "describe",
    "each",
    "operation",
    "while",
    "completions",
    "arrive",
    "in",
    "order",
    "of",
    "finishing",
];

/// The text of delta `i`: `DELTA_TEXT` bytes of words, with a JSON-escaped newline now and then.
fn delta_text(i: usize) -> String {
    let mut text = String::with_capacity(DELTA_TEXT + 2);
    let mut w = i;
    while text.len() < DELTA_TEXT {
        text.push_str(WORDS[w % WORDS.len()]);
        text.push(' ');
        w = w * 7 + 3;
    }
    text.truncate(DELTA_TEXT);
    if i % 8 == 7 {
        text.replace_range(DELTA_TEXT - 2.., "\\n");
    }
    text
}

/// The events of one streamed answer, each ending with its blank line: `message_start`,
/// `content_block_start`, `ping`, `DELTAS` text deltas, `content_block_stop`, `message_delta`
/// and `message_stop`.
pub fn sse_events() -> Vec<Vec<u8>> {
    let mut events = vec![
        concat!(
            "event: message_start\n",
            r#"data: {"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":2679,"cache_creation_input_tokens":0,"cache_read_input_tokens":18240,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":3,"service_tier":"standard"}}}"#,
            "\n\n"
        )
        .to_string(),
        concat!(
            "event: content_block_start\n",
            r#"data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            "\n\n"
        )
        .to_string(),
        "event: ping\ndata: {\"type\": \"ping\"}\n\n".to_string(),
    ];
    events.extend((0..DELTAS).map(|i| {
        format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{}\"}}}}\n\n",
            delta_text(i)
        )
    }));
    events.extend(
        [
            concat!(
                "event: content_block_stop\n",
                r#"data: {"type":"content_block_stop","index":0}"#,
                "\n\n"
            ),
            concat!(
                "event: message_delta\n",
                r#"data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":987}}"#,
                "\n\n"
            ),
            concat!(
                "event: message_stop\n",
                r#"data: {"type":"message_stop"}"#,
                "\n\n"
            ),
        ]
        .map(String::from),
    );
    events.into_iter().map(String::into_bytes).collect()
}

/// The events back to back, as the client receives them.
pub fn decoded(events: &[Vec<u8>]) -> Vec<u8> {
    events.concat()
}

/// The events chunked one per chunk, with the last chunk, as the upstream sends them.
pub fn chunked(events: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        push_chunk(&mut out, e);
    }
    out.extend_from_slice(LAST_CHUNK);
    out
}

/// A body of `len` bytes split into reads of at most `size` bytes.
pub fn fixed_reads(len: usize, size: usize) -> Vec<Range<usize>> {
    (0..len)
        .step_by(size)
        .map(|at| at..len.min(at + size))
        .collect()
}

/// Reads that follow the given piece lengths, one piece each.
pub fn reads_of(lengths: impl IntoIterator<Item = usize>) -> Vec<Range<usize>> {
    let mut at = 0;
    lengths
        .into_iter()
        .map(|n| {
            at += n;
            at - n..at
        })
        .collect()
}
