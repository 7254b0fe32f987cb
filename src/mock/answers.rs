//! What the mock upstream answers: Anthropic-shaped responses derived from the request.
//!
//! Pure logic, shared by the gateway's built-in mock and the `mock-upstream` load-test server,
//! so there is one idea of "what the API would say". Answers are deterministic for a given
//! request (the same text whether streamed or not), validate the fields the real API requires,
//! and can be told to fail through the `x-mock-fault` header (or, in [`super::server`], through
//! the API key a request carries) so clients and tests can see every error the real API produces.

use simd_json::prelude::*;
use simd_json::BorrowedValue;

use crate::http::json;
use crate::http::{ApiError, ErrorType};

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

/// Characters of text in the `big_event` fault's one large delta: more than a 16 KiB buffer.
pub const BIG_EVENT_TEXT: usize = 20_000;

/// Every `x-mock-fault` value the mock acts on: the error faults, then the stream-shaping ones.
/// Any other value is ignored, so a tool that picks a fault up front can check it against this.
pub const FAULTS: &[&str] = &[
    "rate_limit",
    "overloaded",
    "server_error",
    "auth",
    "permission",
    "drop_mid_stream",
    "fragmented",
    "big_event",
    "no_message_stop",
];

/// Whether the mock acts on this `x-mock-fault` value.
pub fn is_fault(name: &str) -> bool {
    FAULTS.contains(&name)
}

/// A request as the mock sees it.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The fault to apply: `x-mock-fault`, if sent, or the one tied to the request's key.
    pub fault: Option<&'a str>,
    pub body: &'a [u8],
}

/// Answers one request.
pub fn answer(req: &Request<'_>) -> Reply {
    if let Some(reply) = req.fault.and_then(fault) {
        return reply;
    }
    let result = match (req.method, req.path) {
        ("POST", "/v1/messages") => messages(req.body, req.fault),
        ("POST", "/v1/messages/count_tokens") => count_tokens(req.body),
        ("GET", "/v1/models") => Ok(ok_json(models_list())),
        ("GET", p) if p.starts_with("/v1/models/") => model(&p["/v1/models/".len()..]),
        (_, p) => Err(ApiError::not_found(p)),
    };
    result.unwrap_or_else(|e| error(&e))
}

/// The error reply for an `x-mock-fault` value; `None` for other values (including the stream
/// faults, which shape a normal answer: `drop_mid_stream`, `no_message_stop`, `fragmented`,
/// `big_event`).
fn fault(name: &str) -> Option<Reply> {
    let (status, kind, message) = match name {
        "rate_limit" => (429, ErrorType::RateLimit, "mock: rate limited"),
        "overloaded" => (529, ErrorType::Overloaded, "mock: overloaded"),
        "server_error" => (500, ErrorType::Api, "mock: internal server error"),
        "auth" => (401, ErrorType::Authentication, "mock: invalid x-api-key"),
        "permission" => (403, ErrorType::Permission, "mock: permission denied"),
        _ => return None,
    };
    let mut reply = error(&ApiError::new(status, kind, message.into()));
    if let Reply::Json { headers, .. } = &mut reply {
        if status == 429 {
            headers.push(("retry-after", "1".into()));
        }
    }
    Some(reply)
}

/// An error reply in the API's shape.
pub fn error(e: &ApiError) -> Reply {
    Reply::Json {
        status: e.status,
        body: e.body(&request_id()),
        headers: Vec::new(),
    }
}

