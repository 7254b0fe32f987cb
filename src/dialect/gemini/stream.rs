//! A Gemini `streamGenerateContent?alt=sse` stream as an Anthropic event stream (TRANSLATION.md
//! §2, "Response and stream").
//!
//! Each event is a whole `GenerateContentResponse`. Parts map one to one: thought text to
//! thinking deltas, text to text deltas, a function call (which Gemini sends whole) to a
//! `tool_use` block with all of its arguments in one `input_json_delta`. A thought signature
//! goes to the thinking block it ends, or to an empty thinking block of its own before the part
//! that carried it, so that it comes back with the conversation (Gemini 3 refuses a function
//! call in the history without one). The event with `finishReason` ends the message, with the
//! usage it carries; Gemini sends no `[DONE]`, and a stream that ends before a `finishReason`
//! was cut short.

use super::super::errors::{in_stream, string_of};
use super::super::events::{lit, EventWriter, Lit, Stop};
use super::super::sse::{Event, Events, SseStage};
use super::super::tools::{client_id, made_up_id};
use super::super::{Context, MAX_HELD};
use super::wire::{stop_reason, Part, Response};
use crate::json::write::push_str_bytes;
use crate::stream::tally::Usage;

/// The translation stage of a Gemini stream.
pub type StreamDecoder = SseStage<ResponseDecoder>;

/// What the responses of a Gemini stream have said so far, and the events they made.
pub struct ResponseDecoder {
    events: EventWriter,
    context: Context,
    usage: Option<Usage>,
    /// Function calls so far.
    calls: usize,
    /// Bytes of text and arguments relayed, for an estimate when no usage comes.
    output_bytes: u64,
}

impl StreamDecoder {
    pub fn new(context: Context) -> StreamDecoder {
        SseStage::over(
            ResponseDecoder {
                events: EventWriter::new(context.head.clone()),
                context,
                usage: None,
                calls: 0,
                output_bytes: 0,
            },
            MAX_HELD,
        )
    }
}

impl Events for ResponseDecoder {
    fn event(&mut self, e: Event<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        self.response(e, out)
    }

    fn end(&mut self, _out: &mut Vec<u8>) -> Result<(), String> {
        match (self.events.is_ended(), self.events.is_started()) {
            (true, _) => Ok(()),
            (false, true) => Err("ended the stream before its finishReason".into()),
            (false, false) => Err("ended the stream without sending any event".into()),
        }
    }
}

impl ResponseDecoder {
    fn response(&mut self, e: Event<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        let data = e.data.trim_ascii();
        if self.events.is_ended() || data.is_empty() {
            return Ok(());
        }
        let response: Response<'_> = serde_json::from_slice(data)
            .map_err(|e| format!("sent an event that is not JSON ({e})"))?;
        if response.error.is_some() {
            return in_stream(&mut self.events, data, out);
        }
        self.events.start(out);
        if let Some(u) = &response.usage_metadata {
            self.usage = Some(u.anthropic());
        }
        let Some(candidate) = response.candidate() else {
            if let Some(reason) =
                (response.prompt_feedback.as_ref()).and_then(|f| f.block_reason.as_deref())
            {
                log::debug!("gemini blocked the prompt: {reason}");
                self.finish_message(out, "refusal");
            }
            return Ok(());
        };
        for part in candidate.parts() {
            self.part(part, out);
        }
        if let Some(finish) = &candidate.finish_reason {
            let reason = match (self.calls > 0, stop_reason(finish)) {
                (true, "end_turn") => "tool_use",
                (_, reason) => reason,
            };
            self.finish_message(out, reason);
        }
        Ok(())
    }

    fn part(&mut self, part: &Part<'_>, out: &mut Vec<u8>) {
        let text = lit(part.text);
        self.output_bytes += text.map_or(0, |t| t.0.len() as u64);
        let signature = lit(part.thought_signature);
        if part.thought {
            if let Some(t) = text {
                self.events.thinking(out, t);
            }
            if let Some(s) = signature {
                self.events.signature(out, s);
            }
            return;
        }
        if let Some(s) = signature {
            self.events.signature(out, s);
        }
        if let Some(call) = &part.function_call {
            let id = (call.id.and_then(string_of))
                .filter(|s| !s.is_empty())
                .map_or_else(
                    || made_up_id(&self.context.head.id, self.calls),
                    |s| client_id(&s).into_owned(),
                );
            let name = (call.name.and_then(string_of)).unwrap_or_default();
            let name = self.context.tools.client(&name).to_string();
            self.events.tool_use(out, &id, &name);
            if let Some(args) = call.args.filter(|a| a.get().starts_with('{')) {
                self.output_bytes += args.get().len() as u64;
                let mut literal = Vec::with_capacity(args.get().len() + 16);
                push_str_bytes(&mut literal, args.get());
                self.events.tool_input(out, Lit(&literal));
            }
            self.events.close(out);
            self.calls += 1;
        } else if let Some(t) = text {
            self.events.text(out, t);
        }
    }

    fn finish_message(&mut self, out: &mut Vec<u8>, reason: &'static str) {
        let usage = self.usage.unwrap_or(Usage {
            input_tokens: self.context.head.input_tokens,
            output_tokens: self.output_bytes.div_ceil(4),
            ..Usage::default()
        });
        self.events.finish(out, &Stop::new(reason), &usage);
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
