//! What the mock upstream answers: each request routed by its path to the dialect that serves
//! it, so one mock stands in for an Anthropic, an OpenAI-compatible and a Gemini upstream.
//!
//! Pure logic, shared by the gateway's built-in mock and the `mock-upstream` load-test server,
//! so there is one idea of "what the API would say". The paths:
//!
//! - Anthropic ([`super::anthropic`]): `POST /v1/messages`, `POST /v1/messages/count_tokens`,
//!   `GET /v1/models`, `GET /v1/models/{id}`; Message Batches and Files, which keep state, are
//!   answered by [`super::objects`] before a request comes here;
//! - OpenAI ([`super::openai`]): `POST /v1/chat/completions`, `POST /chat/completions`;
//! - Gemini ([`super::gemini`]): `POST /v1beta/models/{model}:generateContent`,
//!   `:streamGenerateContent?alt=sse`, `:countTokens`;
//! - Bedrock ([`super::bedrock`]): `POST /model/{id}/invoke`, `/invoke-with-response-stream`,
//!   `/count-tokens`;
//! - Vertex ([`super::vertex`]): `POST /v1/projects/{p}/locations/{r}/publishers/anthropic/models/
//!   {model}:rawPredict`, `:streamRawPredict`.
//!
//! A server may serve one dialect only (`mock-upstream --dialect`): the others' paths are then
//! a 404. Errors are written in the shape of the dialect whose path was asked for. Answers can be
//! told to fail ([`super::faults`]), shaped for a benchmark ([`super::shape`]) and steered by a
//! test ([`super::directives`]).

use std::ops::Range;

use super::directives::Directives;
use super::faults;
use super::shape::Shape;
use super::{anthropic, bedrock, gemini, openai, vertex};
use crate::dialect::Dialect;
use crate::http::{ApiError, ErrorType};

pub use super::anthropic::{request_id, MODELS};
pub use super::faults::{is_fault, BIG_EVENT_TEXT, FAULTS};

/// One answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A JSON document with its status and any extra headers.
    Json {
        status: u16,
        body: String,
        headers: Vec<(&'static str, String)>,
    },
    /// A `text/event-stream` of complete events, delivered as `delivery` says.
    Stream {
        events: Vec<String>,
        delivery: Delivery,
        /// The events that may carry a send time to stamp (the deltas of a shaped stream;
        /// usually none): those of them that hold [`super::shape::PLACEHOLDER`] at
        /// `stamp_offset`. Events a quirk put between the deltas hold none there.
        stamped: Range<usize>,
        /// Where in each stamped event its send time goes; each dialect's differs.
        stamp_offset: usize,
    },
    /// The same events, each sent in an AWS event-stream frame (Bedrock's streams): framed as
    /// they go, after their send time is stamped.
    Frames {
        events: Vec<String>,
        delivery: Delivery,
        stamped: Range<usize>,
        stamp_offset: usize,
    },
}

/// How a stream goes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Event by event, ended properly.
    Whole,
    /// Cut abruptly after this many events (a simulated upstream crash).
    DropAfter(usize),
    /// The whole response, head included, in writes of 1 to 7 bytes.
    Fragmented,
}

/// A request as the mock sees it.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path and query, as sent.
    pub target: &'a str,
    /// The fault to apply: `x-mock-fault`, if sent, or the one tied to the request's key.
    pub fault: Option<&'a str>,
    pub body: &'a [u8],
    /// What the request's `x-mock-*` headers asked for besides its shape.
    pub directives: Directives,
    /// The one dialect served, if not all.
    pub only: Option<Dialect>,
}

impl<'a> Request<'a> {
    /// A request with no fault or directives, to a mock that serves every dialect.
    pub fn new(method: &'a str, target: &'a str, body: &'a [u8]) -> Request<'a> {
        Request {
            method,
            target,
            fault: None,
            body,
            directives: Directives::default(),
            only: None,
        }
    }
}

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Messages,
    CountTokens,
    Models,
    Model(&'a str),
    ChatCompletions,
    Gemini(gemini::Call),
    Bedrock(bedrock::Call),
    Vertex(vertex::Call),
    /// A path of no dialect's, or of one not served: a 404.
    Unknown(Option<Dialect>),
}

impl Route<'_> {
    fn dialect(&self) -> Option<Dialect> {
        match self {
            Route::Messages | Route::CountTokens | Route::Models | Route::Model(_) => {
                Some(Dialect::Anthropic)
            }
            Route::ChatCompletions => Some(Dialect::OpenAi),
            Route::Gemini(_) => Some(Dialect::Gemini),
            Route::Bedrock(_) => Some(Dialect::Bedrock),
            Route::Vertex(_) => Some(Dialect::Vertex),
            Route::Unknown(d) => *d,
        }
    }
}

