//! The mock's answers in the Gemini API's dialect: `generateContent`, `streamGenerateContent`
//! (as Server-Sent Events) and `countTokens` under `/v1beta/models/{model}`.
//!
//! The request is checked like the API checks it ([`request`]), the answer derived
//! ([`super::script`]) and written as a `GenerateContentResponse`, or as a stream of them
//! ([`render`]). Errors are Google's `{"error":{"code","message","status"}}`, with the statuses
//! the API uses (a bad key is a 400 `INVALID_ARGUMENT` with the reason `API_KEY_INVALID`).

pub mod render;
pub mod request;

use super::answers::{ok_json, Reply};
use super::anthropic::random_suffix;
use super::directives::Directives;
use super::faults::StreamFault;
use super::script;
use super::shape::Shape;
use crate::http::{ApiError, ErrorType};
use crate::json::write::push_str;

/// One of the model's methods, as a path names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The model, its path segment decoded.
    pub model: String,
    pub method: Method,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Generate,
    /// `streamGenerateContent`; `sse` when the query asks for `alt=sse`.
    Stream {
        sse: bool,
    },
    CountTokens,
}

impl Call {
    /// The call `/v1beta/models/{model}:{method}` names, if it is one.
    pub fn of(path: &str, query: &str) -> Option<Call> {
        let rest = path.strip_prefix("/v1beta/models/")?;
        let (segment, method) = rest.rsplit_once(':')?;
        let model = super::answers::model_segment(segment)?;
        if model.contains('/') {
            return None;
        }
        let method = match method {
            "generateContent" => Method::Generate,
            "streamGenerateContent" => Method::Stream {
                sse: query.split('&').any(|p| p == "alt=sse"),
            },
            "countTokens" => Method::CountTokens,
            _ => return None,
        };
        Some(Call { model, method })
    }
}

/// Answers one call.
pub fn answer(
    call: &Call,
    body: &[u8],
    fault: Option<&str>,
    directives: &Directives,
    shape: &Shape,
) -> Result<Reply, ApiError> {
    let stream =
        match call.method {
            Method::CountTokens => {
                let n = request::count(body)?;
                return Ok(ok_json(format!(
                    "{{\"totalTokens\":{n},\"promptTokensDetails\":[{{\"modality\":\"TEXT\",\
                 \"tokenCount\":{n}}}]}}"
                )));
            }
            Method::Stream { sse: false } => return Err(ApiError::invalid_request(
                "mock: streamGenerateContent is served as Server-Sent Events only; add ?alt=sse"
                    .into(),
            )),
            Method::Stream { sse: true } => true,
            Method::Generate => false,
        };
    let ask = request::read(body, &call.model)?;
    let script = script::derive(&ask, directives).shaped(shape, stream);
    let meta = render::Meta::new(&call.model);
    if !stream {
        return Ok(ok_json(render::response(&script, &meta, directives.quirks)));
    }
    if script.stamped {
        super::shape::check_stream(
            script.pieces.len(),
            script.pieces.first().map_or(0, String::len),
            render::delta_overhead(&meta),
        )?;
    }
    Ok(render::stream(
        &script,
        &meta,
        directives.quirks,
        StreamFault::of(fault),
    ))
}

impl render::Meta {
    fn new(model: &str) -> render::Meta {
        render::Meta {
            response_id: random_suffix(22),
            model: crate::json::write::string(model),
        }
    }
}

/// The HTTP status and Google status name for a kind of error.
fn status_of(e: &ApiError) -> (u16, &'static str) {
    match e.kind {
        ErrorType::InvalidRequest | ErrorType::RequestTooLarge => (400, "INVALID_ARGUMENT"),
        // The API answers a bad key with a 400, not a 401.
        ErrorType::Authentication => (400, "INVALID_ARGUMENT"),
        ErrorType::Permission => (403, "PERMISSION_DENIED"),
        ErrorType::NotFound => (404, "NOT_FOUND"),
        ErrorType::Billing => (400, "FAILED_PRECONDITION"),
        ErrorType::RateLimit => (429, "RESOURCE_EXHAUSTED"),
        ErrorType::Overloaded => (503, "UNAVAILABLE"),
        ErrorType::Timeout => (504, "DEADLINE_EXCEEDED"),
        ErrorType::Api => (500, "INTERNAL"),
    }
}

