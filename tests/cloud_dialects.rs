//! The gateway in front of Claude on Bedrock and on Vertex, over real sockets: what it sends
//! (paths, bodies reshaped but not rewritten, the credential, no client secrets), what the client
//! gets back (Bedrock's frames unwrapped into Anthropic events, errors typed by their names,
//! exceptions failed over from or in-band), count_tokens counted upstream or here, and a mixed
//! pool of Anthropic, Bedrock and Vertex upstreams failing over and rotating.
//!
//! The credentials that are fetched (STS, IMDS, Google tokens) have their own tests; here they
//! are keys, which the wire shows as they are.

mod support;

use std::time::Duration;

use ringgate::dialect::grammar::check;
use ringgate::mock::bedrock::{frame, frame_of};
use serde_json::{json, Value};
use support::*;

const STREAM: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"metadata":{"user_id":"u1","trace":"x"},"messages":[{"role":"user","content":"hi"}]}"#;
const WHOLE: &str =
    r#"{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}"#;
const BEDROCK_ID: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

/// A Bedrock upstream at `addr` with a Bedrock API key, and what follows it in the config.
fn bedrock_at(addr: std::net::SocketAddr, extra: &str) -> String {
    format!(
        "[[upstreams]]\nname = \"bedrock\"\nkind = \"bedrock\"\nregion = \"us-west-2\"\n\
         base_url = \"http://{addr}\"\n{extra}\n\
         [upstreams.model_names]\n\"claude-sonnet-4-5\" = \"{BEDROCK_ID}\"\n\
         [[upstreams.credentials]]\nname = \"key\"\napi_key = \"bedrock-api-key-secret\"\n"
    )
}

const SERVER: &str = "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n";

/// A Bedrock stream answer: the head, one chunk per frame, the last chunk.
fn frames_answer(frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut pieces = vec![b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.amazon.eventstream\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec()];
    pieces.extend(frames.iter().map(|f| chunk(f)));
    pieces.push(b"0\r\n\r\n".to_vec());
    pieces
}

/// Claude's events for an answer of `deltas` words, whole as a strict client reads them (the
/// `message_start` carries its whole message).
fn claude_events(deltas: usize) -> Vec<String> {
    let mut events = sse_events(deltas);
    events[0] = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_bdrk_1\",\
                 \"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\
                 \"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"
        .into();
    events
}

fn exception(kind: &str, message: &str) -> Vec<u8> {
    let payload = json!({ "message": message }).to_string();
    frame(
        &[(":exception-type", kind), (":message-type", "exception")],
        payload.as_bytes(),
    )
}

#[test]
fn bedrock_gets_its_body_path_and_key_and_the_client_its_events() {
    let up = Upstream::start(|_| {
        let frames = claude_events(3).iter().map(|e| frame_of(e)).collect();
        Action::Send(frames_answer(frames), Duration::from_millis(1))
    });
    let gw = gateway(&format!("{SERVER}{}", bedrock_at(up.addr, "")));
    let headers = "anthropic-beta: tools-2024-04-04\r\nanthropic-beta: context-1m-2025-08-07\r\n\
                   anthropic-version: 2023-06-01\r\nX-Amz-Security-Token: clients-own\r\n";
    let r = request(gw.local_addr(), &messages_request(STREAM, headers));
    assert_eq!(r.status, 200, "{}", r.text());
    let acc = check(&r.body).unwrap_or_else(|e| panic!("{e}\n{}", r.text()));
    assert_eq!(acc.text(), "word0 word1 word2 ");
    assert!(!r.text().contains("invocationMetrics"));

    let got = &up.requests()[0];
    assert_eq!(
        got.request_line(),
        "POST /model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream HTTP/1.1"
    );
    assert_eq!(
        got.headers("authorization"),
        ["Bearer bedrock-api-key-secret"]
    );
    assert_eq!(
        got.headers("accept"),
        ["application/vnd.amazon.eventstream"]
    );
    for gone in [
        "x-api-key",
        "x-amz-security-token",
        "anthropic-beta",
        "anthropic-version",
    ] {
        assert!(
            got.headers(gone).is_empty(),
            "{gone} went upstream: {}",
            got.head
        );
    }
    let body: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(
        body,
        json!({"max_tokens": 64, "metadata": {"user_id": "u1"},
               "messages": [{"role": "user", "content": "hi"}],
               "anthropic_version": "bedrock-2023-05-31",
               "anthropic_beta": ["tools-2024-04-04", "context-1m-2025-08-07"]})
    );
}