fn route<'a>(method: &str, target: &'a str) -> Route<'a> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    match (method, path) {
        ("POST", "/v1/messages") => Route::Messages,
        ("POST", "/v1/messages/count_tokens") => Route::CountTokens,
        ("GET", "/v1/models") => Route::Models,
        ("GET", p) if p.starts_with("/v1/models/") => Route::Model(&p["/v1/models/".len()..]),
        ("POST", "/v1/chat/completions" | "/chat/completions") => Route::ChatCompletions,
        (_, p) if p.ends_with("/chat/completions") => Route::Unknown(Some(Dialect::OpenAi)),
        ("POST", p) if p.starts_with("/model/") => match bedrock::Call::of(p) {
            Some(call) => Route::Bedrock(call),
            None => Route::Unknown(Some(Dialect::Bedrock)),
        },
        ("POST", p) if p.starts_with("/v1/projects/") => match vertex::Call::of(p) {
            Some(call) => Route::Vertex(call),
            None => Route::Unknown(Some(Dialect::Vertex)),
        },
        ("POST", p) => match gemini::Call::of(p, query) {
            Some(call) => Route::Gemini(call),
            None if p.starts_with("/v1beta/") => Route::Unknown(Some(Dialect::Gemini)),
            None => Route::Unknown(None),
        },
        (_, p) if p.starts_with("/v1beta/") => Route::Unknown(Some(Dialect::Gemini)),
        (_, p) if p.starts_with("/model/") => Route::Unknown(Some(Dialect::Bedrock)),
        (_, p) if p.starts_with("/v1/projects/") => Route::Unknown(Some(Dialect::Vertex)),
        _ => Route::Unknown(None),
    }
}

/// A model id as a path segment carries it, decoded; `None` for an empty one or one that is not
/// UTF-8 once decoded.
pub fn model_segment(segment: &str) -> Option<String> {
    let model = percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()?;
    (!model.is_empty()).then(|| model.into_owned())
}

/// The dialect whose error shape answers a request to `target` (Anthropic's for a path of no
/// dialect's, unless only one other is served).
pub fn dialect_of(method: &str, target: &str, only: Option<Dialect>) -> Dialect {
    route(method, target)
        .dialect()
        .or(only)
        .unwrap_or(Dialect::Anthropic)
}

/// Answers one request.
pub fn answer(req: &Request<'_>) -> Reply {
    answer_shaped(req, &Shape::default())
}

/// Answers one request in the shape a benchmark asked for (see [`super::shape`]).
pub fn answer_shaped(req: &Request<'_>, shape: &Shape) -> Reply {
    let route = route(req.method, req.target);
    let dialect = (route.dialect().or(req.only)).unwrap_or(Dialect::Anthropic);
    let served = route
        .dialect()
        .is_some_and(|d| req.only.map_or(true, |o| o == d));
    if !served || matches!(route, Route::Unknown(_)) {
        return error_in(dialect, &not_found(req.target, req.only));
    }
    if let Some(e) = req.fault.and_then(faults::error_fault) {
        return error_in(dialect, &e);
    }
    let (body, fault, d) = (req.body, req.fault, &req.directives);
    let result = match route {
        Route::Messages => anthropic::messages(body, fault, shape),
        Route::CountTokens => anthropic::count_tokens(body),
        Route::Models => Ok(ok_json(anthropic::models_list())),
        Route::Model(id) => anthropic::model(id),
        Route::ChatCompletions => openai::chat_completions(body, fault, d, shape),
        Route::Gemini(call) => gemini::answer(&call, body, fault, d, shape),
        Route::Bedrock(call) => bedrock::answer(&call, body, fault, shape),
        Route::Vertex(call) => vertex::answer(&call, body, fault, shape),
        Route::Unknown(_) => unreachable!("answered above"),
    };
    result.unwrap_or_else(|e| error_in(dialect, &e))
}

/// The 404 for a path not served, naming the paths that are.
fn not_found(target: &str, only: Option<Dialect>) -> ApiError {
    let path: String = target
        .split('?')
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    let served = match only {
        Some(Dialect::Anthropic) => {
            "/v1/messages, /v1/messages/count_tokens, /v1/models, /v1/messages/batches and \
             /v1/files"
        }
        Some(Dialect::OpenAi) => "/v1/chat/completions and /chat/completions",
        Some(Dialect::Gemini) => {
            "/v1beta/models/{model}:generateContent, :streamGenerateContent?alt=sse and \
             :countTokens"
        }
        Some(Dialect::Bedrock) => {
            "/model/{id}/invoke, /model/{id}/invoke-with-response-stream and \
             /model/{id}/count-tokens"
        }
        Some(Dialect::Vertex) => {
            "/v1/projects/{p}/locations/{r}/publishers/anthropic/models/{model}:rawPredict and \
             :streamRawPredict"
        }
        None => "the Anthropic, OpenAI, Gemini, Bedrock and Vertex paths",
    };
    ApiError::new(
        404,
        ErrorType::NotFound,
        format!("mock: nothing at {path}; this mock serves {served}").into(),
    )
}

