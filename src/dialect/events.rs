//! Writing an Anthropic event stream that obeys the grammar, whatever order a decoder calls in.
//!
//! The SDKs' accumulators and Claude Code trust the shape of a Messages stream: `message_start`
//! first and once; each content block opened by `content_block_start` before its deltas, filled
//! only with deltas of its own type, closed once by `content_block_stop`; one block open at a
//! time, indices from 0 in order; then `message_delta` with the stop reason and the usage, and
//! `message_stop` last. Or, once something went wrong, one `event: error`, and nothing after it.
//! A delta sent to a closed block, a block index that skips, a second `message_start`: each
//! breaks a client.
//!
//! [`EventWriter`] owns those rules. A decoder says what the upstream gave (some text, the start
//! of a tool call, the end), and the writer opens, closes and numbers blocks so that its output
//! is always a valid stream, or a valid stream so far. Strings arrive as JSON string literals
//! ([`Lit`], quotes included, escapes as the upstream wrote them) and are copied, not decoded and
//! encoded again: a text delta costs a few `memcpy`s.

use crate::json::write::push_str_bytes;
use crate::stream::tally::Usage;

/// A JSON string literal, quotes included, valid as it stands (escapes intact).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lit<'a>(pub &'a [u8]);

impl Lit<'_> {
    /// The empty string, `""`, which providers interleave with real fragments.
    pub fn is_empty(&self) -> bool {
        self.0.len() <= 2
    }
}

/// A raw JSON value as a string literal, if it is a string.
pub fn lit(raw: Option<&serde_json::value::RawValue>) -> Option<Lit<'_>> {
    raw.map(|r| r.get().as_bytes())
        .filter(|b| b.first() == Some(&b'"'))
        .map(Lit)
}

/// The kinds of content block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    Text,
    Thinking,
    ToolUse,
}

/// What `message_start` says of the message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageHead {
    pub id: String,
    /// The model as the client named it (aliases resolved).
    pub model: String,
    /// An estimate until the upstream reports the real count at the end: clients size their
    /// context from it, and a 0 there makes Claude Code's meter read empty.
    pub input_tokens: u64,
}

/// The stop of a message: its reason and, for `stop_sequence`, which one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stop {
    pub reason: &'static str,
    pub sequence: Option<String>,
}

impl Stop {
    pub fn new(reason: &'static str) -> Stop {
        Stop {
            reason,
            sequence: None,
        }
    }
}

#[derive(Debug)]
pub struct EventWriter {
    head: MessageHead,
    started: bool,
    ended: bool,
    open: Option<Block>,
    /// The index of the open block, or of the next one.
    index: u32,
}

impl EventWriter {
    pub fn new(head: MessageHead) -> EventWriter {
        EventWriter {
            head,
            started: false,
            ended: false,
            open: None,
            index: 0,
        }
    }

    pub fn is_started(&self) -> bool {
        self.started
    }

