//! OpenAI's answers on the wire: a `chat.completion` object, and the `chat.completion.chunk`
//! objects of a stream.
//!
//! Only what the translation reads, borrowed from the upstream's bytes. Fields that providers
//! fill carelessly (ids and names that are empty, null or not strings, a missing `index`) are
//! kept raw and judged by the decoders, so one odd field does not make a whole chunk unreadable.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::super::events::{lit, Lit, Stop};
use crate::stream::tally::Usage;

#[derive(Deserialize)]
pub struct Chunk<'a> {
    #[serde(borrow)]
    pub choices: Option<Vec<Choice<'a>>>,
    pub usage: Option<WireUsage>,
    #[serde(borrow)]
    pub error: Option<&'a RawValue>,
    /// With `code`, the shape of an error some servers send at the top level.
    #[serde(borrow)]
    pub message: Option<&'a RawValue>,
    #[serde(borrow)]
    pub code: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub struct Choice<'a> {
    #[serde(borrow)]
    pub index: Option<&'a RawValue>,
    /// A stream chunk's part of the message.
    #[serde(borrow)]
    pub delta: Option<Delta<'a>>,
    /// A whole answer's message.
    #[serde(borrow)]
    pub message: Option<Delta<'a>>,
    #[serde(borrow)]
    pub finish_reason: Option<Cow<'a, str>>,
    /// vLLM: the stop string (or token id) that ended the answer.
    #[serde(borrow)]
    pub stop_reason: Option<&'a RawValue>,
}

impl Choice<'_> {
    /// Whether this is the first choice (the only one the gateway asks for); a missing index
    /// counts as the first.
    pub fn is_first(&self) -> bool {
        self.index.map_or(true, |i| i.get() == "0")
    }
}

#[derive(Deserialize, Default)]
pub struct Delta<'a> {
    #[serde(borrow)]
    pub content: Option<&'a RawValue>,
    #[serde(borrow)]
    pub reasoning_content: Option<&'a RawValue>,
    /// The name vLLM ≥ 0.9 and OpenRouter use for `reasoning_content`.
    #[serde(borrow)]
    pub reasoning: Option<&'a RawValue>,
    #[serde(borrow)]
    pub refusal: Option<&'a RawValue>,
    #[serde(borrow)]
    pub tool_calls: Option<Vec<ToolCall<'a>>>,
}

impl<'a> Delta<'a> {
    /// The reasoning text, under either name.
    pub fn reasoning(&self) -> Option<Lit<'a>> {
        lit(self.reasoning_content).or_else(|| lit(self.reasoning))
    }
}

#[derive(Deserialize)]
pub struct ToolCall<'a> {
    #[serde(borrow)]
    pub index: Option<&'a RawValue>,
    #[serde(borrow)]
    pub id: Option<&'a RawValue>,
    #[serde(borrow)]
    pub function: Option<Function<'a>>,
}

impl ToolCall<'_> {
    pub fn index(&self) -> Option<u32> {
        self.index?.get().parse().ok()
    }
}

#[derive(Deserialize)]
pub struct Function<'a> {
    #[serde(borrow)]
    pub name: Option<&'a RawValue>,
    #[serde(borrow)]
    pub arguments: Option<&'a RawValue>,
}

#[derive(Deserialize, Clone, Copy, Default)]
pub struct WireUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    pub prompt_tokens_details: Option<PromptDetails>,
    /// DeepSeek's name for the cached part of the prompt.
    pub prompt_cache_hit_tokens: Option<u64>,
}

#[derive(Deserialize, Clone, Copy, Default)]
pub struct PromptDetails {
    pub cached_tokens: Option<u64>,
}

impl WireUsage {
    /// As Anthropic counts: the cached part of the prompt is not in `input_tokens`.
    pub fn anthropic(&self) -> Usage {
        let cached = (self.prompt_tokens_details)
            .and_then(|d| d.cached_tokens)
            .or(self.prompt_cache_hit_tokens)
            .unwrap_or(0)
            .min(self.prompt_tokens);
        Usage {
            input_tokens: self.prompt_tokens - cached,
            output_tokens: self.completion_tokens,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: cached,
        }
    }
}

/// The Anthropic stop of an answer: its `finish_reason`, corrected by what it held. Any tool
/// call makes it `tool_use` (Ollama and others say `stop` when they call one) unless the answer
/// was cut or refused; `tool_calls` without a call is an ordinary end; a refusal is one
/// whatever the reason says; and vLLM's `stop_reason` names the stop sequence that ended it.
pub fn stop(
    finish: &str,
    called: bool,
    refused: bool,
    sequence: Option<&str>,
    stop_sequences: &[String],
) -> Stop {
    let reason = match (stop_reason(finish), called, refused) {
        (_, _, true) => "refusal",
        ("max_tokens" | "refusal", _, _) => stop_reason(finish),
        (_, true, _) => "tool_use",
        ("tool_use", false, _) => "end_turn",
        (reason, false, _) => reason,
    };
    match sequence.filter(|s| stop_sequences.iter().any(|x| x == s)) {
        Some(s) if reason == "end_turn" => Stop {
            reason: "stop_sequence",
            sequence: Some(s.to_string()),
        },
        _ => Stop::new(reason),
    }
}

/// The Anthropic stop reason for a `finish_reason`.
pub fn stop_reason(finish: &str) -> &'static str {
    match finish {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}
