//! Errors the gateway answers itself, in the shape the Anthropic API and its SDKs expect.
//!
//! Clients turn `{"type":"error","error":{"type":…,"message":…}}` plus the status into typed
//! exceptions, so every error ringgate produces uses exactly that shape, the status that goes with
//! its type, and a message that says what to do. Messages are written by the gateway, never copied
//! from secrets or request bodies.

use std::borrow::Cow;

use super::response::ResponseHead;
use crate::json::write as json;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    InvalidRequest,
    Authentication,
    Permission,
    NotFound,
    RequestTooLarge,
    Billing,
    RateLimit,
    Api,
    Overloaded,
    Timeout,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::InvalidRequest => "invalid_request_error",
            ErrorType::Authentication => "authentication_error",
            ErrorType::Permission => "permission_error",
            ErrorType::NotFound => "not_found_error",
            ErrorType::RequestTooLarge => "request_too_large",
            ErrorType::Billing => "billing_error",
            ErrorType::RateLimit => "rate_limit_error",
            ErrorType::Api => "api_error",
            ErrorType::Overloaded => "overloaded_error",
            ErrorType::Timeout => "timeout_error",
        }
    }
}

/// An error response the gateway produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub kind: ErrorType,
    pub message: Cow<'static, str>,
    /// For 405: the methods the path accepts.
    pub allow: Option<&'static str>,
    /// For 429: seconds until a retry may succeed.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: u16, kind: ErrorType, message: Cow<'static, str>) -> ApiError {
        ApiError {
            status,
            kind,
            message,
            allow: None,
            retry_after: None,
        }
    }

    pub fn invalid_request(message: Cow<'static, str>) -> ApiError {
        Self::new(400, ErrorType::InvalidRequest, message)
    }

    pub fn head_too_large(message: String) -> ApiError {
        Self::new(431, ErrorType::RequestTooLarge, message.into())
    }

    /// A path the gateway does not serve; `served` lists what it does.
    pub fn not_found_served(path: &str, served: &str) -> ApiError {
        let mut shown: String = path.chars().take(200).collect();
        if shown.len() < path.len() {
            shown.push('…');
        }
        Self::new(
            404,
            ErrorType::NotFound,
            format!("not found: {shown}; ringgate serves {served}").into(),
        )
    }

    pub fn method_not_allowed(allow: &'static str) -> ApiError {
        ApiError {
            allow: Some(allow),
            ..Self::new(
                405,
                ErrorType::InvalidRequest,
                format!("method not allowed; this path accepts {allow}").into(),
            )
        }
    }

    pub fn bad_gateway(message: String) -> ApiError {
        Self::new(502, ErrorType::Api, message.into())
    }

    pub fn gateway_timeout(message: String) -> ApiError {
        Self::new(504, ErrorType::Timeout, message.into())
    }

    /// The JSON body, e.g. `{"type":"error","error":{…},"request_id":"req_…"}`.
    pub fn body(&self, request_id: &str) -> String {
        let mut b = String::with_capacity(96 + self.message.len());
        b.push_str("{\"type\":\"error\",\"error\":{\"type\":\"");
        b.push_str(self.kind.as_str());
        b.push_str("\",\"message\":");
        json::push_str(&mut b, &self.message);
        b.push_str("},\"request_id\":");
        json::push_str(&mut b, request_id);
        b.push('}');
        b
    }

    /// The same error as an in-band Server-Sent Event, for a stream that has already started.
    pub fn stream_event(&self) -> String {
        let mut e = String::with_capacity(96 + self.message.len());
        e.push_str("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"");
        e.push_str(self.kind.as_str());
        e.push_str("\",\"message\":");
        json::push_str(&mut e, &self.message);
        e.push_str("}}\n\n");
        e
    }

    /// The whole HTTP response: head and body.
    pub fn to_response(&self, request_id: &str, keep_alive: bool) -> Vec<u8> {
        self.to_response_with(request_id, keep_alive, "")
    }

    /// The response, with `extra` header lines (a limited key's rate-limit headers).
    pub fn to_response_with(&self, request_id: &str, keep_alive: bool, extra: &str) -> Vec<u8> {
        let mut head = ResponseHead::json(self.status, request_id, keep_alive);
        head.lines(extra);
        if let Some(allow) = self.allow {
            head.header("allow", allow.as_bytes());
        }
        if let Some(secs) = self.retry_after {
            head.header("retry-after", secs.to_string().as_bytes());
        }
        head.finish_with_body(self.body(request_id).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_shape() {
        let e = ApiError::not_found_served("/nope", "/v1/messages");
        let body = e.body("req_1");
        assert!(body.starts_with("{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\",\"message\":\"not found: /nope"));
        assert!(body.ends_with(",\"request_id\":\"req_1\"}"));
        let resp = String::from_utf8(e.to_response("req_1", false)).unwrap();
        assert!(resp.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(resp.contains("\r\nconnection: close\r\n"));
        assert!(resp.contains(&format!("\r\ncontent-length: {}\r\n", body.len())));
        assert!(resp.ends_with(&body));
    }

    #[test]
    fn stream_event_shape() {
        let e = ApiError::bad_gateway("cut \"short\"".into()).stream_event();
        assert_eq!(e, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"cut \\\"short\\\"\"}}\n\n");
    }

    #[test]
    fn method_not_allowed_names_allow() {
        let resp =
            String::from_utf8(ApiError::method_not_allowed("POST").to_response("r", true)).unwrap();
        assert!(resp.starts_with("HTTP/1.1 405 "));
        assert!(resp.contains("\r\nallow: POST\r\n"));
        assert!(resp.contains("invalid_request_error"));
    }
}
