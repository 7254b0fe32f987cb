//! The mock's answers as Claude on Google Vertex AI:
//! `POST /v1/projects/{project}/locations/{region}/publishers/anthropic/models/{model}:rawPredict`
//! (`:streamRawPredict` to stream, `count-tokens:rawPredict` to count).
//!
//! The body is checked as Vertex checks it (an object, Vertex's `anthropic_version`, no `model`
//! but for counting, `stream` agreeing with the verb), then answered by the Anthropic mock with
//! the path's model: answers and streams are the Anthropic API's own. Errors come in the two
//! shapes Vertex uses: the model's own (Anthropic's, for a bad request or an overload) and
//! Google's for the platform's (quota, credentials), a quota error inside an array.

use super::answers::Reply;
use super::anthropic;
use super::shape::Shape;
use crate::dialect::vertex::VERSION;
use crate::http::{ApiError, ErrorType};
use crate::json::write::push_str;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Predict,
    Stream,
    Count,
}

/// What a Vertex path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The model, its path segment decoded (`count-tokens` for a count).
    pub model: String,
    pub method: Method,
}

impl Call {
    pub fn of(path: &str) -> Option<Call> {
        let rest = path.strip_prefix("/v1/projects/")?;
        let mut parts = rest.split('/');
        let (_project, locations, _region) = (parts.next()?, parts.next()?, parts.next()?);
        let tail: Vec<&str> = parts.collect();
        if locations != "locations"
            || tail.len() != 4
            || tail[..3] != ["publishers", "anthropic", "models"]
        {
            return None;
        }
        let (segment, verb) = tail[3].rsplit_once(':')?;
        let model = super::answers::model_segment(segment)?;
        let method = match (model.as_str(), verb) {
            ("count-tokens", "rawPredict") => Method::Count,
            (_, "rawPredict") => Method::Predict,
            (_, "streamRawPredict") => Method::Stream,
            _ => return None,
        };
        Some(Call { model, method })
    }
}

fn invalid(message: String) -> ApiError {
    ApiError::invalid_request(message.into())
}

/// Answers one call.
pub fn answer(
    call: &Call,
    body: &[u8],
    fault: Option<&str>,
    shape: &Shape,
) -> Result<Reply, ApiError> {
    let mut members = anthropic::provider_body(body, VERSION)?;
    if call.method == Method::Count {
        if !members.contains_key("model") {
            return Err(invalid("model: Field required".into()));
        }
        return anthropic::count_tokens(&serde_json::to_vec(&members).unwrap_or_default());
    }
    if members.contains_key("model") {
        return Err(invalid(
            "model: the path names the model; the body must not".into(),
        ));
    }
    let stream = members
        .get("stream")
        .and_then(|s| s.as_bool())
        .unwrap_or(false);
    if stream != (call.method == Method::Stream) {
        return Err(invalid(format!(
            "stream: {stream} does not agree with the method; stream with :streamRawPredict"
        )));
    }
    members.insert("model".into(), call.model.clone().into());
    anthropic::messages(
        &serde_json::to_vec(&members).unwrap_or_default(),
        fault,
        shape,
    )
}

/// An error in the shape Vertex gives it.
pub fn error(e: &ApiError) -> Reply {
    let (status, name) = match e.kind {
        // The model's own errors pass through as the Anthropic API writes them.
        ErrorType::InvalidRequest | ErrorType::Overloaded | ErrorType::RequestTooLarge => {
            return anthropic::error(e)
        }
        ErrorType::Authentication => (401, "UNAUTHENTICATED"),
        ErrorType::Permission => (403, "PERMISSION_DENIED"),
        ErrorType::NotFound => (404, "NOT_FOUND"),
        ErrorType::RateLimit => (429, "RESOURCE_EXHAUSTED"),
        ErrorType::Timeout => (504, "DEADLINE_EXCEEDED"),
        ErrorType::Billing => (400, "FAILED_PRECONDITION"),
        ErrorType::Api => (500, "INTERNAL"),
    };
    let mut body = format!("{{\"error\":{{\"code\":{status},\"message\":");
    push_str(&mut body, &e.message);
    body.push_str(&format!(",\"status\":\"{name}\"}}}}"));
    if status == 429 {
        // Quota errors come as an array of one.
        body = format!("[{body}]");
    }
    Reply::Json {
        status,
        body,
        headers: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/v1/projects/p/locations/us-east5/publishers/anthropic/models/";

    #[test]
    fn paths() {
        let c = Call::of(&format!("{P}claude-x%4020250929:streamRawPredict")).unwrap();
        assert_eq!(
            (c.model.as_str(), c.method),
            ("claude-x@20250929", Method::Stream)
        );
        assert_eq!(
            Call::of(&format!("{P}count-tokens:rawPredict"))
                .unwrap()
                .method,
            Method::Count
        );
        assert_eq!(Call::of(&format!("{P}m:predict")), None);
        assert_eq!(
            Call::of("/v1/projects/p/locations/r/publishers/google/models/m:rawPredict"),
            None
        );
    }

    #[test]
    fn bodies_are_checked_as_vertex_does() {
        let ok = format!(
            r#"{{"anthropic_version":"{VERSION}","max_tokens":5,"messages":[{{"role":"user","content":"hi"}}]}}"#
        );
        let call = Call::of(&format!("{P}m:rawPredict")).unwrap();
        assert!(matches!(
            answer(&call, ok.as_bytes(), None, &Shape::default()),
            Ok(Reply::Json { status: 200, .. })
        ));
        let streaming = ok.replace("\"max_tokens\"", "\"stream\":true,\"max_tokens\"");
        let stream = Call::of(&format!("{P}m:streamRawPredict")).unwrap();
        assert!(matches!(
            answer(&stream, streaming.as_bytes(), None, &Shape::default()),
            Ok(Reply::Stream { .. })
        ));
        for (call, bad) in [
            (
                &call,
                ok.replace("\"max_tokens\"", "\"model\":\"x\",\"max_tokens\""),
            ),
            (&call, streaming.clone()),
            (&call, ok.replace(VERSION, "bedrock-2023-05-31")),
        ] {
            assert_eq!(
                answer(call, bad.as_bytes(), None, &Shape::default())
                    .unwrap_err()
                    .status,
                400,
                "{bad}"
            );
        }
    }

    #[test]
    fn quota_errors_come_in_an_array() {
        let e = super::super::faults::error_fault("rate_limit").unwrap();
        let Reply::Json { status, body, .. } = error(&e) else {
            panic!()
        };
        assert_eq!(status, 429);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v[0]["error"]["status"], "RESOURCE_EXHAUSTED");
    }
}
