//! What the mock says, before any dialect words it: one abstract answer shared by the OpenAI and
//! Gemini renderers.
//!
//! Each dialect's request reader boils its request down to an [`Ask`]; [`derive`] turns that and
//! the request's directives into a [`Script`]: reasoning, text pieces, tool calls, the stop and
//! the usage. Keeping this apart means the dialects cannot disagree about what the answer to the
//! same conversation is, and a test of the rules needs no wire format. The rules, in order:
//!
//! 1. A conversation that ends in tool results is answered by echoing them
//!    (`Tool {name} returned: {content}`), so a test sees the round trip.
//! 2. Else `x-mock-tool-calls: N` with tools offered: N parallel calls, cycling through the tools,
//!    each with `{"query": <the last user text, up to 10 words>, "n": i}`.
//! 3. Else the echo the Anthropic mock says ("Hello from the ringgate mock upstream ({model}).
//!    You said: …"), cut at `max_tokens` words (a length stop) or where a stop sequence first
//!    appears (a stop-sequence stop).
//!
//! Reasoning, when asked for, comes first ("Thinking about: …"); `x-mock-finish` overrides the
//! stop. Usage: input estimated as the Anthropic mock does (a token per 4 bytes of text), output
//! one token per piece (reasoning and text) and per call.

use super::directives::Directives;
use super::shape::{self, Shape};
use crate::json::write as json;

/// The most words of the user's last message echoed back.
const MAX_ECHO_WORDS: usize = 256;
/// The most words of the user's last message in reasoning and in tool call arguments.
const QUERY_WORDS: usize = 10;
const REASONING_WORDS: usize = 8;

/// What a request asked, in no dialect's words.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ask {
    pub model: String,
    /// The text of the last user turn.
    pub last_user_text: String,
    /// The tool results the conversation ends with, in order (empty when it ends otherwise).
    pub tool_results: Vec<ToolResult>,
    /// The names of the tools offered.
    pub tools: Vec<String>,
    pub max_tokens: Option<u64>,
    pub stop_sequences: Vec<String>,
    /// Whether the request asked for reasoning to be shown.
    pub reasoning: bool,
    pub input_tokens: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolResult {
    /// The function that was called.
    pub name: String,
    pub content: String,
}

/// The answer, in no dialect's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// Reasoning pieces (a word each, with the space before it), shown before everything else.
    pub reasoning: Vec<String>,
    /// Text pieces: a word each, with the space before it, so they concatenate to the text.
    pub pieces: Vec<String>,
    pub calls: Vec<Call>,
    pub stop: Stop,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// The pieces are shaped deltas, each with a send time to stamp ([`shape::delta_text`]).
    pub stamped: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub name: String,
    /// The arguments as JSON text.
    pub arguments: String,
}

/// Why the answer ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    End,
    /// Cut at `max_tokens`.
    MaxTokens,
    /// Cut where this stop sequence appeared.
    StopSequence(String),
    ToolCalls,
    /// `x-mock-finish`: this finish reason, verbatim.
    Forced(String),
}

impl Script {
    pub fn text(&self) -> String {
        self.pieces.concat()
    }

    pub fn reasoning_text(&self) -> String {
        self.reasoning.concat()
    }

    /// Output tokens of the text alone (Gemini counts thoughts apart).
    pub fn text_tokens(&self) -> u64 {
        self.output_tokens - self.reasoning.len() as u64
    }

    /// The same answer in the shape a benchmark asked for: for a stream, `x-mock-deltas` pieces
    /// of text with send times to stamp; for a whole answer, `x-mock-reply-bytes` of text. A
    /// shaped answer is only text and ends normally.
    pub fn shaped(self, shape: &Shape, stream: bool) -> Script {
        let pieces = match (stream, shape.stream, shape.reply_bytes) {
            (true, Some(s), _) => (0..s.deltas)
                .map(|i| shape::delta_text(i, s.delta_bytes))
                .collect::<Vec<_>>(),
            (false, _, Some(bytes)) => {
                return Script {
                    reasoning: Vec::new(),
                    pieces: vec![shape::reply_text(bytes)],
                    calls: Vec::new(),
                    stop: Stop::End,
                    output_tokens: bytes.div_ceil(4) as u64,
                    stamped: false,
                    ..self
                }
            }
            _ => return self,
        };
        Script {
            reasoning: Vec::new(),
            output_tokens: pieces.len() as u64,
            pieces,
            calls: Vec::new(),
            stop: Stop::End,
            stamped: true,
            ..self
        }
    }
}

