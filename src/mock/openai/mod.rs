//! The mock's answers in the OpenAI Chat Completions dialect: what vLLM, OpenRouter or OpenAI
//! itself would send the gateway.
//!
//! `POST /v1/chat/completions` (or `/chat/completions`): the request is checked like a real
//! server checks it ([`request`]), the answer derived ([`super::script`]) and written as a
//! `chat.completion` object, or as the `chat.completion.chunk` stream of [`stream`]. Errors are
//! OpenAI's `{"error":{"message","type","param","code"}}`.

pub mod request;
pub mod stream;

use super::answers::{ok_json, Reply};
use super::anthropic::random_suffix;
use super::directives::{Directives, Quirk, Quirks};
use super::faults::StreamFault;
use super::script::{self, Script, Stop};
use super::shape::Shape;
use crate::http::{ApiError, ErrorType};
use crate::json::write::{push_str, string};

/// What every chunk of one answer repeats, and the ids of its calls.
pub struct Meta {
    pub id: String,
    pub created: u64,
    /// The model, as a JSON string literal.
    pub model: String,
    /// The id of each tool call, in order.
    pub call_ids: Vec<String>,
}

impl Meta {
    fn new(model: &str, calls: usize) -> Meta {
        Meta {
            id: format!("chatcmpl-mock{}", random_suffix(24)),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            model: string(model),
            call_ids: (0..calls)
                .map(|_| format!("call_{}", random_suffix(24)))
                .collect(),
        }
    }
}

/// `POST /v1/chat/completions`.
pub fn chat_completions(
    body: &[u8],
    fault: Option<&str>,
    directives: &Directives,
    shape: &Shape,
) -> Result<Reply, ApiError> {
    let chat = request::read(body)?;
    let script = script::derive(&chat.ask, directives).shaped(shape, chat.stream);
    let meta = Meta::new(&chat.ask.model, script.calls.len());
    if !chat.stream {
        return Ok(ok_json(completion(&script, &meta, directives.quirks)));
    }
    if script.stamped {
        super::shape::check_stream(
            script.pieces.len(),
            script.pieces.first().map_or(0, String::len),
            stream::delta_overhead(&meta),
        )?;
    }
    Ok(stream::reply(
        &script,
        &meta,
        directives.quirks,
        chat.include_usage,
        StreamFault::of(fault),
    ))
}

/// The `finish_reason` for a stop, and vLLM's `stop_reason` (the stop string that was hit).
pub fn finish_reason(stop: &Stop) -> (&str, Option<&str>) {
    match stop {
        Stop::End => ("stop", None),
        Stop::MaxTokens => ("length", None),
        Stop::StopSequence(s) => ("stop", Some(s)),
        Stop::ToolCalls => ("tool_calls", None),
        Stop::Forced(reason) => (reason, None),
    }
}

/// The `usage` object of an answer.
pub fn usage(script: &Script) -> String {
    let (prompt, completion) = (script.input_tokens, script.output_tokens);
    format!(
        "{{\"prompt_tokens\":{prompt},\"completion_tokens\":{completion},\"total_tokens\":{},\
         \"prompt_tokens_details\":{{\"cached_tokens\":0}},\
         \"completion_tokens_details\":{{\"reasoning_tokens\":{}}}}}",
        prompt + completion,
        script.reasoning.len()
    )
}

/// The name reasoning goes by (`reasoning-field`: vLLM's and OpenRouter's).
pub fn reasoning_key(quirks: Quirks) -> &'static str {
    match quirks.has(Quirk::ReasoningField) {
        true => "reasoning",
        false => "reasoning_content",
    }
}

/// A whole `chat.completion`.
pub fn completion(script: &Script, meta: &Meta, quirks: Quirks) -> String {
    let text = script.text();
    let mut message = String::from("{\"role\":\"assistant\",\"content\":");
    match text.is_empty() && !script.calls.is_empty() {
        true => message.push_str("null"),
        false => push_str(&mut message, &text),
    }
    message.push_str(",\"refusal\":null");
    if !script.reasoning.is_empty() {
        message.push_str(&format!(",\"{}\":", reasoning_key(quirks)));
        push_str(&mut message, &script.reasoning_text());
    }
    if !script.calls.is_empty() {
        message.push_str(",\"tool_calls\":[");
        for (i, call) in script.calls.iter().enumerate() {
            if i > 0 {
                message.push(',');
            }
            message.push_str(&format!(
                "{{\"id\":\"{}\",\"type\":\"function\",\"function\":{{\"name\":{},\"arguments\":{}}}}}",
                meta.call_ids[i],
                string(&call.name),
                string(&call.arguments)
            ));
        }
        message.push(']');
    }
    message.push('}');
    let (finish, stop_reason) = finish_reason(&script.stop);
    format!(
        "{{\"id\":\"{}\",\"object\":\"chat.completion\",\"created\":{},\"model\":{},\
         \"choices\":[{{\"index\":0,\"message\":{message},\"logprobs\":null,\
         \"finish_reason\":{}{}}}],\"usage\":{}}}",
        meta.id,
        meta.created,
        meta.model,
        string(finish),
        stop_reason.map_or(String::new(), |s| format!(",\"stop_reason\":{}", string(s))),
        usage(script)
    )
}

/// An error in OpenAI's shape: `{"error":{"message","type","param","code"}}`, with the status
/// and words OpenAI uses for that kind of error.
pub fn error(e: &ApiError) -> Reply {
    let (status, kind, code) = match e.kind {
        ErrorType::Authentication => (401, "invalid_request_error", Some("invalid_api_key")),
        ErrorType::Permission => (403, "request_forbidden", Some("permission_denied")),
        ErrorType::RateLimit => (429, "requests", Some("rate_limit_exceeded")),
        ErrorType::Overloaded => (503, "server_error", Some("overloaded")),
        ErrorType::Api => (e.status, "server_error", None),
        _ => (e.status, "invalid_request_error", None),
    };
    let mut body = String::from("{\"error\":{\"message\":");
    push_str(&mut body, &e.message);
    body.push_str(&format!(
        ",\"type\":\"{kind}\",\"param\":null,\"code\":{}}}}}",
        code.map_or("null".to_string(), string)
    ));
    let mut headers = Vec::new();
    if let Some(secs) = e.retry_after {
        headers.push(("retry-after", secs.to_string()));
    }
    Reply::Json {
        status,
        body,
        headers,
    }
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
