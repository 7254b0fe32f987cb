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

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

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
        let mut bytes = None;
        let read = skim::members(frame.payload(), |key, value| {
            if key == "bytes" {
                bytes = Some(value);
            }
        });
        let encoded = match (read, bytes) {
            (Ok(()), Some(v)) if v.len() >= 2 && v[0] == b'"' => &v[1..v.len() - 1],
            _ => return Err("sent a chunk without its bytes".into()),
        };
        self.event.clear();
        STANDARD
            .decode_vec(encoded, &mut self.event)
            .map_err(|_| "sent a chunk whose bytes are not base64".to_string())?;
        let mut kind = None;
        let walked = skim::members(&self.event, |key, value| {
            if key == "type" && kind.is_none() {
                kind = skim::unescape(value.get(1..value.len().saturating_sub(1)).unwrap_or(b""));
            }
        });
        let kind = match (walked, kind) {
            (Ok(()), Some(kind)) if is_event_name(&kind) => kind.into_owned(),
            _ => return Err("sent a chunk that is not an Anthropic event".into()),
        };
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        if kind == "message_stop" {
            // All it says besides its type is Bedrock's invocation metrics.
            out.extend_from_slice(b"{\"type\":\"message_stop\"}");
        } else {
            // Line breaks can only be whitespace between a JSON event's tokens: a line of its
            // own would end the `data:` field.
            let at = out.len();
            out.extend_from_slice(self.event.trim_ascii());
            for b in &mut out[at..] {
                if *b == b'\n' || *b == b'\r' {
                    *b = b' ';
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
