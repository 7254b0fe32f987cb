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
//! (`generateContent`), `bedrock/` (Claude on AWS Bedrock: its body reshaped, SigV4, event-stream
//! frames unwrapped), and `vertex` (Claude on Vertex AI: its body reshaped, answers as they are).
//! The Claude dialects never parse the body ([`native`]). The facts they follow are in
//! TRANSLATION.md.

pub mod bedrock;
pub mod errors;
pub mod events;
pub mod gemini;
pub mod grammar;
pub mod health;
pub mod message;
pub mod native;
pub mod openai;
pub mod request;
pub mod sse;
pub mod tools;
pub mod vertex;
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
    Bedrock,
    Vertex,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Anthropic => "anthropic",
            Dialect::OpenAi => "openai",
            Dialect::Gemini => "gemini",
            Dialect::Bedrock => "bedrock",
            Dialect::Vertex => "vertex",
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

/// Characters a path segment keeps as they are (RFC 3986's unreserved); everything else, `:`
/// and `/` of model ids included, is percent-encoded.
pub const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Settings of one upstream that its dialect's encoder takes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Settings<'a> {
    pub openai: openai::Options,
    /// Vertex's project and region.
    pub project: &'a str,
    pub region: &'a str,
}

/// A Messages request (or a count_tokens request) on its way to an upstream of another dialect.
#[derive(Clone, Copy, Debug)]
pub struct Ask<'a> {
    /// The client's body.
    pub body: &'a [u8],
    /// The upstream's id for the model.
    pub model: &'a str,
    /// The name the client asked for, which its answer shows.
    pub client_model: &'a str,
    pub stream: bool,
    pub count_tokens: bool,
    /// The client's `anthropic-beta` header.
    pub beta: Option<&'a str>,
    pub request_id: &'a str,
}

/// Translates a request for `dialect`.
pub fn encode(
    dialect: Dialect,
    ask: &Ask<'_>,
    settings: &Settings<'_>,
) -> Result<Encoded, Invalid> {
    let mut context = Context {
        dialect,
        head: MessageHead {
            id: message_id(ask.request_id),
            model: ask.client_model.to_string(),
            input_tokens: MessagesRequest::estimated_input_tokens(ask.body.len()),
        },
        stream: ask.stream && !ask.count_tokens,
        stop_sequences: Vec::new(),
        tools: ToolNames::default(),
        request_id: ask.request_id.to_string(),
    };
    let (model, stream, count) = (ask.model, context.stream, ask.count_tokens);
    // Claude behind a cloud provider takes the body as the client wrote it, never parsed.
    let (path, body) = match dialect {
        Dialect::Bedrock => bedrock::request::encode(ask.body, model, ask.beta, stream, count)?,
        Dialect::Vertex => {
            let (project, region) = (settings.project, settings.region);
            vertex::encode(ask.body, project, region, model, stream, count)?
        }
        Dialect::OpenAi | Dialect::Gemini => {
            let req = MessagesRequest::parse(ask.body)?;
            context.stop_sequences = req.stop_sequences.iter().map(|s| s.to_string()).collect();
            let tools = &mut context.tools;
            match dialect {
                Dialect::OpenAi => (
                    "/chat/completions".to_string(),
                    openai::request::encode(&req, model, &settings.openai, tools)?,
                ),
                _ => gemini::request::encode(&req, model, count, tools)?,
            }
        }
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

/// What the translator of an answer learns from its head.
#[derive(Clone, Copy, Debug, Default)]
pub struct Answered<'a> {
    pub status: u16,
    /// The answer is a token count.
    pub count_tokens: bool,
    /// Bedrock's `X-Amzn-ErrorType` header.
    pub error_type: Option<&'a str>,
}

/// The stage that turns an upstream's answer into what the client gets; `None` where the answer
/// is the Anthropic API's own and goes as it is (Claude on a cloud provider).
pub fn translator(context: Context, answer: &Answered<'_>) -> Option<Box<dyn Translate>> {
    let ok = (200..300).contains(&answer.status);
    let (dialect, stream, count) = (context.dialect, context.stream, answer.count_tokens);
    Some(match dialect {
        _ if !ok => {
            let named = answer.error_type.and_then(bedrock::errors::type_of_header);
            let named = named.filter(|_| dialect == Dialect::Bedrock);
            Box::new(errors::ErrorDecoder::new(context, answer.status).named(named))
        }
        Dialect::Anthropic | Dialect::Vertex => return None,
        Dialect::Bedrock if count => {
            Box::new(bedrock::count::CountDecoder::of(bedrock::count::Count))
        }
        Dialect::Bedrock if stream => Box::new(bedrock::stream::StreamDecoder::new()),
        Dialect::Bedrock => return None,
        Dialect::Gemini if count => {
            Box::new(gemini::response::CountDecoder::of(gemini::response::Count))
        }
        Dialect::OpenAi if stream => Box::new(openai::stream::StreamDecoder::new(context)),
        Dialect::OpenAi => Box::new(openai::response::MessageDecoder::new(context)),
        Dialect::Gemini if stream => Box::new(gemini::stream::StreamDecoder::new(context)),
        Dialect::Gemini => Box::new(gemini::response::MessageDecoder::new(context)),
    })
}

/// The message id shown to the client: the gateway's request id, so the two can be matched.
fn message_id(request_id: &str) -> String {
    format!(
        "msg_{}",
        request_id.strip_prefix("req_").unwrap_or(request_id)
    )
}
