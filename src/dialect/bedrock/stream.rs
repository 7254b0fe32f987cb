//! Bedrock's `invoke-with-response-stream` answer as the Anthropic event stream it carries.
//!
//! Bedrock wraps each of Claude's events in a binary frame ([`super::eventstream`]): a `chunk`
//! event whose payload is `{"bytes":"<base64 of the event's JSON>"}`. The events inside are the
//! Anthropic API's own, so the stage only unwraps them, as `event: <type>` / `data: <json>`,
//! and leaves their content alone; `message_stop` loses the `amazon-bedrock-invocationMetrics`
//! Bedrock adds to it. Bedrock says a failure in an `exception` frame (or an `error` one): before
//! the first event that is a failure the gateway may fail over from, after it an in-band
//! `event: error` of the matching type that ends the client's stream.
//!
//! What can go wrong and what each case gets: a frame that breaks the framing (a CRC, a length,
//! a header; see the reader) or a chunk whose payload is not a base64 Anthropic event ends the
//! answer as a broken upstream (the relay's in-band error once anything was sent); a stream cut
//! inside a frame likewise; frames of other event types are skipped.

use std::borrow::Cow;

use super::errors::type_of_exception;
use super::eventstream::{Frame, FrameReader};
use crate::dialect::errors::{bounded, read};
use crate::dialect::MAX_HELD;
use crate::json::skim;
use crate::json::write::push_str_bytes;
use crate::stream::translate::Translate;

/// The translation stage of a Bedrock stream.
pub struct StreamDecoder {
    frames: FrameReader,
    /// Reused for each event's decoded JSON.
    event: Vec<u8>,
    /// An event went to the client.
    started: bool,
    /// An error ended the stream; later frames are dropped.
    ended: bool,
}

impl Default for StreamDecoder {
    fn default() -> StreamDecoder {
        StreamDecoder::new()
    }
}

impl StreamDecoder {
    pub fn new() -> StreamDecoder {
        StreamDecoder {
            frames: FrameReader::new(MAX_HELD),
            event: Vec::new(),
            started: false,
            ended: false,
        }
    }

    fn frame(&mut self, frame: Frame<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        if self.ended {
            return Ok(());
        }
        match frame.message_type() {
            Some("event") if frame.event_type() == Some("chunk") => self.chunk(frame, out),
            Some("event") => Ok(()),
            Some("exception") => {
                let name = frame.exception_type().unwrap_or("");
                let found = read(frame.payload()).unwrap_or_default();
                self.failed(name, found.message.as_deref(), out)
            }
            Some("error") => {
                let name = frame.string(":error-code").unwrap_or("");
                let message = frame.string(":error-message");
                self.failed(name, message, out)
            }
            Some(other) => Err(format!(
                "sent an event-stream frame of unknown message type {:?}",
                bounded(other)
            )),
            None => Err("sent an event-stream frame without a message type".into()),
        }
    }

    /// Writes the event a chunk carries.
    fn chunk(&mut self, frame: Frame<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        let encoded = bytes_of(frame.payload()).ok_or("sent a chunk without its bytes")?;
        self.event.clear();
        // The decoding is most of a chunk's cost: the SIMD decoder does it at several GB/s.
        base64_simd::STANDARD
            .decode_append(encoded, &mut self.event)
            .map_err(|_| "sent a chunk whose bytes are not base64".to_string())?;
        let event = self.event.trim_ascii();
        let kind = match type_of(event) {
            Some(kind) if is_event_name(&kind) => kind,
            _ => return Err("sent a chunk that is not an Anthropic event".into()),
        };
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        if kind == "message_stop" {
            // All it says besides its type is Bedrock's invocation metrics.
            out.extend_from_slice(b"{\"type\":\"message_stop\"}");
        } else {
            let at = out.len();
            out.extend_from_slice(event);
            // Line breaks can only be whitespace between a JSON event's tokens: a line of its
            // own would end the `data:` field.
            if memchr::memchr2(b'\n', b'\r', event).is_some() {
                for b in &mut out[at..] {
                    if *b == b'\n' || *b == b'\r' {
                        *b = b' ';
                    }
                }
            }
        }
        out.extend_from_slice(b"\n\n");
        self.started = true;
        Ok(())
    }

    /// Bedrock reported a failure named `name`.
    fn failed(
        &mut self,
        name: &str,
        message: Option<&str>,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let message = bounded(message.unwrap_or("the upstream reported an error"));
        let label = if name.is_empty() { "error" } else { name };
        if !self.started {
            return Err(format!("sent {label} before its answer began: {message}"));
        }
        out.extend_from_slice(b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"");
        out.extend_from_slice(type_of_exception(name).as_str().as_bytes());
        out.extend_from_slice(b"\",\"message\":");
        push_str_bytes(out, &message);
        out.extend_from_slice(b"}}\n\n");
        self.ended = true;
        Ok(())
    }
}

/// The base64 of a chunk's payload, `{"bytes":"…","p":"…"}`. Bedrock writes `bytes` first and
/// base64 has no character JSON escapes, so the value is found without walking the payload;
/// any other shape is read member by member.
fn bytes_of(payload: &[u8]) -> Option<&[u8]> {
    const OPEN: &[u8] = b"{\"bytes\":\"";
    if let Some(rest) = payload.strip_prefix(OPEN) {
        let end = memchr::memchr2(b'"', b'\\', rest)?;
        if rest[end] == b'"' {
            return Some(&rest[..end]);
        }
    }
    let mut bytes = None;
    skim::members(payload, |key, value| {
        if key == "bytes" {
            bytes = Some(value);
        }
    })
    .ok()?;
    match bytes? {
        v if v.len() >= 2 && v[0] == b'"' && !v.contains(&b'\\') => Some(&v[1..v.len() - 1]),
        _ => None,
    }
}

/// The `type` of an event: where Claude's events have it, first, without walking the event (its
/// text can be long); else read member by member.
fn type_of(event: &[u8]) -> Option<Cow<'_, str>> {
    const OPEN: &[u8] = b"{\"type\":\"";
    if let Some(rest) = event.strip_prefix(OPEN) {
        let end = memchr::memchr2(b'"', b'\\', rest)?;
        if rest[end] == b'"' {
            return std::str::from_utf8(&rest[..end]).ok().map(Cow::Borrowed);
        }
    }
    let mut kind = None;
    skim::members(event, |key, value| {
        if key == "type" && kind.is_none() {
            kind = skim::unescape(value.get(1..value.len().saturating_sub(1)).unwrap_or(b""));
        }
    })
    .ok()?;
    kind
}

/// An event type as it may stand on an `event:` line.
fn is_event_name(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 64
        && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Translate for StreamDecoder {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let mut frames = std::mem::replace(&mut self.frames, FrameReader::new(0));
        let fed = frames.feed(input, |frame| self.frame(frame, out));
        self.frames = frames;
        fed
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), String> {
        self.frames.finish().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
