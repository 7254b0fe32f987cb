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
use super::super::whole::{Whole, WholeStage};
use super::super::Context;
use super::wire::{stop, Chunk};
use crate::stream::tally::Usage;

/// The translation stage of a whole OpenAI answer.
pub type MessageDecoder = WholeStage<Message>;

/// What a whole `chat.completion` says, as an Anthropic message.
pub struct Message {
    context: Context,
}

impl MessageDecoder {
    pub fn new(context: Context) -> MessageDecoder {
        WholeStage::of(Message { context })
    }
}

impl Whole for Message {
    fn translate(&self, body: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let answer: Chunk<'_> = serde_json::from_slice(body)
            .map_err(|e| format!("sent an answer that is not JSON ({e})"))?;
        if answer.error.is_some() {
            return Err(whole_answer_error(body));
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