/// The words the mock answers `text` with, cut at `max_tokens` words: a fixed preamble naming
/// the model, then the user's words echoed back. Shared with the Anthropic answers, so every
/// dialect says the same thing. Returns the words and whether the cut happened.
pub fn echo_words(model: &str, user_text: &str, max_tokens: Option<u64>) -> (Vec<String>, bool) {
    let mut words: Vec<String> =
        format!("Hello from the ringgate mock upstream ({model}). You said:")
            .split_whitespace()
            .map(str::to_string)
            .collect();
    words.extend(
        user_text
            .split_whitespace()
            .take(MAX_ECHO_WORDS)
            .map(str::to_string),
    );
    let limit = max_tokens.map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
    let cut = words.len() > limit;
    words.truncate(limit);
    (words, cut)
}

/// The answer to `ask`.
pub fn derive(ask: &Ask, directives: &Directives) -> Script {
    let reasoning = match ask.reasoning {
        true => pieces(&format!(
            "Thinking about: {}",
            first_words(&ask.last_user_text, REASONING_WORDS)
        )),
        false => Vec::new(),
    };
    let mut calls = Vec::new();
    let (text, stop) = if !ask.tool_results.is_empty() {
        let echoes: Vec<String> = (ask.tool_results.iter())
            .map(|r| format!("Tool {} returned: {}", r.name, r.content))
            .collect();
        (echoes.join(" "), Stop::End)
    } else if let Some(n) = directives.tool_calls.filter(|_| !ask.tools.is_empty()) {
        let mut query = String::new();
        json::push_str(&mut query, &first_words(&ask.last_user_text, QUERY_WORDS));
        for i in 0..n {
            calls.push(Call {
                name: ask.tools[i % ask.tools.len()].clone(),
                arguments: format!("{{\"query\":{query},\"n\":{i}}}"),
            });
        }
        (String::new(), Stop::ToolCalls)
    } else {
        let (words, cut) = echo_words(&ask.model, &ask.last_user_text, ask.max_tokens);
        let text = words.join(" ");
        match first_stop(&text, &ask.stop_sequences) {
            Some((at, sequence)) => (text[..at].to_string(), Stop::StopSequence(sequence)),
            None if cut => (text, Stop::MaxTokens),
            None => (text, Stop::End),
        }
    };
    let pieces = pieces(&text);
    let output_tokens = (reasoning.len() + pieces.len() + calls.len()) as u64;
    Script {
        reasoning,
        pieces,
        calls,
        stop: directives.finish.clone().map_or(stop, Stop::Forced),
        input_tokens: ask.input_tokens,
        output_tokens,
        stamped: false,
    }
}

/// Where the first of `sequences` appears in `text`, and which one it is.
fn first_stop(text: &str, sequences: &[String]) -> Option<(usize, String)> {
    (sequences.iter())
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()).map(|at| (at, s.clone())))
        .min_by_key(|(at, _)| *at)
}

/// `text` in pieces of a word each, the space before a word going with it, so that the pieces
/// concatenate to `text` exactly.
pub fn pieces(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut after_word = false;
    for c in text.chars() {
        let space = c.is_whitespace();
        match out.last_mut() {
            Some(piece) if !(space && after_word) => piece.push(c),
            _ => out.push(c.to_string()),
        }
        after_word = !space;
    }
    out
}

fn first_words(text: &str, n: usize) -> String {
    text.split_whitespace()
        .take(n)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A token estimate of `bytes` bytes of text: one per 4 bytes, at least one.
pub fn estimate_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4).max(1)
}

#[cfg(test)]
#[path = "script_tests.rs"]
mod tests;
