//! Bedrock streams as `invoke-with-response-stream` sends them (frames built by the mock's
//! encoder, checked against the TRANSLATION.md vector there), decoded whole and cut at every
//! byte, checked against the grammar.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::*;
use crate::dialect::grammar::{check, translate_cut};
use crate::mock::bedrock::frame;

fn chunk(event: &str) -> Vec<u8> {
    let payload = format!(
        "{{\"bytes\":\"{}\",\"p\":\"abcdef\"}}",
        STANDARD.encode(event)
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

fn exception(kind: &str, message: &str) -> Vec<u8> {
    let payload = serde_json::json!({ "message": message }).to_string();
    frame(
        &[(":exception-type", kind), (":message-type", "exception")],
        payload.as_bytes(),
    )
}

const EVENTS: &[&str] = &[
    r#"{"type":"message_start","message":{"id":"msg_bdrk_01","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}}"#,
    r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
    r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
    // Pretty-printed, as an event may be: its line breaks must not reach the client.
    "{\"type\":\"content_block_delta\",\n \"index\":0,\r\n \"delta\":{\"type\":\"text_delta\",\"text\":\" w\\u00f6rld\\n\"}}",
    r#"{"type":"content_block_stop","index":0}"#,
    r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":3}}"#,
    r#"{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":12,"outputTokenCount":3,"invocationLatency":310,"firstByteLatency":120}}"#,
];

fn stream(events: &[&str]) -> Vec<u8> {
    events.iter().flat_map(|e| chunk(e)).collect()
}

#[test]
fn events_are_unwrapped_in_any_split() {
    let input = stream(EVENTS);
    let (whole, end) = translate_cut(&mut StreamDecoder::new(), &input, &[]);
    end.unwrap();
    let text = String::from_utf8(whole.clone()).unwrap();
    assert!(text.starts_with("event: message_start\ndata: {\"type\":\"message_start\""));
    assert!(text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
    assert!(!text.contains("invocationMetrics"), "{text}");
    let acc = check(&whole).unwrap();
    assert_eq!(acc.text(), "Hello wörld\n");
    for cut in 0..input.len() {
        let (out, end) = translate_cut(&mut StreamDecoder::new(), &input, &[cut]);
        end.unwrap();
        assert_eq!(out, whole, "cut at {cut}");
    }
    let every: Vec<usize> = (1..input.len()).collect();
    let (out, end) = translate_cut(&mut StreamDecoder::new(), &input, &every);
    end.unwrap();
    assert_eq!(out, whole, "byte by byte");
}

#[test]
fn other_events_are_skipped() {
    let mut input = frame(
        &[
            (":event-type", "initial-response"),
            (":message-type", "event"),
        ],
        b"{}",
    );
    input.extend(stream(EVENTS));
    let (out, end) = translate_cut(&mut StreamDecoder::new(), &input, &[]);
    end.unwrap();
    check(&out).unwrap();
}

#[test]
fn an_exception_before_the_answer_is_a_failure_to_fail_over_from() {
    let input = exception("throttlingException", "Too many requests, please wait.");
    let (out, end) = translate_cut(&mut StreamDecoder::new(), &input, &[]);
    assert!(out.is_empty());
    let e = end.unwrap_err();
    assert!(
        e.contains("throttlingException") && e.contains("Too many requests"),
        "{e}"
    );
}

#[test]
fn an_exception_after_the_first_event_ends_the_stream_in_band() {
    for (kind, expected) in [
        ("modelStreamErrorException", "api_error"),
        ("throttlingException", "rate_limit_error"),
        ("serviceUnavailableException", "overloaded_error"),
        ("modelTimeoutException", "timeout_error"),
        ("validationException", "invalid_request_error"),
    ] {
        let mut input = stream(&EVENTS[..3]);
        input.extend(exception(kind, "it broke"));
        input.extend(stream(&EVENTS[3..]));
        let (out, end) = translate_cut(&mut StreamDecoder::new(), &input, &[7]);
        end.unwrap();
        let acc = check(&out).unwrap();
        assert_eq!(
            acc.error,
            Some((expected.into(), "it broke".into())),
            "{kind}"
        );
        assert_eq!(acc.text(), "Hello", "nothing after the error: {kind}");
    }
}

#[test]
fn bad_chunks_and_broken_frames_fail() {
    let not_base64 = frame(
        &[(":event-type", "chunk"), (":message-type", "event")],
        br#"{"bytes":"%%%"}"#,
    );
    let no_bytes = frame(
        &[(":event-type", "chunk"), (":message-type", "event")],
        b"{}",
    );
    let no_type = frame(&[(":event-type", "chunk")], b"{}");
    for (input, why) in [
        (not_base64, "not base64"),
        (no_bytes, "without its bytes"),
        (chunk("{mock garbage"), "not an Anthropic event"),
        (chunk(r#"{"type":"bad\nname"}"#), "not an Anthropic event"),
        (chunk("[1]"), "not an Anthropic event"),
        (no_type, "without a message type"),
    ] {
        let mut all = stream(&EVENTS[..2]);
        all.extend(input);
        let (out, end) = translate_cut(&mut StreamDecoder::new(), &all, &[]);
        let e = end.unwrap_err();
        assert!(e.contains(why), "{e} should say {why}");
        assert!(
            String::from_utf8(out).unwrap().ends_with("\n\n"),
            "whole events only"
        );
    }
    // A frame whose CRC is wrong, and a stream cut inside a frame.
    let mut corrupt = stream(EVENTS);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    let (_, end) = translate_cut(&mut StreamDecoder::new(), &corrupt, &[]);
    assert!(end.unwrap_err().contains("CRC"));
    let whole = stream(EVENTS);
    let (_, end) = translate_cut(&mut StreamDecoder::new(), &whole[..whole.len() - 3], &[]);
    assert!(end.unwrap_err().contains("inside a frame"));
}

#[test]
fn payloads_and_events_in_another_order_are_read_member_by_member() {
    let event = r#"{"index":0,"type":"content_block_stop"}"#;
    let payload = format!("{{\"p\":\"ab\",\"bytes\":\"{}\"}}", STANDARD.encode(event));
    let framed = frame(
        &[(":event-type", "chunk"), (":message-type", "event")],
        payload.as_bytes(),
    );
    let mut input = stream(&EVENTS[..2]);
    input.extend(framed);
    let (out, end) = translate_cut(&mut StreamDecoder::new(), &input, &[]);
    end.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.ends_with(
            "event: content_block_stop\ndata: {\"index\":0,\"type\":\"content_block_stop\"}\n\n"
        ),
        "{text}"
    );
}
