//! Whole `GenerateContentResponse`s as Anthropic messages and `countTokens` answers as
//! count_tokens ones (TRANSLATION.md §2 "Response and stream"), each fed in pieces of several
//! sizes: all must give the same answer.

use serde_json::{json, Value};

use super::*;
use crate::dialect::events::MessageHead;
use crate::dialect::tools::ToolNames;
use crate::dialect::Dialect;
use crate::stream::translate::Translate;

const LONG: &str = "mcp__a_server_with_a_long_name__a_tool_with_an_even_longer_name_x";

fn context() -> Context {
    let mut tools = ToolNames::default();
    tools.upstream(LONG);
    Context {
        dialect: Dialect::Gemini,
        head: MessageHead {
            id: "msg_g2".into(),
            model: "claude-alias".into(),
            input_tokens: 11,
        },
        tools,
        request_id: "req_g2".into(),
        ..Context::default()
    }
}

/// `body` through `decoder` in pieces of `size` bytes: the output and how it ended.
fn run(mut decoder: impl Translate, body: &str, size: usize) -> (Vec<u8>, Result<(), String>) {
    let mut out = Vec::new();
    for piece in body.as_bytes().chunks(size) {
        if let Err(e) = decoder.feed(piece, &mut out) {
            return (out, Err(e));
        }
    }
    let end = decoder.finish(&mut out);
    (out, end)
}

/// The message for `body`, the same whatever the pieces.
fn decode(body: &str) -> Value {
    let (whole, end) = run(MessageDecoder::new(context()), body, body.len());
    end.unwrap_or_else(|e| panic!("{e}"));
    for size in [1, 3, 64] {
        assert_eq!(
            run(MessageDecoder::new(context()), body, size),
            (whole.clone(), Ok(())),
            "pieces of {size}"
        );
    }
    serde_json::from_slice(&whole).unwrap_or_else(|e| panic!("{e}: {:?}", whole))
}

fn refused(body: &str) -> String {
    let (out, end) = run(MessageDecoder::new(context()), body, 4);
    assert!(out.is_empty());
    end.unwrap_err()
}

/// An answer whose first candidate holds `parts`, with `finish` and usage as Gemini words them.
fn answer(parts: Value, finish: &str) -> String {
    json!({
        "candidates": [{
            "content": {"parts": parts, "role": "model"},
            "finishReason": finish,
            "index": 0
        }],
        "usageMetadata": {
            "promptTokenCount": 1200, "candidatesTokenCount": 40, "totalTokenCount": 1440,
            "cachedContentTokenCount": 1000, "thoughtsTokenCount": 200,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1200}],
            "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 1000}]
        },
        "modelVersion": "gemini-2.5-pro",
        "responseId": "mBtYaKjsHMPqz7IPsL6j0Ak"
    })
    .to_string()
}

#[test]
fn thought_parts_make_one_thinking_block_with_its_signature() {
    let m = decode(&answer(
        json!([
            {"text": "**Reading the \"question\"**\n", "thought": true},
            {"text": "It is about Paris.", "thought": true, "thoughtSignature": "CiQB0e2Kb1Zx+/sig=="},
            {"text": "Paris is the capital."}
        ]),
        "STOP",
    ));
    assert_eq!(
        m,
        json!({
            "id": "msg_g2",
            "type": "message",
            "role": "assistant",
            "model": "claude-alias",
            "content": [
                {"type": "thinking", "thinking": "**Reading the \"question\"**\nIt is about Paris.", "signature": "CiQB0e2Kb1Zx+/sig=="},
                {"type": "text", "text": "Paris is the capital."}
            ],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {"input_tokens": 200, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1000, "output_tokens": 240}
        })
    );
    // A signature on the first part after the thoughts ends their block just the same, and a
    // signature-only part opens no empty text block.
    for after in [
        json!([{"text": "Answer.", "thoughtSignature": "s2"}]),
        json!([{"thoughtSignature": "s2"}, {"text": "Answer."}]),
        json!([{"text": "", "thoughtSignature": "s2"}, {"text": "Answer."}]),
    ] {
        let mut parts = vec![json!({"text": "Hm.", "thought": true})];
        parts.extend(after.as_array().unwrap().iter().cloned());
        assert_eq!(
            decode(&answer(json!(parts), "STOP"))["content"],
            json!([
                {"type": "thinking", "thinking": "Hm.", "signature": "s2"},
                {"type": "text", "text": "Answer."}
            ]),
            "{after}"
        );
    }
    // Thoughts with no signature at all still make their block, wherever they end.
    let m = decode(&answer(
        json!([{"text": "Only thoughts.", "thought": true}]),
        "MAX_TOKENS",
    ));
    assert_eq!(
        m["content"],
        json!([{"type": "thinking", "thinking": "Only thoughts.", "signature": ""}])
    );
    assert_eq!(m["stop_reason"], "max_tokens");
}