#[test]
fn vertex_gets_its_body_path_and_token_and_the_answer_goes_as_it_is() {
    let answer = r#"{"id":"msg_vrtx_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"hello"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}"#;
    let up = Upstream::start(move |_| {
        Action::Send(vec![json_response(200, answer, "")], Duration::ZERO)
    });
    let gw = gateway(&format!(
        "{SERVER}[[upstreams]]\nname = \"vertex\"\nkind = \"vertex\"\nproject = \"proj-1\"\n\
         region = \"europe-west1\"\nbase_url = \"http://{}\"\n\
         [upstreams.model_names]\n\"claude-sonnet-4-5\" = \"claude-sonnet-4-5@20250929\"\n\
         [[upstreams.credentials]]\nname = \"token\"\naccess_token = \"ya29.vertex-secret\"\n",
        up.addr
    ));
    let r = request(
        gw.local_addr(),
        &messages_request(WHOLE, "anthropic-beta: b1\r\n"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), answer, "relayed byte for byte");
    let got = &up.requests()[0];
    assert_eq!(
        got.request_line(),
        "POST /v1/projects/proj-1/locations/europe-west1/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict HTTP/1.1"
    );
    assert_eq!(got.headers("authorization"), ["Bearer ya29.vertex-secret"]);
    assert_eq!(got.headers("anthropic-beta"), ["b1"]);
    let body: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(body["anthropic_version"], "vertex-2023-10-16");
    assert!(body.get("model").is_none());
}

#[test]
fn bedrock_errors_are_typed_by_their_name() {
    let up = Upstream::start(|r| {
        let (status, name) = match r.headers("x-mock-case").concat().as_str() {
            "validation" => (400, "ValidationException"),
            "unavailable" => (503, "ServiceUnavailableException"),
            _ => (408, "ModelTimeoutException"),
        };
        let header = format!(
            "x-amzn-errortype: {name}:http://internal.amazon.com/coral/com.amazon.bedrock/\r\n"
        );
        let body = format!("{{\"message\":\"{name} happened\"}}");
        Action::Send(vec![json_response(status, &body, &header)], Duration::ZERO)
    });
    let gw = gateway(&format!(
        "{SERVER}[routing]\nmax_attempts = 1\n{}",
        bedrock_at(up.addr, "")
    ));
    for (case, status, kind) in [
        ("validation", 400, "invalid_request_error"),
        ("unavailable", 503, "overloaded_error"),
        ("timeout", 408, "timeout_error"),
    ] {
        let r = request(
            gw.local_addr(),
            &messages_request(WHOLE, &format!("x-mock-case: {case}\r\n")),
        );
        assert_eq!(r.status, status, "{case}: {}", r.text());
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"]["type"], kind, "{case}");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("happened"));
    }
}

#[test]
fn an_exception_before_the_first_event_fails_over_and_after_it_ends_in_band() {
    // Bedrock throttles the stream before its first event: nothing reached the client, so the
    // built-in mock (speaking Vertex) serves it.
    let throttled = Upstream::start(|_| {
        let frames = vec![exception(
            "throttlingException",
            "Too many tokens, please wait.",
        )];
        Action::Send(frames_answer(frames), Duration::ZERO)
    });
    let gw = gateway(&format!(
        "{SERVER}{}[[upstreams]]\nname = \"vertex-mock\"\nkind = \"mock\"\npriority = -1\n\
         [upstreams.mock]\ndialect = \"vertex\"\n",
        bedrock_at(throttled.addr, "priority = 1")
    ));
    let r = request(gw.local_addr(), &messages_request(STREAM, ""));
    assert_eq!(r.status, 200, "{}", r.text());
    let acc = check(&r.body).unwrap_or_else(|e| panic!("{e}\n{}", r.text()));
    assert!(
        acc.text()
            .starts_with("Hello from the ringgate mock upstream"),
        "{}",
        acc.text()
    );
    assert_eq!(throttled.requests().len(), 1);

    // After the first events, an exception ends the stream with an error of its type.
    let broken = Upstream::start(|_| {
        let mut frames: Vec<Vec<u8>> = claude_events(3)[..3].iter().map(|e| frame_of(e)).collect();
        frames.push(exception("modelStreamErrorException", "the model broke"));
        Action::Send(frames_answer(frames), Duration::from_millis(1))
    });
    let gw = gateway(&format!("{SERVER}{}", bedrock_at(broken.addr, "")));
    let r = request(gw.local_addr(), &messages_request(STREAM, ""));
    assert_eq!(r.status, 200);
    let acc = check(&r.body).unwrap_or_else(|e| panic!("{e}\n{}", r.text()));
    assert_eq!(
        acc.error,
        Some(("api_error".into(), "the model broke".into()))
    );
}