/// An error in Google's shape, `{"error":{"code","message","status"}}`, with the `details` the
/// API adds to a bad key (`API_KEY_INVALID`) and to a rate limit (a retry delay).
pub fn error(e: &ApiError) -> Reply {
    let (status, name) = status_of(e);
    let mut body = format!("{{\"error\":{{\"code\":{status},\"message\":");
    push_str(&mut body, &e.message);
    body.push_str(&format!(",\"status\":\"{name}\""));
    let mut headers = Vec::new();
    match e.kind {
        ErrorType::Authentication => body.push_str(
            ",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\",\
             \"reason\":\"API_KEY_INVALID\",\"domain\":\"googleapis.com\",\
             \"metadata\":{\"service\":\"generativelanguage.googleapis.com\"}}]",
        ),
        ErrorType::RateLimit => {
            let secs = e.retry_after.unwrap_or(1);
            body.push_str(&format!(
                ",\"details\":[{{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\
                 \"retryDelay\":\"{secs}s\"}}]"
            ));
        }
        _ => {}
    }
    if let Some(secs) = e.retry_after {
        headers.push(("retry-after", secs.to_string()));
    }
    body.push_str("}}");
    Reply::Json {
        status,
        body,
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_calls() {
        let call = Call::of("/v1beta/models/gemini-2.5-pro:generateContent", "").unwrap();
        assert_eq!(call.model, "gemini-2.5-pro");
        assert_eq!(call.method, Method::Generate);
        let call = Call::of(
            "/v1beta/models/a%2Eb%20c:streamGenerateContent",
            "x=1&alt=sse",
        );
        assert_eq!(
            call,
            Some(Call {
                model: "a.b c".into(),
                method: Method::Stream { sse: true }
            })
        );
        let call = Call::of("/v1beta/models/m:streamGenerateContent", "alt=json").unwrap();
        assert_eq!(call.method, Method::Stream { sse: false });
        assert_eq!(
            Call::of("/v1beta/models/m:countTokens", "").unwrap().method,
            Method::CountTokens
        );
        for bad in [
            "/v1beta/models/m:embedContent",
            "/v1beta/models/:generateContent",
            "/v1beta/models/m",
            "/v1/models/m:generateContent",
            "/v1beta/models/a/b:generateContent",
        ] {
            assert_eq!(Call::of(bad, ""), None, "{bad}");
        }
    }

    fn json_of(r: Reply) -> (u16, serde_json::Value, Vec<(&'static str, String)>) {
        let Reply::Json {
            status,
            body,
            headers,
        } = r
        else {
            panic!("not JSON")
        };
        (status, serde_json::from_str(&body).unwrap(), headers)
    }

    #[test]
    fn errors_have_googles_shape_and_statuses() {
        for (fault, status, name) in [
            ("rate_limit", 429, "RESOURCE_EXHAUSTED"),
            ("overloaded", 503, "UNAVAILABLE"),
            ("server_error", 500, "INTERNAL"),
            ("auth", 400, "INVALID_ARGUMENT"),
            ("permission", 403, "PERMISSION_DENIED"),
        ] {
            let e = super::super::faults::error_fault(fault).unwrap();
            let (got, v, headers) = json_of(error(&e));
            assert_eq!(got, status, "{fault}");
            assert_eq!(v["error"]["code"], status, "{fault}");
            assert_eq!(v["error"]["status"], name, "{fault}");
            assert!(v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("mock: "));
            assert_eq!(
                headers.contains(&("retry-after", "1".into())),
                fault == "rate_limit"
            );
        }
        let e = super::super::faults::error_fault("auth").unwrap();
        let (_, v, _) = json_of(error(&e));
        assert_eq!(v["error"]["details"][0]["reason"], "API_KEY_INVALID");
    }

    #[test]
    fn count_tokens_counts_either_body() {
        let call = Call::of("/v1beta/models/m:countTokens", "").unwrap();
        let plain = br#"{"contents":[{"role":"user","parts":[{"text":"12345678"}]}]}"#;
        let wrapped = br#"{"generateContentRequest":{"model":"models/m","contents":[{"role":"user","parts":[{"text":"12345678"}]}],"systemInstruction":{"parts":[{"text":"1234"}]}}}"#;
        for (body, n) in [(&plain[..], 2), (&wrapped[..], 3)] {
            let r = answer(&call, body, None, &Directives::default(), &Shape::default()).unwrap();
            let (status, v, _) = json_of(r);
            assert_eq!((status, v["totalTokens"].as_u64()), (200, Some(n)));
        }
    }

    #[test]
    fn a_stream_needs_alt_sse() {
        let call = Call::of("/v1beta/models/m:streamGenerateContent", "").unwrap();
        let body = br#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#;
        let e = answer(&call, body, None, &Directives::default(), &Shape::default()).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("alt=sse"), "{}", e.message);
    }
}
