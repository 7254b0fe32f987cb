//! The mock's answers in the Anthropic dialect: the Messages API's paths, bodies and events.
//!
//! Answers are deterministic for a given request (the same text whether streamed or not, the
//! words of [`super::script::echo_words`]), validate the fields the real API requires, and bend
//! as [`super::faults`] says when told to fail. A benchmark can ask for answers of a given size
//! instead (see [`super::shape`]).

use simd_json::prelude::*;
use simd_json::BorrowedValue;

use super::answers::{ok_json, Reply};
use super::faults::{self, StreamFault, BIG_EVENT_TEXT, ERROR_IN_STREAM};
use super::script::{echo_words, estimate_tokens};
use super::shape::{self, Shape};
use crate::http::{ApiError, ErrorType};
use crate::json::write as json;

/// The models the mock knows, as `(id, display name, created_at)`.
pub const MODELS: &[(&str, &str, &str)] = &[
    (
        "claude-opus-4-1-20250805",
        "Claude Opus 4.1",
        "2025-08-05T00:00:00Z",
    ),
    (
        "claude-sonnet-4-5-20250929",
        "Claude Sonnet 4.5",
        "2025-09-29T00:00:00Z",
    ),
    (
        "claude-haiku-4-5-20251001",
        "Claude Haiku 4.5",
        "2025-10-01T00:00:00Z",
    ),
];

/// An error reply in the API's shape.
pub fn error(e: &ApiError) -> Reply {
    let mut headers = Vec::new();
    if let Some(secs) = e.retry_after {
        headers.push(("retry-after", secs.to_string()));
    }
    if let Some(allow) = e.allow {
        headers.push(("allow", allow.to_string()));
    }
    Reply::Json {
        status: e.status,
        body: e.body(&request_id()),
        headers,
    }
}

fn invalid(message: &str) -> ApiError {
    ApiError::invalid_request(message.to_string().into())
}

/// The fields of a Messages request the mock uses.
struct Parsed {
    model: String,
    max_tokens: u64,
    stream: bool,
    last_user_text: String,
    input_tokens: u64,
}

fn parse(body: &[u8], need_max_tokens: bool) -> Result<Parsed, ApiError> {
    let mut copy = body.to_vec();
    let doc: BorrowedValue<'_> = simd_json::to_borrowed_value(&mut copy)
        .map_err(|e| invalid(&format!("the request body is not valid JSON: {e}")))?;
    if doc.as_object().is_none() {
        return Err(invalid("the request body must be a JSON object"));
    }
    let model = match doc.get("model") {
        None => return Err(invalid("model: Field required")),
        Some(m) => m
            .as_str()
            .ok_or_else(|| invalid("model: Input should be a valid string"))?,
    };
    let max_tokens = match doc.get("max_tokens") {
        None if need_max_tokens => return Err(invalid("max_tokens: Field required")),
        None => 0,
        Some(v) => v
            .as_u64()
            .filter(|&n| n >= 1)
            .ok_or_else(|| invalid("max_tokens: Input should be a positive integer"))?,
    };
    let messages = match doc.get("messages") {
        None => return Err(invalid("messages: Field required")),
        Some(m) => m
            .as_array()
            .ok_or_else(|| invalid("messages: Input should be a valid list"))?,
    };
    if messages.is_empty() {
        return Err(invalid("messages: at least one message is required"));
    }
    let mut all_text_len = doc.get("system").map_or(0, |s| text_of(s).len());
    let mut last_user_text = String::new();
    for m in messages {
        let role = m.get("role").and_then(|r| r.as_str());
        // Newer Claude Code sends `system` messages among the turns; the API takes them.
        if !matches!(role, Some("user" | "assistant" | "system")) {
            return Err(invalid(
                "messages: each message needs a role of \"user\", \"assistant\" or \"system\"",
            ));
        }
        let text = m.get("content").map(text_of).unwrap_or_default();
        all_text_len += text.len();
        if role == Some("user") {
            last_user_text = text;
        }
    }
    Ok(Parsed {
        model: model.to_string(),
        max_tokens,
        stream: doc.get("stream").and_then(|s| s.as_bool()).unwrap_or(false),
        last_user_text,
        input_tokens: estimate_tokens(all_text_len),
    })
}

