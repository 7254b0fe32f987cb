//! A whole Gemini `GenerateContentResponse` as an Anthropic message, and a `countTokens` answer
//! as a count_tokens one.

use serde::Deserialize;

use super::super::errors::{string_of, whole_answer_error};
use super::super::events::{lit, Lit, Stop};
use super::super::message::{tool_input, MessageWriter};
use super::super::tools::{client_id, made_up_id};
use super::super::whole::{Whole, WholeStage};
use super::super::Context;
use super::wire::{stop_reason, Response};
use crate::stream::tally::Usage;

/// The translation stage of a whole Gemini answer.
pub type MessageDecoder = WholeStage<Message>;

/// What a whole `GenerateContentResponse` says, as an Anthropic message.
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
        let answer: Response<'_> = serde_json::from_slice(body)
            .map_err(|e| format!("sent an answer that is not JSON ({e})"))?;
        if answer.error.is_some() {
            return Err(whole_answer_error(body));
        }
        let mut m = MessageWriter::new();
        let mut thinking: Vec<u8> = Vec::new();
        let candidate = answer.candidate();
        let mut calls = 0;
        for part in candidate.map(|c| c.parts()).unwrap_or(&[]) {
            let text = lit(part.text);
            let signature = lit(part.thought_signature);
            if part.thought {
                // Thought parts run together into one block, ended by a signature.
                if let Some(t) = text {
                    append_literal(&mut thinking, t);
                }
                if signature.is_some() {
                    m.thinking(Lit(&closed(&thinking)), signature);
                    thinking.clear();
                }
                continue;
            }
            if !thinking.is_empty() || signature.is_some() {
                m.thinking(Lit(&closed(&thinking)), signature);
                thinking.clear();
            }
            if let Some(call) = &part.function_call {
                let id = (call.id.and_then(string_of))
                    .filter(|s| !s.is_empty())
                    .map_or_else(
                        || made_up_id(&self.context.head.id, calls),
                        |s| client_id(&s).into_owned(),
                    );
                calls += 1;
                let name = (call.name.and_then(string_of)).unwrap_or_default();
                let args = call.args.map_or("{}", |a| tool_input(a.get()));
                m.tool_use(&id, self.context.tools.client(&name), args);
            } else if let Some(t) = text {
                m.text(t);
            }
        }
        if !thinking.is_empty() {
            m.thinking(Lit(&closed(&thinking)), None);
        }
        let blocked = (answer.prompt_feedback.as_ref()).and_then(|f| f.block_reason.as_deref());
        let reason = match (candidate.and_then(|c| c.finish_reason.as_deref()), blocked) {
            (_, Some(_)) if candidate.is_none() => "refusal",
            (Some(finish), _) => stop_reason(finish),
            (None, _) => "end_turn",
        };
        let reason = match (m.has_tool_use(), reason) {
            (true, "end_turn") => "tool_use",
            (_, r) => r,
        };
        let usage = answer.usage_metadata.map_or(
            Usage {
                input_tokens: self.context.head.input_tokens,
                ..Usage::default()
            },
            |u| u.anthropic(),
        );
        m.finish(out, &self.context.head, &Stop::new(reason), &usage);
        Ok(())
    }
}

/// Appends the inside of a string literal (escapes intact) to `open`, a literal kept open.
fn append_literal(open: &mut Vec<u8>, text: Lit<'_>) {
    if open.is_empty() {
        open.push(b'"');
    }
    open.extend_from_slice(&text.0[1..text.0.len() - 1]);
}

/// The literal `open` with its closing quote (the empty literal when nothing was appended).
fn closed(open: &[u8]) -> Vec<u8> {
    let mut literal = if open.is_empty() {
        b"\"".to_vec()
    } else {
        open.to_vec()
    };
    literal.push(b'"');
    literal
}

/// The translation stage of a `countTokens` answer: `{"input_tokens": N}`.
pub type CountDecoder = WholeStage<Count>;

/// What a `countTokens` answer says.
pub struct Count;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Counted {
    total_tokens: u64,
}

impl Whole for Count {
    fn translate(&self, body: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let count: Counted = serde_json::from_slice(body)
            .map_err(|e| format!("sent a token count that cannot be read ({e})"))?;
        out.extend_from_slice(b"{\"input_tokens\":");
        super::super::events::push_u64(out, count.total_tokens);
        out.push(b'}');
        Ok(())
    }
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