#[test]
fn count_tokens_is_counted_by_bedrock_or_here_for_models_it_does_not_count() {
    let gw = gateway(&format!(
        "{SERVER}[[upstreams]]\nname = \"bedrock-mock\"\nkind = \"mock\"\n\
         [upstreams.mock]\ndialect = \"bedrock\"\n\
         [upstreams.model_names]\n\"claude-3-haiku\" = \"anthropic.claude-3-haiku-20240307-v1:0\"\n\
         \"claude-sonnet-4-5\" = \"{BEDROCK_ID}\"\n"
    ));
    let count = |model: &str| {
        let body = format!(
            r#"{{"model":"{model}","messages":[{{"role":"user","content":"count these words for me please"}}]}}"#
        );
        let raw = String::from_utf8(messages_request(&body, ""))
            .unwrap()
            .replacen("/v1/messages", "/v1/messages/count_tokens", 1);
        let r = request(gw.local_addr(), raw.as_bytes());
        assert_eq!(r.status, 200, "{model}: {}", r.text());
        serde_json::from_slice::<Value>(&r.body).unwrap()["input_tokens"]
            .as_u64()
            .unwrap()
    };
    // The mock counts as the Anthropic mock does (characters / 4); the gateway's estimate counts
    // otherwise, so the two are told apart by the figure.
    let upstream = count("claude-sonnet-4-5");
    let here = count("claude-3-haiku");
    assert!(upstream > 0 && here > 0);
    assert_ne!(
        upstream, here,
        "the Claude 3 count was estimated here, not by the mock"
    );
}

#[test]
fn a_mixed_pool_fails_over_from_anthropic_and_rotates_between_bedrock_and_vertex() {
    let limited = Upstream::start(|_| {
        let e = r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
        Action::Send(
            vec![json_response(429, e, "retry-after: 60\r\n")],
            Duration::ZERO,
        )
    });
    let message = r#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}"#;
    let bedrock = Upstream::start(move |_| {
        Action::Send(vec![json_response(200, message, "")], Duration::ZERO)
    });
    let vertex = Upstream::start(move |_| {
        Action::Send(vec![json_response(200, message, "")], Duration::ZERO)
    });
    let gw = gateway(&format!(
        "{SERVER}[[upstreams]]\nname = \"anthropic\"\nkind = \"anthropic\"\nbase_url = \"http://{}\"\n\
         priority = 1\n[[upstreams.credentials]]\nname = \"a\"\napi_key = \"sk-ant\"\n\
         {}[[upstreams]]\nname = \"vertex\"\nkind = \"vertex\"\nproject = \"p\"\nregion = \"global\"\n\
         base_url = \"http://{}\"\n[[upstreams.credentials]]\nname = \"t\"\naccess_token = \"ya29.t\"\n",
        limited.addr,
        bedrock_at(bedrock.addr, ""),
        vertex.addr
    ));
    for _ in 0..6 {
        let r = request(gw.local_addr(), &messages_request(WHOLE, ""));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // The Anthropic upstream refused once and cooled for its retry-after; the lower tier took
    // every request, shared round-robin between its two upstreams.
    assert_eq!(limited.requests().len(), 1);
    assert_eq!((bedrock.requests().len(), vertex.requests().len()), (3, 3));
    assert!(bedrock.requests()[0].request_line().contains("/invoke "));
    assert!(vertex.requests()[0]
        .request_line()
        .contains("/locations/global/publishers/anthropic/models/claude-sonnet-4-5:rawPredict"));
}

#[test]
fn a_bedrock_stream_that_ends_without_message_stop_ends_with_an_error_event() {
    let up = Upstream::start(|_| {
        let events = claude_events(2);
        let frames = events[..events.len() - 1]
            .iter()
            .map(|e| frame_of(e))
            .collect();
        Action::Send(frames_answer(frames), Duration::ZERO)
    });
    let gw = gateway(&format!("{SERVER}{}", bedrock_at(up.addr, "")));
    let r = request(gw.local_addr(), &messages_request(STREAM, ""));
    assert_eq!(r.status, 200);
    let acc = check(&r.body).unwrap_or_else(|e| panic!("{e}\n{}", r.text()));
    let (kind, message) = acc.error.expect("an error event");
    assert_eq!(kind, "api_error");
    assert!(message.contains("without message_stop"), "{message}");
}
