//! Dialects: serving the Messages API from upstreams that speak another API.
//!
//! Clients always speak the Anthropic Messages API; an upstream's `kind` names the dialect the
//! gateway speaks to it. A dialect is pure code, no sockets: a request encoder (the Messages body
//! as the upstream's body and path), a stream decoder (the upstream's stream, in any split, as an
//! Anthropic event stream that obeys the grammar, see [`events`]), a message decoder (a whole
//! answer as an Anthropic message) and an error decoder (the upstream's error as an Anthropic
//! error). The decoders are stages of the relay ([`crate::stream::translate::Translate`]): the
//! relay reads, runs the stage, and does everything else (commit late, flush policy,
//! keep-alives, in-band errors, usage) exactly as for a pass-through.
//!
//! The `anthropic` dialect is the identity and has no stage: its answers keep the zero-copy
//! relay. Each other dialect is a folder: `openai/` (Chat Completions), `gemini/`
//! (`generateContent`). The facts they follow are in TRANSLATION.md.

pub mod errors;
pub mod events;
pub mod gemini;
pub mod grammar;
pub mod health;
pub mod message;
pub mod openai;
pub mod request;
pub mod sse;
pub mod tools;
pub mod whole;

use serde::{Deserialize, Serialize};

use crate::stream::translate::Translate;
use events::MessageHead;
use request::{Invalid, MessagesRequest};
use tools::ToolNames;

/// The most bytes of one upstream event, of a whole non-streaming answer, and of what a decoder
/// holds back (tool call arguments waiting for their turn): past it, the answer ends with an
/// error rather than memory growing without end.
pub const MAX_HELD: usize = 4 << 20;

/// The API an upstream speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    #[default]
    Anthropic,
    #[serde(rename = "openai")]
    OpenAi,
    Gemini,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Anthropic => "anthropic",
            Dialect::OpenAi => "openai",
            Dialect::Gemini => "gemini",
        }
    }
}

/// What the decoders of an answer need to know of its request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    pub dialect: Dialect,
    pub head: MessageHead,
    pub stream: bool,
    /// The client's stop sequences, to tell which one stopped the answer where the upstream
    /// says so.
    pub stop_sequences: Vec<String>,
    pub tools: ToolNames,
    /// The gateway's id of the request, for the error bodies it writes.
    pub request_id: String,
}

/// A Messages request as it goes to an upstream of another dialect.
#[derive(Debug)]
pub struct Encoded {
    /// The path and query after the upstream's base URL.
    pub path: String,
    pub body: Vec<u8>,
    pub context: Context,
}

/// Settings of one upstream that its dialect's encoder takes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Settings {
    pub openai: openai::Options,
}

/// Translates a Messages request (`count_tokens`: a count_tokens request) for `dialect`;
/// `model` is the upstream's id for it, `client_model` the name the client asked for.
pub fn encode(
    dialect: Dialect,
    body: &[u8],
    model: &str,
    client_model: &str,
    count_tokens: bool,
    settings: &Settings,
    request_id: &str,
) -> Result<Encoded, Invalid> {
    let req = MessagesRequest::parse(body)?;
    let mut context = Context {
        dialect,
        head: MessageHead {
            id: message_id(request_id),
            model: client_model.to_string(),
            input_tokens: MessagesRequest::estimated_input_tokens(body.len()),
        },
        stream: req.stream && !count_tokens,
        stop_sequences: req.stop_sequences.iter().map(|s| s.to_string()).collect(),
        tools: ToolNames::default(),
        request_id: request_id.to_string(),
    };
    let (path, body) = match dialect {
        Dialect::OpenAi => (
            "/chat/completions".to_string(),
            openai::request::encode(&req, model, &settings.openai, &mut context.tools)?,
        ),
        Dialect::Gemini => gemini::request::encode(&req, model, count_tokens, &mut context.tools)?,
        Dialect::Anthropic => {
            return Err(Invalid::new("the anthropic dialect is not translated"));
        }
    };
    Ok(Encoded {
        path,
        body,
        context,
    })
}

/// The stage that turns an upstream's answer with `status` into what the client gets.
pub fn translator(context: Context, status: u16, count_tokens: bool) -> Box<dyn Translate> {
    let ok = (200..300).contains(&status);
    match (context.dialect, ok) {
        (_, false) => Box::new(errors::ErrorDecoder::new(context, status)),
        (Dialect::Gemini, true) if count_tokens => {
            Box::new(gemini::response::CountDecoder::of(gemini::response::Count))
        }
        (Dialect::OpenAi, true) if context.stream => {
            Box::new(openai::stream::StreamDecoder::new(context))
        }
        (Dialect::OpenAi, true) => Box::new(openai::response::MessageDecoder::new(context)),
        (Dialect::Gemini, true) if context.stream => {
            Box::new(gemini::stream::StreamDecoder::new(context))
        }
        (Dialect::Gemini, true) => Box::new(gemini::response::MessageDecoder::new(context)),
        (Dialect::Anthropic, true) => unreachable!("anthropic answers are relayed as they are"),
    }
}

/// The message id shown to the client: the gateway's request id, so the two can be matched.
fn message_id(request_id: &str) -> String {
    format!(
        "msg_{}",
        request_id.strip_prefix("req_").unwrap_or(request_id)
    )
}