fn ok_json(body: String) -> Reply {
    Reply::Json {
        status: 200,
        body,
        headers: Vec::new(),
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
        if !matches!(role, Some("user" | "assistant")) {
            return Err(invalid(
                "messages: each message needs a role of \"user\" or \"assistant\"",
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
        input_tokens: (all_text_len as u64).div_ceil(4).max(1),
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

/// The words of the reply: a fixed preamble and the last user message echoed back, one "token"
/// per word, cut at `max_tokens`. Returns the words and whether the cut happened.
fn reply_words(p: &Parsed) -> (Vec<String>, bool) {
    let mut words: Vec<String> = format!(
        "Hello from the ringgate mock upstream ({}). You said:",
        p.model
    )
    .split_whitespace()
    .map(str::to_string)
    .collect();
    words.extend(
        p.last_user_text
            .split_whitespace()
            .take(256)
            .map(str::to_string),
    );
    let cut = words.len() as u64 > p.max_tokens;
    words.truncate(p.max_tokens as usize);
    (words, cut)
}

fn messages(body: &[u8], fault: Option<&str>) -> Result<Reply, ApiError> {
    let p = parse(body, true)?;
    let (words, cut) = reply_words(&p);
    let stop_reason = if cut { "max_tokens" } else { "end_turn" };
    let id = format!("msg_mock{}", random_suffix(20));
    let model = json::string(&p.model);
    let output_tokens = words.len();
    if !p.stream {
        let text = json::string(&words.join(" "));
        return Ok(ok_json(format!(
            "{{\"id\":\"{id}\",\"type\":\"message\",\"role\":\"assistant\",\"model\":{model},\
             \"content\":[{{\"type\":\"text\",\"text\":{text}}}],\"stop_reason\":\"{stop_reason}\",\
             \"stop_sequence\":null,\"usage\":{}}}",
            usage(p.input_tokens, output_tokens)
        )));
    }
    let mut events = Vec::with_capacity(words.len() + 6);
    let mut push =
        |name: &str, data: String| events.push(format!("event: {name}\ndata: {data}\n\n"));
    push(
        "message_start",
        format!(
            "{{\"type\":\"message_start\",\"message\":{{\"id\":\"{id}\",\"type\":\"message\",\
             \"role\":\"assistant\",\"model\":{model},\"content\":[],\"stop_reason\":null,\
             \"stop_sequence\":null,\"usage\":{}}}}}",
            usage(p.input_tokens, 1)
        ),
    );
    push(
        "content_block_start",
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}".into(),
    );
    push("ping", "{\"type\": \"ping\"}".into());
    for (i, w) in words.iter().enumerate() {
        let piece = if i == 0 { w.clone() } else { format!(" {w}") };
        push(
            "content_block_delta",
            format!(
                "{{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":{}}}}}",
                json::string(&piece)
            ),
        );
    }
    push(
        "content_block_stop",
        "{\"type\":\"content_block_stop\",\"index\":0}".into(),
    );
    push(
        "message_delta",
        format!(
            "{{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"{stop_reason}\",\"stop_sequence\":null}},\
             \"usage\":{{\"output_tokens\":{output_tokens}}}}}"
        ),
    );
    push("message_stop", "{\"type\":\"message_stop\"}".into());
    let mut delivery = Delivery::Whole;
    match fault {
        Some("drop_mid_stream") => delivery = Delivery::DropAfter(4.min(events.len() - 1)),
        Some("fragmented") => delivery = Delivery::Fragmented,
        Some("no_message_stop") => {
            events.pop();
        }
        Some("big_event") => {
            // One delta larger than a relay buffer, just before the block ends.
            let big = format!(
                "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\" {}\"}}}}\n\n",
                "x".repeat(BIG_EVENT_TEXT)
            );
            events.insert(events.len() - 3, big);
        }
        _ => {}
    }
    Ok(Reply::Stream { events, delivery })
}

fn usage(input: u64, output: usize) -> String {
    format!(
        "{{\"input_tokens\":{input},\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":{output}}}"
    )
}

fn count_tokens(body: &[u8]) -> Result<Reply, ApiError> {
    let p = parse(body, false)?;
    Ok(ok_json(format!("{{\"input_tokens\":{}}}", p.input_tokens)))
}