#[test]
fn a_function_call_with_its_signature() {
    // Gemini 3: the signature is on the call, and must come back with it.
    let m = decode(&answer(
        json!([{
            "functionCall": {"name": "get_weather", "args": {"city": "Paris", "days": [1, 2]}},
            "thoughtSignature": "EpsCCpgCAdHtim9+ZXo="
        }]),
        "STOP",
    ));
    assert_eq!(
        m["content"],
        json!([
            {"type": "thinking", "thinking": "", "signature": "EpsCCpgCAdHtim9+ZXo="},
            {"type": "tool_use", "id": "toolu_g2_0", "name": "get_weather", "input": {"city": "Paris", "days": [1, 2]}}
        ])
    );
    // Gemini says STOP when it calls a function.
    assert_eq!(m["stop_reason"], "tool_use");
}

#[test]
fn calls_with_and_without_ids_and_arguments() {
    let short = ToolNames::default().upstream(LONG).into_owned();
    let m = decode(&answer(
        json!([
            {"text": "Checking."},
            {"functionCall": {"id": "x7k2p9qa", "name": "get_time", "args": {"zone": "UTC"}}},
            {"functionCall": {"name": short, "args": {"a": null}}},
            {"functionCall": {"name": "ping"}},
            {"functionCall": {"id": "call.odd:3", "name": "odd", "args": []}}
        ]),
        "STOP",
    ));
    let content = m["content"].as_array().unwrap();
    assert_eq!(content[0], json!({"type": "text", "text": "Checking."}));
    assert_eq!(
        content[1],
        json!({"type": "tool_use", "id": "x7k2p9qa", "name": "get_time", "input": {"zone": "UTC"}})
    );
    assert_eq!(
        content[2],
        json!({"type": "tool_use", "id": "toolu_g2_1", "name": LONG, "input": {"a": null}})
    );
    assert_eq!(
        content[3],
        json!({"type": "tool_use", "id": "toolu_g2_2", "name": "ping", "input": {}})
    );
    // An id a client would refuse is carried reversibly; arguments that are no object are none.
    let odd = content[4]["id"].as_str().unwrap();
    assert_eq!(crate::dialect::tools::upstream_id(odd), "call.odd:3");
    assert_eq!(content[4]["input"], json!({}));
    assert_eq!(m["stop_reason"], "tool_use");
}

#[test]
fn finish_reasons_and_a_blocked_prompt() {
    for (finish, expected) in [
        ("STOP", "end_turn"),
        ("MAX_TOKENS", "max_tokens"),
        ("SAFETY", "refusal"),
        ("RECITATION", "refusal"),
        ("PROHIBITED_CONTENT", "refusal"),
        ("IMAGE_SAFETY", "refusal"),
        ("OTHER", "end_turn"),
    ] {
        let m = decode(&answer(json!([{"text": "x"}]), finish));
        assert_eq!(m["stop_reason"], expected, "{finish}");
    }
    let blocked = r#"{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"HIGH"}]},"usageMetadata":{"promptTokenCount":14,"totalTokenCount":14},"modelVersion":"gemini-2.5-flash","responseId":"blk2"}"#;
    let m = decode(blocked);
    assert_eq!(m["content"], json!([]));
    assert_eq!(m["stop_reason"], "refusal");
    assert_eq!(m["usage"]["input_tokens"], 14);
    // A candidate with no content and no usage: an empty message, usage estimated.
    let m = decode(r#"{"candidates":[{"finishReason":"STOP","index":0}]}"#);
    assert_eq!(
        (
            &m["content"],
            &m["stop_reason"],
            &m["usage"]["input_tokens"]
        ),
        (&json!([]), &json!("end_turn"), &json!(11))
    );
}

#[test]
fn bodies_that_are_no_answer_are_errors() {
    assert!(refused("upstream connect error").starts_with("sent an answer that is not JSON"));
    assert_eq!(
        refused(
            r#"{"error":{"code":400,"message":"Invalid JSON payload received.","status":"INVALID_ARGUMENT"}}"#
        ),
        "answered with an error: Invalid JSON payload received."
    );
}

#[test]
fn a_token_count_is_an_input_token_count() {
    let count = |body: &str, size: usize| run(CountDecoder::of(Count), body, size);
    for body in [
        r#"{"totalTokens": 42}"#,
        r#"{"totalTokens":42,"cachedContentTokenCount":0,"promptTokensDetails":[{"modality":"TEXT","tokenCount":42}]}"#,
    ] {
        for size in [1, 5, body.len()] {
            let (out, end) = count(body, size);
            end.unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), r#"{"input_tokens":42}"#);
        }
    }
    let (out, end) = count(r#"{"error":{"message":"x"}}"#, 3);
    assert!(out.is_empty());
    assert!(end
        .unwrap_err()
        .starts_with("sent a token count that cannot be read"));
}
