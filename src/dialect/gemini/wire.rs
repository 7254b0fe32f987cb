//! Gemini's answers on the wire: a `GenerateContentResponse`, whole or one per stream event.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::stream::tally::Usage;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Response<'a> {
    #[serde(borrow)]
    pub candidates: Option<Vec<Candidate<'a>>>,
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(borrow)]
    pub prompt_feedback: Option<PromptFeedback<'a>>,
    #[serde(borrow)]
    pub error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate<'a> {
    #[serde(borrow)]
    pub content: Option<Content<'a>>,
    #[serde(borrow)]
    pub finish_reason: Option<Cow<'a, str>>,
    pub index: Option<u32>,
}

#[derive(Deserialize)]
pub struct Content<'a> {
    #[serde(borrow)]
    pub parts: Option<Vec<Part<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Part<'a> {
    #[serde(borrow)]
    pub text: Option<&'a RawValue>,
    #[serde(default)]
    pub thought: bool,
    #[serde(borrow)]
    pub thought_signature: Option<&'a RawValue>,
    #[serde(borrow)]
    pub function_call: Option<FunctionCall<'a>>,
}

#[derive(Deserialize)]
pub struct FunctionCall<'a> {
    #[serde(borrow)]
    pub id: Option<&'a RawValue>,
    #[serde(borrow)]
    pub name: Option<&'a RawValue>,
    #[serde(borrow)]
    pub args: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback<'a> {
    #[serde(borrow)]
    pub block_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct UsageMetadata {
    pub prompt_token_count: u64,
    pub candidates_token_count: u64,
    pub thoughts_token_count: u64,
    pub cached_content_token_count: u64,
}

impl UsageMetadata {
    /// As Anthropic counts: cached prompt tokens apart, thoughts among the output.
    pub fn anthropic(&self) -> Usage {
        let cached = self.cached_content_token_count.min(self.prompt_token_count);
        Usage {
            input_tokens: self.prompt_token_count - cached,
            output_tokens: self.candidates_token_count + self.thoughts_token_count,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: cached,
        }
    }
}

impl<'a> Response<'a> {
    /// The first candidate, the only one the gateway asks for.
    pub fn candidate(&self) -> Option<&Candidate<'a>> {
        (self.candidates.iter().flatten()).find(|c| c.index.unwrap_or(0) == 0)
    }
}

impl<'a> Candidate<'a> {
    pub fn parts(&self) -> &[Part<'a>] {
        (self.content.as_ref())
            .and_then(|c| c.parts.as_deref())
            .unwrap_or(&[])
    }
}

/// The Anthropic stop reason for a `finishReason` (a function call overrides it: Gemini says
/// `STOP` when it calls one).
pub fn stop_reason(finish: &str) -> &'static str {
    match finish {
        "MAX_TOKENS" => "max_tokens",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY"
        | "LANGUAGE" => "refusal",
        _ => "end_turn",
    }
}