    /// `message_stop` or an error was written: nothing more will be.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    pub fn open_block(&self) -> Option<Block> {
        self.open
    }

    /// Writes `message_start`, unless it is out already.
    pub fn start(&mut self, out: &mut Vec<u8>) {
        if self.started || self.ended {
            return;
        }
        self.started = true;
        out.extend_from_slice(
            b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":",
        );
        push_str_bytes(out, &self.head.id);
        out.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
        push_str_bytes(out, &self.head.model);
        out.extend_from_slice(b",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":");
        push_u64(out, self.head.input_tokens);
        out.extend_from_slice(b",\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":0}}}\n\n");
    }

    /// Text: continues an open text block, or opens one. Empty fragments are dropped.
    pub fn text(&mut self, out: &mut Vec<u8>, text: Lit<'_>) {
        if !text.is_empty() && self.ensure(out, Block::Text) {
            self.delta(out, b"text_delta\",\"text\":", text);
        }
    }

    /// Reasoning text: continues an open thinking block, or opens one.
    pub fn thinking(&mut self, out: &mut Vec<u8>, text: Lit<'_>) {
        if !text.is_empty() && self.ensure(out, Block::Thinking) {
            self.delta(out, b"thinking_delta\",\"thinking\":", text);
        }
    }

    /// A thinking block's signature: to the open thinking block, or to an empty one of its own,
    /// so that it comes back with the conversation.
    pub fn signature(&mut self, out: &mut Vec<u8>, signature: Lit<'_>) {
        if !signature.is_empty() && self.ensure(out, Block::Thinking) {
            self.delta(out, b"signature_delta\",\"signature\":", signature);
            self.close(out);
        }
    }

    /// Opens a `tool_use` block (closing any open block).
    pub fn tool_use(&mut self, out: &mut Vec<u8>, id: &str, name: &str) {
        if self.ended {
            return;
        }
        self.start(out);
        self.close(out);
        self.open_with(out, b"{\"type\":\"tool_use\",\"id\":", |out| {
            push_str_bytes(out, id);
            out.extend_from_slice(b",\"name\":");
            push_str_bytes(out, name);
            out.extend_from_slice(b",\"input\":{}}");
        });
        self.open = Some(Block::ToolUse);
    }

    /// A fragment of the open tool call's input, as JSON text in a string literal.
    pub fn tool_input(&mut self, out: &mut Vec<u8>, json: Lit<'_>) {
        if !json.is_empty() && self.open == Some(Block::ToolUse) {
            self.delta(out, b"input_json_delta\",\"partial_json\":", json);
        }
    }

    /// Closes the open block, if any.
    pub fn close(&mut self, out: &mut Vec<u8>) {
        if self.open.take().is_some() {
            out.extend_from_slice(
                b"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":",
            );
            push_u64(out, u64::from(self.index));
            out.extend_from_slice(b"}\n\n");
            self.index += 1;
        }
    }

    /// Ends the message: closes the open block, then `message_delta` and `message_stop`.
    pub fn finish(&mut self, out: &mut Vec<u8>, stop: &Stop, usage: &Usage) {
        if self.ended {
            return;
        }
        self.start(out);
        self.close(out);
        out.extend_from_slice(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"");
        out.extend_from_slice(stop.reason.as_bytes());
        out.extend_from_slice(b"\",\"stop_sequence\":");
        match &stop.sequence {
            Some(s) => push_str_bytes(out, s),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b"},\"usage\":");
        push_usage(out, usage);
        out.extend_from_slice(b"}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        self.ended = true;
    }

    /// Ends the stream with an error event of the API's shape (`kind` is an Anthropic error
    /// type). A block left open stays open: the client drops the message anyway.
    pub fn error(&mut self, out: &mut Vec<u8>, kind: &str, message: &str) {
        if self.ended {
            return;
        }
        out.extend_from_slice(b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"message\":");
        push_str_bytes(out, message);
        out.extend_from_slice(b"}}\n\n");
        self.ended = true;
    }

    /// Makes sure a block of `kind` is open (starting the message, closing another kind);
    /// `false` once the stream has ended.
    fn ensure(&mut self, out: &mut Vec<u8>, kind: Block) -> bool {
        if self.ended {
            return false;
        }
        if self.open == Some(kind) {
            return true;
        }
        self.start(out);
        self.close(out);
        let block: &[u8] = match kind {
            Block::Text => b"{\"type\":\"text\",\"text\":\"\"}",
            Block::Thinking => b"{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}",
            Block::ToolUse => unreachable!("tool_use blocks are opened by tool_use()"),
        };
        self.open_with(out, b"", |out| out.extend_from_slice(block));
        self.open = Some(kind);
        true
    }

    fn open_with(&mut self, out: &mut Vec<u8>, prefix: &[u8], rest: impl FnOnce(&mut Vec<u8>)) {
        out.extend_from_slice(
            b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":",
        );
        push_u64(out, u64::from(self.index));
        out.extend_from_slice(b",\"content_block\":");
        out.extend_from_slice(prefix);
        rest(out);
        out.extend_from_slice(b"}\n\n");
    }

    fn delta(&mut self, out: &mut Vec<u8>, kind_and_key: &[u8], value: Lit<'_>) {
        out.extend_from_slice(
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
        );
        push_u64(out, u64::from(self.index));
        out.extend_from_slice(b",\"delta\":{\"type\":\"");
        out.extend_from_slice(kind_and_key);
        out.extend_from_slice(value.0);
        out.extend_from_slice(b"}}\n\n");
    }
}

