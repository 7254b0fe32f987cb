//! The mock's answers as Claude on AWS Bedrock: `POST /model/{id}/invoke`,
//! `/model/{id}/invoke-with-response-stream` and `/model/{id}/count-tokens`.
//!
//! The body is checked as Bedrock checks it (an object, `anthropic_version` of Bedrock's, no
//! `model` nor `stream`: the path says those), then answered by the Anthropic mock with the
//! path's model; counting is refused for Claude 3 models, as Bedrock refuses it for some. Streams go as AWS event-stream frames: each Anthropic event base64-encoded in a
//! `chunk` frame with padding, `message_stop` carrying Bedrock's invocation metrics, an error
//! as an `exception` frame. Errors are Bedrock's `{"message"}` with `X-Amzn-ErrorType`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::answers::{ok_json, Reply};
use super::anthropic;
use super::shape::Shape;
use crate::dialect::bedrock::request::VERSION;
use crate::http::{ApiError, ErrorType};
use crate::json::write::push_str;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Invoke,
    Stream,
    Count,
}

/// What a Bedrock path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The model id, its path segment decoded.
    pub model: String,
    pub method: Method,
}

impl Call {
    pub fn of(path: &str) -> Option<Call> {
        let (segment, verb) = path.strip_prefix("/model/")?.split_once('/')?;
        let method = match verb {
            "invoke" => Method::Invoke,
            "invoke-with-response-stream" => Method::Stream,
            "count-tokens" => Method::Count,
            _ => return None,
        };
        let model = super::answers::model_segment(segment)?;
        Some(Call { model, method })
    }
}

fn validation(message: String) -> ApiError {
    ApiError::invalid_request(message.into())
}

/// Answers one call.
pub fn answer(
    call: &Call,
    body: &[u8],
    fault: Option<&str>,
    shape: &Shape,
) -> Result<Reply, ApiError> {
    if call.method == Method::Count {
        // Like Bedrock, it counts for the newer models only.
        if call.model.contains("claude-3-") {
            return Err(validation(
                "The provided model doesn't support counting tokens.".into(),
            ));
        }
        let inner = counted_body(body)?;
        let anthropic = invoke_body(&inner, &call.model, false)?;
        return match anthropic::count_tokens(&anthropic)? {
            Reply::Json { body, .. } => {
                let n: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                Ok(ok_json(format!(
                    "{{\"inputTokens\":{}}}",
                    n["input_tokens"]
                )))
            }
            other => Ok(other),
        };
    }
    let stream = call.method == Method::Stream;
    let anthropic = invoke_body(body, &call.model, stream)?;
    match anthropic::messages(&anthropic, fault, shape)? {
        Reply::Stream {
            events,
            delivery,
            stamped,
            stamp_offset,
        } => Ok(Reply::Frames {
            events,
            delivery,
            stamped,
            stamp_offset,
        }),
        whole => Ok(whole),
    }
}

/// The InvokeModel body inside a CountTokens request.
fn counted_body(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| validation("the request body is not valid JSON".into()))?;
    let encoded = v["input"]["invokeModel"]["body"]
        .as_str()
        .ok_or_else(|| validation("input.invokeModel.body: a base64 string is required".into()))?;
    STANDARD
        .decode(encoded)
        .map_err(|_| validation("input.invokeModel.body: not base64".into()))
}

/// An Anthropic Messages body for the Anthropic mock, from a Bedrock one checked as Bedrock does.
fn invoke_body(body: &[u8], model: &str, stream: bool) -> Result<Vec<u8>, ApiError> {
    let mut members = anthropic::provider_body(body, VERSION)?;
    for key in ["model", "stream"] {
        if members.contains_key(key) {
            return Err(validation(format!(
                "extraneous key [{key}] is not permitted"
            )));
        }
    }
    if let Some(meta) = members.get("metadata").and_then(|m| m.as_object()) {
        if let Some(key) = meta.keys().find(|k| *k != "user_id") {
            return Err(validation(format!(
                "metadata.{key}: Extra inputs are not permitted"
            )));
        }
    }
    members.insert("model".into(), model.into());
    members.insert("stream".into(), stream.into());
    Ok(serde_json::to_vec(&members).unwrap_or_default())
}

/// Bedrock's name and status for a kind of error.
fn exception_of(kind: ErrorType) -> (u16, &'static str) {
    match kind {
        ErrorType::InvalidRequest | ErrorType::Billing | ErrorType::RequestTooLarge => {
            (400, "ValidationException")
        }
        ErrorType::Authentication => (403, "UnrecognizedClientException"),
        ErrorType::Permission => (403, "AccessDeniedException"),
        ErrorType::NotFound => (404, "ResourceNotFoundException"),
        ErrorType::RateLimit => (429, "ThrottlingException"),
        ErrorType::Overloaded => (503, "ServiceUnavailableException"),
        ErrorType::Timeout => (408, "ModelTimeoutException"),
        ErrorType::Api => (500, "InternalServerException"),
    }
}