/// An error reply in the Anthropic API's shape.
pub fn error(e: &ApiError) -> Reply {
    anthropic::error(e)
}

/// An error reply in `dialect`'s shape.
pub fn error_in(dialect: Dialect, e: &ApiError) -> Reply {
    match dialect {
        Dialect::Anthropic => anthropic::error(e),
        Dialect::OpenAi => openai::error(e),
        Dialect::Gemini => gemini::error(e),
        Dialect::Bedrock => bedrock::error(e),
        Dialect::Vertex => vertex::error(e),
    }
}

pub(super) fn ok_json(body: String) -> Reply {
    Reply::Json {
        status: 200,
        body,
        headers: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route_to_their_dialect() {
        for (method, target, dialect) in [
            ("POST", "/v1/messages", Some(Dialect::Anthropic)),
            ("GET", "/v1/models/claude-x", Some(Dialect::Anthropic)),
            ("POST", "/v1/chat/completions", Some(Dialect::OpenAi)),
            ("POST", "/chat/completions", Some(Dialect::OpenAi)),
            ("GET", "/v1/chat/completions", Some(Dialect::OpenAi)),
            (
                "POST",
                "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
                Some(Dialect::Gemini),
            ),
            (
                "POST",
                "/v1beta/models/g:countTokens",
                Some(Dialect::Gemini),
            ),
            ("POST", "/v1beta/models/g:bogus", Some(Dialect::Gemini)),
            ("POST", "/v2/else", None),
            (
                "POST",
                "/model/anthropic.claude-x-v1%3A0/invoke",
                Some(Dialect::Bedrock),
            ),
            ("POST", "/model/m/converse", Some(Dialect::Bedrock)),
            (
                "POST",
                "/v1/projects/p/locations/global/publishers/anthropic/models/m:rawPredict",
                Some(Dialect::Vertex),
            ),
        ] {
            assert_eq!(
                route(method, target).dialect(),
                dialect,
                "{method} {target}"
            );
        }
        assert_eq!(route("POST", "/v2/else"), Route::Unknown(None));
        assert_eq!(
            route("GET", "/v1/chat/completions"),
            Route::Unknown(Some(Dialect::OpenAi))
        );
    }

    fn status_and_body(r: Reply) -> (u16, String) {
        match r {
            Reply::Json { status, body, .. } => (status, body),
            Reply::Stream { .. } | Reply::Frames { .. } => (200, String::new()),
        }
    }

    #[test]
    fn a_dialect_not_served_is_a_404_in_its_own_shape() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
        let mut req = Request::new("POST", "/v1/chat/completions", body);
        assert_eq!(status_and_body(answer(&req)).0, 200);
        req.only = Some(Dialect::OpenAi);
        assert_eq!(status_and_body(answer(&req)).0, 200);
        req.only = Some(Dialect::Anthropic);
        let (status, body) = status_and_body(answer(&req));
        assert_eq!(status, 404);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error", "{body}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("nothing at /v1/chat/completions") && message.contains("/v1/messages"),
            "{message}"
        );

        let req = Request {
            only: Some(Dialect::Gemini),
            ..Request::new("POST", "/v1/messages", b"{}")
        };
        let (status, body) = status_and_body(answer(&req));
        assert_eq!(status, 404);
        assert!(body.contains("\"not_found_error\""), "{body}");
        // A path of no dialect's, on a server of one: that dialect's shape.
        let req = Request {
            only: Some(Dialect::Gemini),
            ..Request::new("POST", "/nowhere", b"{}")
        };
        let (status, body) = status_and_body(answer(&req));
        assert_eq!(status, 404);
        assert!(body.contains("\"NOT_FOUND\""), "{body}");
    }

    #[test]
    fn error_faults_answer_in_the_dialect_of_the_path() {
        for (target, status, needle) in [
            ("/v1/messages", 529, "\"overloaded_error\""),
            ("/v1/chat/completions", 503, "\"overloaded\""),
            ("/v1beta/models/g:generateContent", 503, "\"UNAVAILABLE\""),
        ] {
            let req = Request {
                fault: Some("overloaded"),
                ..Request::new("POST", target, b"{}")
            };
            let (got, body) = status_and_body(answer(&req));
            assert_eq!(got, status, "{target}");
            assert!(body.contains(needle), "{target}: {body}");
        }
    }
}