/// A usage object with all four counts.
pub fn push_usage(out: &mut Vec<u8>, usage: &Usage) {
    out.extend_from_slice(b"{\"input_tokens\":");
    push_u64(out, usage.input_tokens);
    out.extend_from_slice(b",\"cache_creation_input_tokens\":");
    push_u64(out, usage.cache_creation_input_tokens);
    out.extend_from_slice(b",\"cache_read_input_tokens\":");
    push_u64(out, usage.cache_read_input_tokens);
    out.extend_from_slice(b",\"output_tokens\":");
    push_u64(out, usage.output_tokens);
    out.push(b'}');
}

pub fn push_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> EventWriter {
        EventWriter::new(MessageHead {
            id: "msg_1".into(),
            model: "m".into(),
            input_tokens: 7,
        })
    }

    /// The event names and the index each names, if any.
    fn names(out: &[u8]) -> Vec<String> {
        String::from_utf8(out.to_vec())
            .unwrap()
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let name = e.lines().next().unwrap().trim_start_matches("event: ");
                match e.find("\"index\":") {
                    Some(i) => format!("{name}#{}", &e[i + 8..i + 9]),
                    None => name.to_string(),
                }
            })
            .collect()
    }

    #[test]
    fn blocks_open_and_close_in_order_whatever_the_calls() {
        let mut w = writer();
        let mut out = Vec::new();
        w.text(&mut out, Lit(b"\"\""));
        assert!(out.is_empty(), "an empty fragment starts nothing");
        w.thinking(&mut out, Lit(b"\"hm\""));
        w.text(&mut out, Lit(b"\"Hi \\\"you\\\"\""));
        w.text(&mut out, Lit(b"\"!\""));
        w.tool_use(&mut out, "toolu_1", "get");
        w.tool_input(&mut out, Lit(b"\"{\\\"a\\\":1}\""));
        w.signature(&mut out, Lit(b"\"sig\""));
        w.finish(&mut out, &Stop::new("tool_use"), &Usage::default());
        w.text(&mut out, Lit(b"\"late\""));
        w.finish(&mut out, &Stop::new("end_turn"), &Usage::default());
        assert_eq!(
            names(&out),
            [
                "message_start",
                "content_block_start#0",
                "content_block_delta#0",
                "content_block_stop#0",
                "content_block_start#1",
                "content_block_delta#1",
                "content_block_delta#1",
                "content_block_stop#1",
                "content_block_start#2",
                "content_block_delta#2",
                "content_block_stop#2",
                "content_block_start#3",
                "content_block_delta#3",
                "content_block_stop#3",
                "message_delta",
                "message_stop",
            ]
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi \\\"you\\\"\"}"));
        assert!(text.contains("\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get\",\"input\":{}}"));
        assert!(text.contains("\"delta\":{\"type\":\"signature_delta\",\"signature\":\"sig\"}"));
        assert!(text.contains("\"stop_reason\":\"tool_use\",\"stop_sequence\":null}"));
    }

    #[test]
    fn every_event_is_valid_json() {
        let mut w = writer();
        let mut out = Vec::new();
        w.thinking(&mut out, Lit(b"\"a\\nb\""));
        w.text(&mut out, Lit(b"\"c\""));
        w.tool_use(&mut out, "id\"x", "n");
        w.tool_input(&mut out, Lit(b"\"{}\""));
        let stop = Stop {
            reason: "stop_sequence",
            sequence: Some("END\n".into()),
        };
        let usage = Usage {
            input_tokens: 3,
            output_tokens: 4,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 5,
        };
        w.finish(&mut out, &stop, &usage);
        for event in String::from_utf8(out)
            .unwrap()
            .split("\n\n")
            .filter(|e| !e.is_empty())
        {
            let data = event.split_once("\ndata: ").unwrap().1;
            let v: serde_json::Value = serde_json::from_str(data).unwrap();
            assert!(v["type"].is_string(), "{data}");
        }
    }

    #[test]
    fn an_error_ends_the_stream() {
        let mut w = writer();
        let mut out = Vec::new();
        w.text(&mut out, Lit(b"\"x\""));
        w.error(&mut out, "overloaded_error", "busy \"now\"");
        w.text(&mut out, Lit(b"\"y\""));
        w.finish(&mut out, &Stop::new("end_turn"), &Usage::default());
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.ends_with("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy \\\"now\\\"\"}}\n\n"));
        assert_eq!(names(&out).len(), 4);
        assert!(w.is_ended());
    }
}
