//! Writing a whole Anthropic message, for answers that are not streamed.
//!
//! The non-stream decoders read the upstream's answer whole and build the message block by block:
//! thinking, text and tool calls in the order the upstream gave them, the stop reason and the
//! usage. Strings are JSON literals copied as the upstream escaped them, as in [`super::events`].

use super::events::{push_usage, Lit, MessageHead, Stop};
use crate::json::write::push_str_bytes;
use crate::stream::tally::Usage;

#[derive(Default)]
pub struct MessageWriter {
    content: Vec<u8>,
    blocks: usize,
}

impl MessageWriter {
    pub fn new() -> MessageWriter {
        MessageWriter::default()
    }

    pub fn text(&mut self, text: Lit<'_>) {
        if !text.is_empty() {
            self.block(b"{\"type\":\"text\",\"text\":");
            self.content.extend_from_slice(text.0);
            self.content.push(b'}');
        }
    }

    pub fn thinking(&mut self, text: Lit<'_>, signature: Option<Lit<'_>>) {
        self.block(b"{\"type\":\"thinking\",\"thinking\":");
        self.content.extend_from_slice(text.0);
        self.content.extend_from_slice(b",\"signature\":");
        self.content
            .extend_from_slice(signature.map_or(&b"\"\""[..], |s| s.0));
        self.content.push(b'}');
    }

    /// A tool call; `input` is a JSON object's text.
    pub fn tool_use(&mut self, id: &str, name: &str, input: &str) {
        self.block(b"{\"type\":\"tool_use\",\"id\":");
        push_str_bytes(&mut self.content, id);
        self.content.extend_from_slice(b",\"name\":");
        push_str_bytes(&mut self.content, name);
        self.content.extend_from_slice(b",\"input\":");
        self.content.extend_from_slice(input.as_bytes());
        self.content.push(b'}');
    }

    pub fn has_tool_use(&self) -> bool {
        memchr::memmem::find(&self.content, b"{\"type\":\"tool_use\"").is_some()
    }

    /// The whole message.
    pub fn finish(self, out: &mut Vec<u8>, head: &MessageHead, stop: &Stop, usage: &Usage) {
        out.extend_from_slice(b"{\"id\":");
        push_str_bytes(out, &head.id);
        out.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
        push_str_bytes(out, &head.model);
        out.extend_from_slice(b",\"content\":[");
        out.extend_from_slice(&self.content);
        out.extend_from_slice(b"],\"stop_reason\":\"");
        out.extend_from_slice(stop.reason.as_bytes());
        out.extend_from_slice(b"\",\"stop_sequence\":");
        match &stop.sequence {
            Some(s) => push_str_bytes(out, s),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"usage\":");
        push_usage(out, usage);
        out.push(b'}');
    }

    fn block(&mut self, start: &[u8]) {
        if self.blocks > 0 {
            self.content.push(b',');
        }
        self.blocks += 1;
        self.content.extend_from_slice(start);
    }
}

/// A tool call's input as the client gets it: the upstream's arguments when they are a JSON
/// object, else `{}` (a client cannot use half an object).
pub fn tool_input(arguments: &str) -> &str {
    match serde_json::from_str::<&serde_json::value::RawValue>(arguments) {
        Ok(raw) if raw.get().starts_with('{') => raw.get(),
        _ => "{}",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_with_every_block_is_valid_json() {
        let mut m = MessageWriter::new();
        m.thinking(Lit(b"\"hm\""), None);
        m.text(Lit(b"\"\""));
        m.text(Lit(b"\"Hi \\\"x\\\"\""));
        m.tool_use("toolu_1", "get", tool_input(" {\"a\": [1]} "));
        m.tool_use("toolu_2", "get", tool_input("{\"a\": "));
        assert!(m.has_tool_use());
        let mut out = Vec::new();
        let head = MessageHead {
            id: "msg_1".into(),
            model: "m".into(),
            input_tokens: 1,
        };
        m.finish(&mut out, &head, &Stop::new("tool_use"), &Usage::default());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["content"].as_array().unwrap().len(), 4);
        assert_eq!(v["content"][1]["text"], "Hi \"x\"");
        assert_eq!(v["content"][2]["input"]["a"][0], 1);
        assert_eq!(v["content"][3]["input"], serde_json::json!({}));
        assert_eq!(v["content"][0]["signature"], "");
        assert_eq!(v["stop_reason"], "tool_use");
        assert_eq!(v["usage"]["output_tokens"], 0);
    }
}