/// The text of a `content` value: a string, or the text blocks of a list.
fn text_of(v: &BorrowedValue<'_>) -> String {
    if let Some(s) = v.as_str() {
        return s.to_string();
    }
    v.as_array()
        .map(|blocks| {
            blocks
                .iter()
                .filter_map(|b| b.get("text").and_then(|t| t.as_str()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Whether a Messages request would be answered (`Ok`) or refused, and why; for a batch's
/// requests, whose answers come later.
pub fn check_messages(body: &[u8]) -> Result<(), ApiError> {
    parse(body, true).map(|_| ())
}

/// The words of the reply (see [`echo_words`]) and whether `max_tokens` cut them.
fn reply_words(p: &Parsed) -> (Vec<String>, bool) {
    echo_words(&p.model, &p.last_user_text, Some(p.max_tokens))
}

/// `POST /v1/messages`.
pub fn messages(body: &[u8], fault: Option<&str>, shape: &Shape) -> Result<Reply, ApiError> {
    let p = parse(body, true)?;
    let id = format!("msg_mock{}", random_suffix(20));
    let model = json::string(&p.model);
    if !p.stream {
        let (text, output_tokens, stop_reason) = match shape.reply_bytes {
            Some(bytes) => (shape::reply_text(bytes), bytes.div_ceil(4), "end_turn"),
            None => {
                let (words, cut) = reply_words(&p);
                (words.join(" "), words.len(), stop_reason(cut))
            }
        };
        let text = json::string(&text);
        return Ok(ok_json(format!(
            "{{\"id\":\"{id}\",\"type\":\"message\",\"role\":\"assistant\",\"model\":{model},\
             \"content\":[{{\"type\":\"text\",\"text\":{text}}}],\"stop_reason\":\"{stop_reason}\",\
             \"stop_sequence\":null,\"usage\":{}}}",
            usage(p.input_tokens, output_tokens)
        )));
    }
    let (deltas, stop_reason, stamped) = match shape.stream {
        Some(s) => (
            (0..s.deltas)
                .map(|i| shape::delta_event(i, s.delta_bytes))
                .collect(),
            "end_turn",
            true,
        ),
        None => {
            let (words, cut) = reply_words(&p);
            (echo_deltas(&words), stop_reason(cut), false)
        }
    };
    let output_tokens = deltas.len();
    let mut events = Vec::with_capacity(deltas.len() + 6);
    events.push(event(
        "message_start",
        format!(
            "{{\"type\":\"message_start\",\"message\":{{\"id\":\"{id}\",\"type\":\"message\",\
             \"role\":\"assistant\",\"model\":{model},\"content\":[],\"stop_reason\":null,\
             \"stop_sequence\":null,\"usage\":{}}}}}",
            usage(p.input_tokens, 1)
        ),
    ));
    events.push(event(
        "content_block_start",
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}".into(),
    ));
    events.push(event("ping", "{\"type\": \"ping\"}".into()));
    let first_delta = events.len();
    events.extend(deltas);
    let stamped = if stamped {
        first_delta..events.len()
    } else {
        0..0
    };
    events.push(event(
        "content_block_stop",
        "{\"type\":\"content_block_stop\",\"index\":0}".into(),
    ));
    events.push(event(
        "message_delta",
        format!(
            "{{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"{stop_reason}\",\"stop_sequence\":null}},\
             \"usage\":{{\"output_tokens\":{output_tokens}}}}}"
        ),
    ));
    events.push(event("message_stop", "{\"type\":\"message_stop\"}".into()));
    let fault = StreamFault::of(fault);
    match fault {
        Some(StreamFault::NoEnd) => {
            events.pop();
        }
        Some(StreamFault::BigEvent) => {
            // One delta larger than a relay buffer, just before the block ends.
            let big = format!(
                "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\" {}\"}}}}\n\n",
                "x".repeat(BIG_EVENT_TEXT)
            );
            events.insert(events.len() - 3, big);
        }
        _ => {}
    }
    let text_at = first_delta..first_delta + output_tokens;
    let delivery = faults::bend(&mut events, text_at, fault, || {
        ApiError::new(529, ErrorType::Overloaded, ERROR_IN_STREAM.into()).stream_event()
    });
    Ok(Reply::Stream {
        events,
        delivery,
        stamped,
        stamp_offset: shape::STAMP_OFFSET,
    })
}

fn event(name: &str, data: String) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

fn stop_reason(cut: bool) -> &'static str {
    if cut {
        "max_tokens"
    } else {
        "end_turn"
    }
}

/// The delta events of an echo answer: one word each.
fn echo_deltas(words: &[String]) -> Vec<String> {
    words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let piece = if i == 0 { w.clone() } else { format!(" {w}") };
            format!(
                "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":{}}}}}\n\n",
                json::string(&piece)
            )
        })
        .collect()
}

fn usage(input: u64, output: usize) -> String {
    format!(
        "{{\"input_tokens\":{input},\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":{output}}}"
    )
}

/// The body a cloud provider takes Claude's requests in (Bedrock, Vertex): a JSON object with
/// the provider's `anthropic_version`, checked as the provider checks it.
pub fn provider_body(
    body: &[u8],
    version: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| invalid("the request body is not valid JSON"))?;
    let serde_json::Value::Object(members) = v else {
        return Err(invalid("the request body must be a JSON object"));
    };
    if members.get("anthropic_version").and_then(|v| v.as_str()) != Some(version) {
        return Err(invalid(&format!(
            "anthropic_version: must be \"{version}\""
        )));
    }
    Ok(members)
}

/// `POST /v1/messages/count_tokens`.
pub fn count_tokens(body: &[u8]) -> Result<Reply, ApiError> {
    let p = parse(body, false)?;
    Ok(ok_json(format!("{{\"input_tokens\":{}}}", p.input_tokens)))
}

fn model_json(&(id, name, created): &(&str, &str, &str)) -> String {
    format!("{{\"type\":\"model\",\"id\":\"{id}\",\"display_name\":\"{name}\",\"created_at\":\"{created}\"}}")
}

/// `GET /v1/models`.
pub fn models_list() -> String {
    let data: Vec<String> = MODELS.iter().map(model_json).collect();
    format!(
        "{{\"data\":[{}],\"has_more\":false,\"first_id\":\"{}\",\"last_id\":\"{}\"}}",
        data.join(","),
        MODELS[0].0,
        MODELS[MODELS.len() - 1].0
    )
}

/// `GET /v1/models/{id}`.
pub fn model(id: &str) -> Result<Reply, ApiError> {
    MODELS
        .iter()
        .find(|m| m.0 == id)
        .map(|m| ok_json(model_json(m)))
        .ok_or_else(|| {
            ApiError::new(
                404,
                ErrorType::NotFound,
                format!("model: {}", id.chars().take(100).collect::<String>()).into(),
            )
        })
}

pub fn random_suffix(n: usize) -> String {
    (0..n).map(|_| fastrand::alphanumeric()).collect()
}

/// A request id in the API's style.
pub fn request_id() -> String {
    format!("req_mock{}", random_suffix(20))
}

#[cfg(test)]
#[path = "anthropic_tests.rs"]
mod tests;
