//! Upstream errors as Anthropic errors: the type that goes with the status, and the upstream's
//! own message, in the body the SDKs turn into their typed exceptions.
//!
//! Servers word errors in many shapes: OpenAI's `{"error":{"message","type","code"}}`, vLLM's
//! flat `{"object":"error","message"}`, FastAPI's `{"detail"}`, Ollama's `{"error":"text"}`,
//! Google's `{"error":{"code","message","status"}}`, sometimes inside an array. The message is
//! looked for in each; a body that is none of them (an HTML page from a proxy on the way) gives a
//! message of the gateway's own. The type comes from Google's `status` where there is one (it is
//! more precise than the HTTP status), else from the HTTP status (TRANSLATION.md §1, §2).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::events::EventWriter;
use super::Context;
use crate::http::ErrorType;
use crate::stream::translate::Translate;

/// The most bytes of an error body read for its message; the rest is read and dropped.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// The most characters of an upstream's message passed on.
const MAX_MESSAGE: usize = 2_000;

/// The Anthropic error type for an upstream's HTTP status.
pub fn type_of_status(status: u16) -> ErrorType {
    match status {
        401 => ErrorType::Authentication,
        402 => ErrorType::Billing,
        403 => ErrorType::Permission,
        404 => ErrorType::NotFound,
        413 => ErrorType::RequestTooLarge,
        429 => ErrorType::RateLimit,
        504 => ErrorType::Timeout,
        529 => ErrorType::Overloaded,
        400..=499 => ErrorType::InvalidRequest,
        _ => ErrorType::Api,
    }
}

/// The Anthropic error type for a Google RPC status name, if it is one.
pub fn type_of_google_status(status: &str) -> Option<ErrorType> {
    Some(match status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => ErrorType::InvalidRequest,
        "UNAUTHENTICATED" => ErrorType::Authentication,
        "PERMISSION_DENIED" => ErrorType::Permission,
        "NOT_FOUND" => ErrorType::NotFound,
        "RESOURCE_EXHAUSTED" => ErrorType::RateLimit,
        "UNAVAILABLE" => ErrorType::Overloaded,
        "DEADLINE_EXCEEDED" => ErrorType::Timeout,
        "INTERNAL" | "UNKNOWN" | "DATA_LOSS" => ErrorType::Api,
        _ => return None,
    })
}

/// The Anthropic error type for an error an upstream sent inside a stream: its Google status,
/// its HTTP-like code, or words in its OpenAI-style type.
pub fn type_of_stream_error(found: &Found<'_>) -> ErrorType {
    if let Some(t) = found.status.as_deref().and_then(type_of_google_status) {
        return t;
    }
    if let Some(code) = found.code.filter(|c| (400..600).contains(c)) {
        return type_of_status(code);
    }
    let kind = found.kind.as_deref().unwrap_or("");
    if kind.contains("rate_limit") || kind.contains("quota") {
        ErrorType::RateLimit
    } else if kind.contains("overloaded") || kind.contains("unavailable") {
        ErrorType::Overloaded
    } else if kind.contains("invalid_request") || kind.contains("bad_request") {
        ErrorType::InvalidRequest
    } else if kind.contains("auth") {
        ErrorType::Authentication
    } else {
        ErrorType::Api
    }
}

/// What an error body says.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Found<'a> {
    pub message: Option<Cow<'a, str>>,
    /// OpenAI's `type` (or a string `code`).
    pub kind: Option<Cow<'a, str>>,
    /// Google's `status`.
    pub status: Option<Cow<'a, str>>,
    /// A numeric `code`.
    pub code: Option<u16>,
}

#[derive(Deserialize)]
struct Shape<'a> {
    #[serde(borrow)]
    error: Option<&'a RawValue>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow)]
    detail: Option<&'a RawValue>,
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    code: Option<&'a RawValue>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
}

/// Reads an error body of any of the known shapes; `None` when it is not JSON of one.
pub fn read(body: &[u8]) -> Option<Found<'_>> {
    let text = std::str::from_utf8(body).ok()?.trim();
    let text = match text.strip_prefix('[') {
        // Google sometimes answers with an array of one error.
        Some(_) => serde_json::from_str::<Vec<&RawValue>>(text)
            .ok()?
            .first()?
            .get(),
        None => text,
    };
    let shape: Shape<'_> = serde_json::from_str(text).ok()?;
    let mut found = Found {
        message: shape.message,
        kind: shape.kind,
        status: shape.status,
        code: code_of(shape.code),
    };
    if let Some(inner) = shape.error {
        if let Some(message) = string_of(inner) {
            // Ollama: {"error": "text"}.
            found.message = Some(message);
        } else if let Ok(inner) = serde_json::from_str::<Shape<'_>>(inner.get()) {
            found.message = inner.message.or(found.message);
            found.kind = inner.kind.or(found.kind);
            found.status = inner.status.or(found.status);
            found.code = code_of(inner.code).or(found.code);
            if found.kind.is_none() {
                found.kind = inner.code.and_then(string_of);
            }
        }
    }
    if found.message.is_none() {
        found.message = shape.detail.map(|d| match string_of(d) {
            Some(s) => s,
            None => Cow::Borrowed(d.get()),
        });
    }
    (found.message.is_some() || found.status.is_some()).then_some(found)
}

fn code_of(raw: Option<&RawValue>) -> Option<u16> {
    raw?.get().parse().ok()
}

/// A raw value's string, if it is one.
pub fn string_of(raw: &RawValue) -> Option<Cow<'_, str>> {
    raw.get()
        .starts_with('"')
        .then(|| serde_json::from_str(raw.get()).ok())
        .flatten()
}