/// An error as Bedrock writes one: `{"message"}`, its type in `X-Amzn-ErrorType`.
pub fn error(e: &ApiError) -> Reply {
    let (status, name) = exception_of(e.kind);
    let mut body = String::from("{\"message\":");
    push_str(&mut body, &e.message);
    body.push('}');
    Reply::Json {
        status,
        body,
        headers: vec![(
            "x-amzn-errortype",
            format!("{name}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
        )],
    }
}

/// The frame that carries one Server-Sent Event of the Anthropic mock.
pub fn frame_of(event: &str) -> Vec<u8> {
    let mut name = "";
    let mut data = String::new();
    for line in event.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            name = v.trim();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.trim_start());
        }
    }
    if name == "error" {
        let v: serde_json::Value = serde_json::from_str(&data).unwrap_or_default();
        let kind = match v["error"]["type"].as_str() {
            Some("overloaded_error") => "serviceUnavailableException",
            Some("rate_limit_error") => "throttlingException",
            _ => "modelStreamErrorException",
        };
        let message = v["error"]["message"]
            .as_str()
            .unwrap_or("error")
            .to_string();
        let payload = serde_json::json!({ "message": message }).to_string();
        return frame(
            &[
                (":exception-type", kind),
                (":content-type", "application/json"),
                (":message-type", "exception"),
            ],
            payload.as_bytes(),
        );
    }
    if name == "message_stop" {
        data = "{\"type\":\"message_stop\",\"amazon-bedrock-invocationMetrics\":{\"inputTokenCount\":9,\
                \"outputTokenCount\":5,\"invocationLatency\":120,\"firstByteLatency\":40}}"
            .into();
    }
    // Bedrock pads chunks so their sizes do not give the text away.
    let padding =
        &"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[..data.len() % 23];
    let payload = format!(
        "{{\"bytes\":\"{}\",\"p\":\"{padding}\"}}",
        STANDARD.encode(data.as_bytes())
    );
    frame(
        &[
            (":event-type", "chunk"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.as_bytes(),
    )
}

/// One event-stream frame with string headers (TRANSLATION.md §3).
pub fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = 12 + h.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::bedrock::eventstream::FrameReader;

    #[test]
    fn paths() {
        let c =
            Call::of("/model/us.anthropic.claude-x-v1%3A0/invoke-with-response-stream").unwrap();
        assert_eq!(
            (c.model.as_str(), c.method),
            ("us.anthropic.claude-x-v1:0", Method::Stream)
        );
        assert_eq!(
            Call::of("/model/m/count-tokens").unwrap().method,
            Method::Count
        );
        assert_eq!(Call::of("/model/m/converse"), None);
        assert_eq!(Call::of("/model//invoke"), None);
    }

    #[test]
    fn the_known_frame() {
        let f = frame(&[], br#"{"foo": "bar"}"#);
        assert_eq!(f[..12], [0, 0, 0, 0x1e, 0, 0, 0, 0, 0xba, 0xf2, 0xf6, 0x8a]);
        assert_eq!(f[f.len() - 4..], [0xae, 0x72, 0x58, 0xe4]);
    }

    #[test]
    fn bodies_are_checked_as_bedrock_does() {
        let ok = format!(
            r#"{{"anthropic_version":"{VERSION}","max_tokens":5,"messages":[{{"role":"user","content":"hi"}}]}}"#
        );
        let call = Call::of("/model/m/invoke").unwrap();
        assert!(matches!(
            answer(&call, ok.as_bytes(), None, &Shape::default()),
            Ok(Reply::Json { status: 200, .. })
        ));
        for bad in [
            ok.replace("\"max_tokens\"", "\"model\":\"x\",\"max_tokens\""),
            ok.replace("\"max_tokens\"", "\"stream\":true,\"max_tokens\""),
            ok.replace(VERSION, "2023-06-01"),
            ok.replace(
                "\"max_tokens\"",
                "\"metadata\":{\"other\":1},\"max_tokens\"",
            ),
        ] {
            let e = answer(&call, bad.as_bytes(), None, &Shape::default()).unwrap_err();
            assert_eq!(e.status, 400, "{bad}");
        }
    }

    #[test]
    fn streams_are_frames_the_reader_reads() {
        let body = format!(
            r#"{{"anthropic_version":"{VERSION}","max_tokens":5,"messages":[{{"role":"user","content":"hi"}}]}}"#
        );
        let call = Call::of("/model/m/invoke-with-response-stream").unwrap();
        let Ok(Reply::Frames { events, .. }) =
            answer(&call, body.as_bytes(), None, &Shape::default())
        else {
            panic!("a stream is frames")
        };
        let mut reader = FrameReader::new(1 << 20);
        let mut kinds = Vec::new();
        for f in events.iter().map(|e| frame_of(e)) {
            reader
                .feed::<String>(&f, |frame| {
                    assert_eq!(frame.event_type(), Some("chunk"));
                    let v: serde_json::Value = serde_json::from_slice(frame.payload()).unwrap();
                    let event = STANDARD.decode(v["bytes"].as_str().unwrap()).unwrap();
                    let event: serde_json::Value = serde_json::from_slice(&event).unwrap();
                    kinds.push(event["type"].as_str().unwrap().to_string());
                    Ok(())
                })
                .unwrap();
        }
        assert_eq!(kinds.first().map(String::as_str), Some("message_start"));
        assert_eq!(kinds.last().map(String::as_str), Some("message_stop"));
    }
}
