//! A whole OpenAI `chat.completion` as an Anthropic message (TRANSLATION.md §1, "Non-stream").
//!
//! Blocks in the order a stream would have them: reasoning (under either field name), text (or
//! the model's refusal), then the tool calls with their arguments parsed (`{}` when they are not
//! a JSON object). Any tool call makes the stop reason `tool_use`, whatever `finish_reason` says:
//! Ollama and others say `stop` when they call a tool.

use super::super::errors::{string_of, whole_answer_error};
use super::super::events::lit;
use super::super::message::{tool_input, MessageWriter};
use super::super::tools::{client_id, made_up_id};
use super::super::{Context, MAX_HELD};
use super::wire::{stop, Chunk};
use crate::stream::tally::Usage;
use crate::stream::translate::Translate;

/// Reads the whole answer, then writes the message.
pub struct MessageDecoder {
    context: Context,
    body: Vec<u8>,
}

impl MessageDecoder {
    pub fn new(context: Context) -> MessageDecoder {
        MessageDecoder {
            context,
            body: Vec::new(),
        }
    }
}

/// Takes a piece of a body read whole, up to [`MAX_HELD`].
pub fn collect(body: &mut Vec<u8>, input: &[u8]) -> Result<(), String> {
    if body.len() + input.len() > MAX_HELD {
        return Err(format!("sent an answer larger than {MAX_HELD} bytes"));
    }
    body.extend_from_slice(input);
    Ok(())
}

impl Translate for MessageDecoder {
    fn feed(&mut self, input: &[u8], _out: &mut Vec<u8>) -> Result<(), String> {
        collect(&mut self.body, input)
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let answer: Chunk<'_> = serde_json::from_slice(&self.body)
            .map_err(|e| format!("sent an answer that is not JSON ({e})"))?;
        if answer.error.is_some() {
            return Err(whole_answer_error(&self.body));
        }
        let choice = (answer.choices.iter().flatten())
            .find(|c| c.is_first())
            .ok_or("sent an answer without a choice")?;
        let message = choice.message.as_ref().or(choice.delta.as_ref());
        let mut m = MessageWriter::new();
        if let Some(msg) = message {
            if let Some(thinking) = msg.reasoning().filter(|l| !l.is_empty()) {
                m.thinking(thinking, None);
            }
            if let Some(text) = lit(msg.content) {
                m.text(text);
            }
            if let Some(refusal) = lit(msg.refusal) {
                m.text(refusal);
            }
            for (n, call) in msg.tool_calls.iter().flatten().enumerate() {
                let id = (call.id.and_then(string_of))
                    .filter(|s| !s.is_empty())
                    .map_or_else(
                        || made_up_id(&self.context.head.id, n),
                        |s| client_id(&s).into_owned(),
                    );
                let function = call.function.as_ref();
                let name = (function.and_then(|f| f.name).and_then(string_of)).unwrap_or_default();
                let args =
                    (function.and_then(|f| f.arguments).and_then(string_of)).unwrap_or_default();
                m.tool_use(&id, self.context.tools.client(&name), tool_input(&args));
            }
        }
        let finish = choice.finish_reason.as_deref().unwrap_or("stop");
        let refused = message.is_some_and(|msg| lit(msg.refusal).is_some_and(|l| !l.is_empty()));
        let sequence = choice.stop_reason.and_then(string_of);
        let sequences = &self.context.stop_sequences;
        let stop = stop(
            finish,
            m.has_tool_use(),
            refused,
            sequence.as_deref(),
            sequences,
        );
        let usage = answer.usage.map_or(
            Usage {
                input_tokens: self.context.head.input_tokens,
                ..Usage::default()
            },
            |u| u.anthropic(),
        );
        m.finish(out, &self.context.head, &stop, &usage);
        Ok(())
    }
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