/// A message cut to a length fit for an error body.
pub fn bounded(message: &str) -> Cow<'_, str> {
    match message.char_indices().nth(MAX_MESSAGE) {
        Some((at, _)) => Cow::Owned(format!("{}…", &message[..at])),
        None => Cow::Borrowed(message),
    }
}

/// An error object an upstream sent inside a 200 stream (`data`): before anything was sent, a
/// failure the gateway may fail over from; after, an in-band error of the matching type, which
/// ends the client's stream.
pub fn in_stream(events: &mut EventWriter, data: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let found = read(data).unwrap_or_default();
    let message = bounded(
        found
            .message
            .as_deref()
            .unwrap_or("the upstream reported an error"),
    );
    if !events.is_started() {
        return Err(format!("sent an error before its answer began: {message}"));
    }
    events.error(out, type_of_stream_error(&found).as_str(), &message);
    Ok(())
}

/// Why a whole answer that is an error object (some servers send one with a 200) cannot be
/// translated, in words for the relay.
pub fn whole_answer_error(body: &[u8]) -> String {
    let found = read(body).unwrap_or_default();
    let message = found.message.as_deref().unwrap_or("no message");
    format!("answered with an error: {}", bounded(message))
}

/// The stage for an answer with an error status: reads the body (up to a limit) and writes the
/// Anthropic error body when it ends.
pub struct ErrorDecoder {
    context: Context,
    status: u16,
    /// The type the upstream named outside the body (Bedrock's `X-Amzn-ErrorType`).
    named: Option<ErrorType>,
    body: Vec<u8>,
}

impl ErrorDecoder {
    pub fn new(context: Context, status: u16) -> ErrorDecoder {
        ErrorDecoder {
            context,
            status,
            named: None,
            body: Vec::new(),
        }
    }

    /// The decoder of an answer whose type the upstream named in a header.
    pub fn named(mut self, named: Option<ErrorType>) -> ErrorDecoder {
        self.named = named;
        self
    }
}

impl Translate for ErrorDecoder {
    fn feed(&mut self, input: &[u8], _out: &mut Vec<u8>) -> Result<(), String> {
        let room = MAX_ERROR_BODY.saturating_sub(self.body.len());
        self.body.extend_from_slice(&input[..input.len().min(room)]);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let found = read(&self.body).unwrap_or_default();
        let kind = (self.named)
            .or_else(|| found.status.as_deref().and_then(type_of_google_status))
            .unwrap_or_else(|| type_of_status(self.status));
        let message = match &found.message {
            Some(m) if !m.trim().is_empty() => bounded(m),
            _ => Cow::Owned(format!(
                "the upstream answered {} without a message the gateway could read",
                self.status
            )),
        };
        let error = crate::http::ApiError::new(self.status, kind, message.into_owned().into());
        out.extend_from_slice(error.body(&self.context.request_id).as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> serde_json::Value {
        let mut d = ErrorDecoder::new(
            Context {
                request_id: "req_1".into(),
                ..Context::default()
            },
            status,
        );
        let mut out = Vec::new();
        for piece in body.as_bytes().chunks(3) {
            d.feed(piece, &mut out).unwrap();
        }
        d.finish(&mut out).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn every_known_shape_gives_its_message_and_type() {
        for (status, body, kind, message) in [
            (
                429,
                r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
                "rate_limit_error",
                "Rate limit reached",
            ),
            (
                400,
                r#"{"object":"error","message":"max_tokens is too large","type":"BadRequestError","code":400}"#,
                "invalid_request_error",
                "max_tokens is too large",
            ),
            (
                422,
                r#"{"detail":[{"loc":["body"],"msg":"bad"}]}"#,
                "invalid_request_error",
                r#"[{"loc":["body"],"msg":"bad"}]"#,
            ),
            (
                404,
                r#"{"error":"model 'x' not found"}"#,
                "not_found_error",
                "model 'x' not found",
            ),
            (
                503,
                r#"[{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}]"#,
                "overloaded_error",
                "The model is overloaded.",
            ),
            (
                400,
                r#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT"}}"#,
                "invalid_request_error",
                "API key not valid.",
            ),
            (
                402,
                r#"{"error":{"message":"Insufficient credits"}}"#,
                "billing_error",
                "Insufficient credits",
            ),
            (
                500,
                "<html>bad gateway</html>",
                "api_error",
                "the upstream answered 500 without a message the gateway could read",
            ),
        ] {
            let v = answer(status, body);
            assert_eq!(v["type"], "error");
            assert_eq!(v["error"]["type"], kind, "{body}");
            assert_eq!(v["error"]["message"], message, "{body}");
            assert_eq!(v["request_id"], "req_1");
        }
    }

    #[test]
    fn stream_errors_are_typed_by_what_they_say() {
        let t = |body: &str| type_of_stream_error(&read(body.as_bytes()).unwrap());
        assert_eq!(
            t(r#"{"error":{"message":"x","type":"rate_limit_exceeded"}}"#),
            ErrorType::RateLimit
        );
        assert_eq!(t(r#"{"error":{"message":"x","code":502}}"#), ErrorType::Api);
        assert_eq!(
            t(r#"{"error":{"message":"x","code":529}}"#),
            ErrorType::Overloaded
        );
        assert_eq!(
            t(r#"{"error":{"message":"x","status":"RESOURCE_EXHAUSTED","code":429}}"#),
            ErrorType::RateLimit
        );
        assert_eq!(
            t(r#"{"code":"server_error","message":"boom"}"#),
            ErrorType::Api
        );
        assert_eq!(read(b"not json"), None);
        assert_eq!(read(br#"{"choices":[]}"#), None);
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "é".repeat(MAX_MESSAGE + 10);
        assert_eq!(bounded(&long).chars().count(), MAX_MESSAGE + 1);
        assert_eq!(bounded("short"), "short");
    }
}
