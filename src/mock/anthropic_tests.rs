//! Tests of the Anthropic answers, asked through the mock's router (kept apart: the answers
//! file is long enough on its own).

use super::super::answers::{answer, answer_shaped, Delivery, Reply, Request};
use super::super::faults::{is_fault, FAULTS};
use super::*;

fn post(path: &str, body: &str) -> Reply {
    answer(&Request::new("POST", path, body.as_bytes()))
}

/// A request to `/v1/messages` with this fault.
fn faulty<'a>(fault: &'a str, body: &'a str) -> Request<'a> {
    Request {
        fault: Some(fault),
        ..Request::new("POST", "/v1/messages", body.as_bytes())
    }
}

/// The three events before a stream's deltas and the three after them.
fn assert_framed(events: &[String]) {
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

fn status_of(r: &Reply) -> u16 {
    match r {
        Reply::Json { status, .. } => *status,
        Reply::Stream { .. } | Reply::Frames { .. } => 200,
    }
}

const HELLO: &str =
    r#"{"model":"claude-x","max_tokens":100,"messages":[{"role":"user","content":"hi there"}]}"#;

#[test]
fn stream_and_non_stream_say_the_same_text() {
    let Reply::Json { body, .. } = post("/v1/messages", HELLO) else {
        panic!()
    };
    let mut doc = body.into_bytes();
    let v = simd_json::to_owned_value(&mut doc).unwrap();
    let text = v["content"][0]["text"].as_str().unwrap().to_string();
    assert!(text.ends_with("You said: hi there"), "{text}");

    let Reply::Stream {
        events, delivery, ..
    } = post(
        "/v1/messages",
        &HELLO.replace("{\"model\"", "{\"stream\":true,\"model\""),
    )
    else {
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
    assert_framed(&events);
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
    let list = answer(&Request::new("GET", "/v1/models", b""));
    let Reply::Json { body, .. } = list else {
        panic!()
    };
    assert!(body.contains("\"has_more\":false") && body.contains(MODELS[0].0));
    let missing = answer(&Request::new("GET", "/v1/models/nope", b""));
    assert_eq!(status_of(&missing), 404);
}

#[test]
fn faults() {
    let r = answer(&faulty("rate_limit", HELLO));
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
        let r = answer(&faulty(f, HELLO));
        assert_eq!(status_of(&r), s);
    }
    let streaming = HELLO.replace("{\"model\"", "{\"stream\":true,\"model\"");
    let r = answer(&faulty("drop_mid_stream", &streaming));
    let Reply::Stream { delivery, .. } = r else {
        panic!()
    };
    assert_eq!(delivery, Delivery::DropAfter(4));
    let shaped = |f| {
        let r = answer(&faulty(f, &streaming));
        let Reply::Stream {
            events, delivery, ..
        } = r
        else {
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
    let ask = |fault| answer(&faulty(fault, &streaming));
    // A plain answer: a whole stream whose length does not depend on the (unknown) fault.
    let plain = |r: &Reply, len: usize| matches!(r, Reply::Stream { events, delivery: Delivery::Whole, .. } if events.len() == len);
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

fn shaped(body: &str, shape: Shape, fault: Option<&str>) -> Reply {
    answer_shaped(
        &Request {
            fault,
            ..Request::new("POST", "/v1/messages", body.as_bytes())
        },
        &shape,
    )
}

fn stream_shape(deltas: usize, delta_bytes: usize) -> Shape {
    Shape {
        stream: Some(shape::StreamShape {
            deltas,
            delta_bytes,
        }),
        reply_bytes: None,
    }
}

/// The `data` of an event, parsed.
fn data_of(event: &str) -> simd_json::OwnedValue {
    let data = event.split_once("\ndata: ").unwrap().1.trim_end();
    simd_json::to_owned_value(&mut data.as_bytes().to_vec()).unwrap()
}

#[test]
fn a_shaped_stream_has_exactly_the_deltas_asked_for() {
    let streaming = HELLO.replace("{\"model\"", "{\"stream\":true,\"model\"");
    // max_tokens (100) does not cut a shaped stream.
    let Reply::Stream {
        events,
        delivery,
        stamped,
        stamp_offset,
    } = shaped(&streaming, stream_shape(150, 60), None)
    else {
        panic!()
    };
    assert_eq!(delivery, Delivery::Whole);
    assert_eq!(events.len(), 150 + 6);
    assert_eq!(
        (stamped.clone(), stamp_offset),
        (3..153, shape::STAMP_OFFSET)
    );
    assert_framed(&events);
    for (i, e) in events[stamped.clone()].iter().enumerate() {
        assert_eq!(e, &shape::delta_event(i, 60));
        assert_eq!(
            &e.as_bytes()[shape::STAMP_OFFSET..shape::STAMP_OFFSET + 16],
            shape::PLACEHOLDER
        );
        let v = data_of(e);
        let text = v["delta"]["text"].as_str().unwrap();
        assert_eq!(text.len(), 60);
        assert!(text.starts_with(&format!("#{i:06}@")), "{text}");
    }
    let usage = data_of(&events[154]);
    assert_eq!(usage["usage"]["output_tokens"], 150);
    assert_eq!(usage["delta"]["stop_reason"], "end_turn");

    // No deltas at all is a shape too; the stream faults still apply.
    let Reply::Stream { events, .. } = shaped(&streaming, stream_shape(0, 25), None) else {
        panic!()
    };
    assert_eq!(events.len(), 6);
    assert!(events[4].contains("\"output_tokens\":0"));
    let Reply::Stream {
        events, delivery, ..
    } = shaped(&streaming, stream_shape(8, 25), Some("drop_mid_stream"))
    else {
        panic!()
    };
    assert_eq!((events.len(), delivery), (14, Delivery::DropAfter(4)));
    // A stream shape does not change a non-streaming answer, nor the echo a stream.
    assert!(matches!(
        shaped(HELLO, stream_shape(8, 25), None),
        Reply::Json { status: 200, .. }
    ));
    let Reply::Stream { stamped, .. } = shaped(&streaming, Shape::default(), None) else {
        panic!()
    };
    assert!(stamped.is_empty());
}

#[test]
fn a_shaped_reply_has_its_size() {
    for bytes in [0, 1, 1000, 100_001] {
        let shape = Shape {
            stream: None,
            reply_bytes: Some(bytes),
        };
        let Reply::Json { status, body, .. } = shaped(HELLO, shape, None) else {
            panic!()
        };
        assert_eq!(status, 200);
        let v = simd_json::to_owned_value(&mut body.into_bytes()).unwrap();
        assert_eq!(v["content"][0]["text"].as_str().unwrap().len(), bytes);
        assert_eq!(v["usage"]["output_tokens"], bytes.div_ceil(4) as u64);
        assert_eq!(v["stop_reason"], "end_turn");
    }
    // Faults still win.
    let shape = Shape {
        stream: None,
        reply_bytes: Some(10),
    };
    assert_eq!(status_of(&shaped(HELLO, shape, Some("rate_limit"))), 429);
}

#[test]
fn system_messages_among_the_turns_are_accepted() {
    // Newer Claude Code sends `system` messages inside `messages`.
    let body = r#"{"model":"m","max_tokens":100,"messages":[
        {"role":"system","content":"be brief"},
        {"role":"user","content":"hi there"},
        {"role":"system","content":[{"type":"text","text":"still brief"}]}]}"#;
    let Reply::Json { status, body, .. } = post("/v1/messages", body) else {
        panic!()
    };
    assert_eq!(status, 200, "{body}");
    let v = simd_json::to_owned_value(&mut body.into_bytes()).unwrap();
    // A system message is not what the user said; its text still counts as input.
    assert!(v["content"][0]["text"]
        .as_str()
        .unwrap()
        .ends_with("You said: hi there"));
    assert_eq!(v["usage"]["input_tokens"], 7);
    let Reply::Json { status, body, .. } = post(
        "/v1/messages",
        r#"{"model":"m","max_tokens":1,"messages":[{"role":"tool","content":"x"}]}"#,
    ) else {
        panic!()
    };
    assert_eq!(status, 400);
    assert!(body.contains("\\\"system\\\""), "{body}");
}

/// The events of a streamed answer with this fault.
fn streamed_with(fault: &str) -> (Vec<String>, Delivery) {
    let streaming = HELLO.replace("{\"model\"", "{\"stream\":true,\"model\"");
    let Reply::Stream {
        events, delivery, ..
    } = answer(&faulty(fault, &streaming))
    else {
        panic!()
    };
    (events, delivery)
}

#[test]
fn error_in_stream_sends_two_deltas_then_an_error_event() {
    let (events, delivery) = streamed_with("error_in_stream");
    assert_eq!(delivery, Delivery::Whole);
    let names: Vec<&str> = events.iter().map(|e| e.lines().next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "event: message_start",
            "event: content_block_start",
            "event: ping",
            "event: content_block_delta",
            "event: content_block_delta",
            "event: error"
        ]
    );
    let error = data_of(&events[5]);
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "overloaded_error");
    assert_eq!(error["error"]["message"], "mock: error in stream");
}

#[test]
fn garbage_sends_two_deltas_then_a_line_that_is_not_json() {
    let (events, _) = streamed_with("garbage");
    assert_eq!(events.len(), 6);
    assert!(events[3..5]
        .iter()
        .all(|e| e.starts_with("event: content_block_delta")));
    let last = events[5].strip_prefix("data: ").unwrap().trim_end();
    assert!(
        serde_json::from_str::<serde_json::Value>(last).is_err(),
        "{last}"
    );
}