fn model_json(&(id, name, created): &(&str, &str, &str)) -> String {
    format!("{{\"type\":\"model\",\"id\":\"{id}\",\"display_name\":\"{name}\",\"created_at\":\"{created}\"}}")
}

fn models_list() -> String {
    let data: Vec<String> = MODELS.iter().map(model_json).collect();
    format!(
        "{{\"data\":[{}],\"has_more\":false,\"first_id\":\"{}\",\"last_id\":\"{}\"}}",
        data.join(","),
        MODELS[0].0,
        MODELS[MODELS.len() - 1].0
    )
}

fn model(id: &str) -> Result<Reply, ApiError> {
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

fn random_suffix(n: usize) -> String {
    (0..n).map(|_| fastrand::alphanumeric()).collect()
}

/// A request id in the API's style.
pub fn request_id() -> String {
    format!("req_mock{}", random_suffix(20))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(path: &str, body: &str) -> Reply {
        answer(&Request {
            method: "POST",
            path,
            fault: None,
            body: body.as_bytes(),
        })
    }

    fn status_of(r: &Reply) -> u16 {
        match r {
            Reply::Json { status, .. } => *status,
            Reply::Stream { .. } => 200,
        }
    }

    const HELLO: &str = r#"{"model":"claude-x","max_tokens":100,"messages":[{"role":"user","content":"hi there"}]}"#;

    #[test]
    fn stream_and_non_stream_say_the_same_text() {
        let Reply::Json { body, .. } = post("/v1/messages", HELLO) else {
            panic!()
        };
        let mut doc = body.into_bytes();
        let v = simd_json::to_owned_value(&mut doc).unwrap();
        let text = v["content"][0]["text"].as_str().unwrap().to_string();
        assert!(text.ends_with("You said: hi there"), "{text}");

        let Reply::Stream { events, delivery } = post(
            "/v1/messages",
            &HELLO.replace("{\"model\"", "{\"stream\":true,\"model\""),
        ) else {
            panic!()
        };
        assert_eq!(delivery, Delivery::Whole);
        let mut streamed = String::new();
        for e in &events {
            let data = e.split("data: ").nth(1).unwrap().trim_end();
            let mut d = data.as_bytes().to_vec();
            let v = simd_json::to_owned_value(&mut d).unwrap();
            if v["type"] == "content_block_delta" {
                streamed.push_str(v["delta"]["text"].as_str().unwrap());
            }
        }
        assert_eq!(streamed, text);
        let names: Vec<&str> = events.iter().map(|e| e.lines().next().unwrap()).collect();
        assert_eq!(
            names[..3],
            [
                "event: message_start",
                "event: content_block_start",
                "event: ping"
            ]
        );
        assert_eq!(
            names[names.len() - 3..],
            [
                "event: content_block_stop",
                "event: message_delta",
                "event: message_stop"
            ]
        );
    }

    #[test]
    fn max_tokens_cuts_the_reply() {
        let Reply::Json { body, .. } = post("/v1/messages", &HELLO.replace("100", "3")) else {
            panic!()
        };
        assert!(body.contains("\"stop_reason\":\"max_tokens\""));
        assert!(body.contains("\"output_tokens\":3"));
    }

    #[test]
    fn validates_like_the_api() {
        for (body, needle) in [
            ("{", "not valid JSON"),
            ("[]", "JSON object"),
            (r#"{"max_tokens":1,"messages":[]}"#, "model: Field required"),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#,
                "max_tokens: Field required",
            ),
            (
                r#"{"model":"m","max_tokens":1}"#,
                "messages: Field required",
            ),
            (
                r#"{"model":"m","max_tokens":1,"messages":[{"role":"bot","content":"x"}]}"#,
                "role",
            ),
        ] {
            let r = post("/v1/messages", body);
            let Reply::Json {
                status, body: b, ..
            } = r
            else {
                panic!()
            };
            assert_eq!(status, 400, "{body}");
            assert!(
                b.contains(needle) && b.contains("invalid_request_error"),
                "{body} -> {b}"
            );
        }
    }

    #[test]
    fn count_tokens_and_models() {
        let Reply::Json { body, .. } = post(
            "/v1/messages/count_tokens",
            r#"{"model":"m","messages":[{"role":"user","content":"12345678"}]}"#,
        ) else {
            panic!()
        };
        assert_eq!(body, "{\"input_tokens\":2}");
        let list = answer(&Request {
            method: "GET",
            path: "/v1/models",
            fault: None,
            body: b"",
        });
        let Reply::Json { body, .. } = list else {
            panic!()
        };
        assert!(body.contains("\"has_more\":false") && body.contains(MODELS[0].0));
        let missing = answer(&Request {
            method: "GET",
            path: "/v1/models/nope",
            fault: None,
            body: b"",
        });
        assert_eq!(status_of(&missing), 404);
    }

    #[test]
    fn faults() {
        let r = answer(&Request {
            method: "POST",
            path: "/v1/messages",
            fault: Some("rate_limit"),
            body: HELLO.as_bytes(),
        });
        let Reply::Json {
            status, headers, ..
        } = r
        else {
            panic!()
        };
        assert_eq!(status, 429);
        assert_eq!(headers, vec![("retry-after", "1".to_string())]);
        for (f, s) in [
            ("overloaded", 529),
            ("server_error", 500),
            ("auth", 401),
            ("permission", 403),
        ] {
            let r = answer(&Request {
                method: "POST",
                path: "/v1/messages",
                fault: Some(f),
                body: HELLO.as_bytes(),
            });
            assert_eq!(status_of(&r), s);
        }
        let streaming = HELLO.replace("{\"model\"", "{\"stream\":true,\"model\"");
        let r = answer(&Request {
            method: "POST",
            path: "/v1/messages",
            fault: Some("drop_mid_stream"),
            body: streaming.as_bytes(),
        });
        let Reply::Stream { delivery, .. } = r else {
            panic!()
        };
        assert_eq!(delivery, Delivery::DropAfter(4));
        let shaped = |f| {
            let r = answer(&Request {
                method: "POST",
                path: "/v1/messages",
                fault: Some(f),
                body: streaming.as_bytes(),
            });
            let Reply::Stream { events, delivery } = r else {
                panic!()
            };
            (events, delivery)
        };
        // (message_start differs: each answer has its own message id.)
        let (whole, _) = shaped("none");
        let (events, _) = shaped("no_message_stop");
        assert_eq!(events[1..], whole[1..whole.len() - 1]);
        let (events, _) = shaped("big_event");
        assert_eq!(events.len(), whole.len() + 1);
        assert!(events[events.len() - 4].len() > BIG_EVENT_TEXT);
        let (events, delivery) = shaped("fragmented");
        assert_eq!(
            (&events[1..], delivery),
            (&whole[1..], Delivery::Fragmented)
        );
    }

    #[test]
    fn every_listed_fault_changes_the_answer_and_only_those() {
        let streaming = HELLO.replace("{\"model\"", "{\"stream\":true,\"model\"");
        let ask = |fault| {
            answer(&Request {
                method: "POST",
                path: "/v1/messages",
                fault: Some(fault),
                body: streaming.as_bytes(),
            })
        };
        // A plain answer: a whole stream whose length does not depend on the (unknown) fault.
        let plain = |r: &Reply, len: usize| matches!(r, Reply::Stream { events, delivery: Delivery::Whole } if events.len() == len);
        let Reply::Stream { events, .. } = ask("none") else {
            panic!()
        };
        let len = events.len();
        for f in FAULTS {
            assert!(is_fault(f));
            assert!(!plain(&ask(f), len), "{f} does nothing");
        }
        for f in ["", "none", "Rate_Limit", "rate_limit "] {
            assert!(!is_fault(f));
            assert!(plain(&ask(f), len), "{f:?} is acted on");
        }
    }
}
