//! Recorded `streamGenerateContent?alt=sse` sequences for every case of TRANSLATION.md §2
//! "Response and stream", each decoded whole and cut at every byte, checked against the grammar
//! and against what the client should accumulate.
//!
//! The events are shaped as the Gemini API sends them: camelCase fields, `usageMetadata` in every
//! event (running counts, the last one final), `responseId` and `modelVersion` on each, and no
//! `[DONE]`.

use serde_json::{json, Value};

use super::*;
use crate::dialect::events::MessageHead;
use crate::dialect::grammar::{check, translate_cut, Accumulated, Content};
use crate::dialect::tools::ToolNames;
use crate::dialect::Dialect;

const LONG: &str = "mcp__a_server_with_a_long_name__a_tool_with_an_even_longer_name_x";

fn context() -> Context {
    let mut tools = ToolNames::default();
    tools.upstream(LONG);
    Context {
        dialect: Dialect::Gemini,
        head: MessageHead {
            id: "msg_g1".into(),
            model: "claude-alias".into(),
            input_tokens: 11,
        },
        stream: true,
        tools,
        request_id: "req_g1".into(),
        ..Context::default()
    }
}

/// `data:` events from JSON, with the `\r\n` line ends the Gemini API uses; no `[DONE]`.
fn sse(events: &[&str]) -> String {
    events
        .iter()
        .map(|e| format!("data: {e}\r\n\r\n"))
        .collect()
}

/// One `GenerateContentResponse` of a stream: the first candidate's `parts`, its
/// `finishReason` if any, and the running usage.
fn event(parts: Value, finish: Option<&str>, usage: Value) -> String {
    let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    if let Some(f) = finish {
        candidate["finishReason"] = json!(f);
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": "gemini-2.5-flash",
        "responseId": "Lp1XaOXbH4qZ1dkP0vyF-QM"
    })
    .to_string()
}

/// `usageMetadata` as Gemini words it (fields with a zero count are left out, as Gemini does).
fn usage(prompt: u64, candidates: u64, thoughts: u64, cached: u64) -> Value {
    let mut u = json!({
        "promptTokenCount": prompt,
        "totalTokenCount": prompt + candidates + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]
    });
    for (key, n) in [
        ("candidatesTokenCount", candidates),
        ("thoughtsTokenCount", thoughts),
        ("cachedContentTokenCount", cached),
    ] {
        if n > 0 {
            u[key] = json!(n);
        }
    }
    u
}

fn text(t: &str) -> Value {
    json!({ "text": t })
}

fn thought(t: &str) -> Value {
    json!({"text": t, "thought": true})
}

/// Decodes `input` fed in the pieces `cuts` makes: the output and how it ended.
fn decode_cut(input: &[u8], cuts: &[usize]) -> (Vec<u8>, Result<(), String>) {
    translate_cut(&mut StreamDecoder::new(context()), input, cuts)
}

/// Decodes `input` whole and cut at every byte; all must agree. Returns the accumulated message.
fn decode(input: &str) -> Accumulated {
    let (whole, end) = decode_cut(input.as_bytes(), &[]);
    end.unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&whole)));
    for cut in 1..input.len() {
        let (split, end) = decode_cut(input.as_bytes(), &[cut]);
        assert_eq!(end, Ok(()), "cut at {cut}");
        assert_eq!(
            String::from_utf8_lossy(&split),
            String::from_utf8_lossy(&whole),
            "cut at {cut}"
        );
    }
    check(&whole).unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&whole)))
}

/// The output as text, for assertions on the order of events.
fn output(input: &str) -> String {
    let (out, end) = decode_cut(input.as_bytes(), &[]);
    end.unwrap();
    String::from_utf8(out).unwrap()
}

fn thinking(thinking: &str, signature: &str) -> Content {
    Content::Thinking {
        thinking: thinking.into(),
        signature: signature.into(),
    }
}

fn tool(id: &str, name: &str, input: Value) -> Content {
    Content::ToolUse {
        id: id.into(),
        name: name.into(),
        input,
    }
}

#[test]
fn text_over_several_events() {
    let input = sse(&[
        &event(json!([text("The capital")]), None, usage(9, 2, 0, 0)),
        &event(
            json!([text(" of France is \"Paris\".\n")]),
            None,
            usage(9, 9, 0, 0),
        ),
        &event(json!([text(" Ça va?")]), Some("STOP"), usage(9, 12, 0, 0)),
    ]);
    let acc = decode(&input);
    assert_eq!(
        acc.blocks,
        [Content::Text(
            "The capital of France is \"Paris\".\n Ça va?".into()
        )]
    );
    assert_eq!(acc.stop_reason.as_deref(), Some("end_turn"));
    assert_eq!(acc.stop_sequence, None);
    // The client sees the gateway's message id and its own model name, not Gemini's
    // `responseId` and `modelVersion` (the id matches the request id in the logs).
    assert_eq!(
        (acc.id.as_str(), acc.model.as_str()),
        ("msg_g1", "claude-alias")
    );
    assert_eq!(
        acc.usage,
        json!({"input_tokens": 9, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 12})
    );
}

#[test]
fn message_start_carries_the_estimate_until_the_real_count() {
    let text = output(&sse(&[&event(
        json!([text("Hi")]),
        Some("STOP"),
        usage(900, 1, 0, 0),
    )]));
    let start = text.split("\n\n").next().unwrap();
    assert!(start.contains("\"input_tokens\":11,"), "{start}");
    assert!(text.contains("\"usage\":{\"input_tokens\":900,"), "{text}");
}

#[test]
fn thought_parts_then_text() {
    let input = sse(&[
        &event(
            json!([thought("**Weighing the question**\n\nThe user asks")]),
            None,
            usage(20, 0, 31, 0),
        ),
        &event(json!([thought(" about Paris.")]), None, usage(20, 0, 58, 0)),
        &event(json!([text("Paris.")]), None, usage(20, 2, 58, 0)),
        &event(json!([]), Some("STOP"), usage(20, 2, 58, 0)),
    ]);
    let acc = decode(&input);
    assert_eq!(
        acc.blocks,
        [
            thinking(
                "**Weighing the question**\n\nThe user asks about Paris.",
                ""
            ),
            Content::Text("Paris.".into()),
        ]
    );
    // Thoughts are output tokens for Anthropic.
    assert_eq!(acc.usage["output_tokens"], 60);
}

#[test]
fn a_signature_on_the_last_thought_part_ends_its_thinking_block() {
    let last =
        json!({"text": " Done.", "thought": true, "thoughtSignature": "CiQB0e2Kb1Zx+/sig=="});
    let input = sse(&[
        &event(json!([thought("Thinking")]), None, usage(5, 0, 10, 0)),
        &event(json!([last]), None, usage(5, 0, 12, 0)),
        &event(json!([text("Answer")]), Some("STOP"), usage(5, 1, 12, 0)),
    ]);
    assert_eq!(
        decode(&input).blocks,
        [
            thinking("Thinking Done.", "CiQB0e2Kb1Zx+/sig=="),
            Content::Text("Answer".into()),
        ]
    );
}

#[test]
fn a_signature_only_part_goes_to_the_thinking_block_and_opens_no_text() {
    // Gemini words a signature-only part both ways; neither may open an (empty) text block
    // (the case of CLIProxyAPI's gemini_claude_response_test.go).
    for signature_part in [
        json!({"thoughtSignature": "c2lnLXRlc3Q="}),
        json!({"text": "", "thoughtSignature": "c2lnLXRlc3Q="}),
    ] {
        let input = sse(&[
            &event(json!([thought("thinking text")]), None, usage(10, 0, 2, 0)),
            &event(json!([signature_part]), Some("STOP"), usage(10, 0, 2, 0)),
        ]);
        let acc = decode(&input);
        assert_eq!(
            acc.blocks,
            [thinking("thinking text", "c2lnLXRlc3Q=")],
            "{signature_part}"
        );
        assert_eq!(acc.usage["output_tokens"], 2);
        assert!(!output(&input).contains("\"type\":\"text\""));
    }
    // After text, the signature gets an empty thinking block of its own, so that it still comes
    // back with the conversation.
    let input = sse(&[
        &event(json!([text("Hello")]), None, usage(3, 1, 0, 0)),
        &event(
            json!([{"text": "", "thoughtSignature": "late"}]),
            Some("STOP"),
            usage(3, 1, 0, 0),
        ),
    ]);
    assert_eq!(
        decode(&input).blocks,
        [Content::Text("Hello".into()), thinking("", "late")]
    );
}

#[test]
fn a_signature_on_a_function_call_comes_before_its_tool_use() {
    // Gemini 3 puts the signature on the functionCall part; without it back in the history the
    // next request is refused, so it must reach the client as a signature_delta in a thinking
    // block before the tool_use block.
    let call = json!({
        "functionCall": {"name": "get_weather", "args": {"city": "Paris", "unit": "celsius"}},
        "thoughtSignature": "EpsCCpgCAdHtim9+ZXo="
    });
    let plain = sse(&[&event(json!([call]), Some("STOP"), usage(40, 8, 30, 0))]);
    let acc = decode(&plain);
    assert_eq!(
        acc.blocks,
        [
            thinking("", "EpsCCpgCAdHtim9+ZXo="),
            tool(
                "toolu_g1_0",
                "get_weather",
                json!({"city": "Paris", "unit": "celsius"})
            ),
        ]
    );
    assert_eq!(acc.stop_reason.as_deref(), Some("tool_use"));
    let text = output(&plain);
    let signature = text.find("\"type\":\"signature_delta\"").unwrap();
    let tool_use = text.find("\"type\":\"tool_use\"").unwrap();
    assert!(signature < tool_use, "{text}");

    // With thoughts shown, the signature ends their block rather than opening another.
    let with_thoughts = sse(&[
        &event(
            json!([thought("I need the weather tool.")]),
            None,
            usage(40, 0, 30, 0),
        ),
        &event(json!([call]), Some("STOP"), usage(40, 8, 30, 0)),
    ]);
    assert_eq!(
        decode(&with_thoughts).blocks,
        [
            thinking("I need the weather tool.", "EpsCCpgCAdHtim9+ZXo="),
            tool(
                "toolu_g1_0",
                "get_weather",
                json!({"city": "Paris", "unit": "celsius"})
            ),
        ]
    );
}

#[test]
fn function_calls_with_and_without_ids() {
    // The Developer API gives calls an id, Vertex does not: a missing one is made from the
    // message id and the call's number in the message, the same however the stream was cut.
    let input = sse(&[
        &event(json!([text("Looking both up.")]), None, usage(30, 4, 0, 0)),
        &event(
            json!([{"functionCall": {"id": "x7k2p9qa", "name": "get_time", "args": {"zone": "UTC"}}}]),
            None,
            usage(30, 10, 0, 0),
        ),
        &event(
            json!([{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}]),
            None,
            usage(30, 16, 0, 0),
        ),
        &event(
            json!([{"functionCall": {"id": "", "name": "ping"}}]),
            Some("STOP"),
            usage(30, 18, 0, 0),
        ),
    ]);
    let acc = decode(&input);
    assert_eq!(
        acc.blocks,
        [
            Content::Text("Looking both up.".into()),
            tool("x7k2p9qa", "get_time", json!({"zone": "UTC"})),
            tool("toolu_g1_1", "get_weather", json!({"city": "Oslo"})),
            tool("toolu_g1_2", "ping", json!({})),
        ]
    );
    assert_eq!(acc.stop_reason.as_deref(), Some("tool_use"));
}

#[test]
fn several_calls_in_one_event_each_in_one_delta() {
    let args = json!({"query": "rust \"serde\"", "filters": {"lang": ["en", "de"], "max": 5}, "exact": false});
    let input = sse(&[&event(
        json!([
            {"functionCall": {"name": "search", "args": args}},
            {"functionCall": {"name": "search", "args": {"query": "tokio"}}}
        ]),
        Some("STOP"),
        usage(50, 20, 0, 0),
    )]);
    let acc = decode(&input);
    assert_eq!(
        acc.blocks,
        [
            tool("toolu_g1_0", "search", args),
            tool("toolu_g1_1", "search", json!({"query": "tokio"})),
        ]
    );
    // Gemini sends a call whole: one input_json_delta each.
    assert_eq!(output(&input).matches("input_json_delta").count(), 2);
}

#[test]
fn finish_reasons() {
    for (finish, expected) in [
        ("STOP", "end_turn"),
        ("MAX_TOKENS", "max_tokens"),
        ("SAFETY", "refusal"),
        ("RECITATION", "refusal"),
        ("PROHIBITED_CONTENT", "refusal"),
        ("BLOCKLIST", "refusal"),
        ("SPII", "refusal"),
        ("FINISH_REASON_UNSPECIFIED", "end_turn"),
    ] {
        let input = sse(&[
            &event(json!([text("Some")]), None, usage(4, 1, 0, 0)),
            &event(json!([text(" text")]), Some(finish), usage(4, 2, 0, 0)),
        ]);
        let acc = decode(&input);
        assert_eq!(acc.stop_reason.as_deref(), Some(expected), "{finish}");
        assert_eq!(acc.text(), "Some text");
    }
    // A call cut short by the limit is max_tokens, not tool_use.
    let input = sse(&[&event(
        json!([{"functionCall": {"name": "f", "args": {}}}]),
        Some("MAX_TOKENS"),
        usage(4, 2, 0, 0),
    )]);
    assert_eq!(decode(&input).stop_reason.as_deref(), Some("max_tokens"));
}

#[test]
fn a_blocked_prompt_is_a_refusal() {
    let blocked = r#"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"usageMetadata":{"promptTokenCount":14,"totalTokenCount":14,"promptTokensDetails":[{"modality":"TEXT","tokenCount":14}]},"modelVersion":"gemini-2.5-flash","responseId":"blk1"}"#;
    let acc = decode(&sse(&[blocked]));
    assert!(acc.blocks.is_empty());
    assert_eq!(acc.stop_reason.as_deref(), Some("refusal"));
    assert_eq!(acc.usage["input_tokens"], 14);
    assert_eq!(acc.usage["output_tokens"], 0);
}

#[test]
fn usage_takes_cached_and_thought_tokens_apart() {
    let input = sse(&[
        &event(json!([thought("Hm.")]), None, usage(1200, 0, 100, 1000)),
        &event(
            json!([text("Yes.")]),
            Some("STOP"),
            usage(1200, 2, 140, 1000),
        ),
    ]);
    assert_eq!(
        decode(&input).usage,
        json!({"input_tokens": 200, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1000, "output_tokens": 142})
    );
}

#[test]
fn lf_framing_and_the_end_of_the_body_end_it_too() {
    // No `[DONE]` ever comes; the last event may even lack its blank line.
    let input = format!(
        "data: {}\n\ndata: {}",
        event(json!([text("a")]), None, usage(2, 1, 0, 0)),
        event(json!([text("b")]), Some("STOP"), usage(2, 2, 0, 0))
    );
    let acc = decode(&input);
    assert_eq!(acc.text(), "ab");
    assert_eq!(acc.stop_reason.as_deref(), Some("end_turn"));
}

#[test]
fn the_end_before_a_finish_reason_is_an_error_after_whole_events() {
    let input = sse(&[
        &event(json!([thought("Let me")]), None, usage(6, 0, 3, 0)),
        &event(json!([text("Half an ans")]), None, usage(6, 3, 3, 0)),
    ]);
    for cut in 0..input.len() {
        let (out, end) = decode_cut(input.as_bytes(), &[cut]);
        assert_eq!(
            end.unwrap_err(),
            "ended the stream before its finishReason",
            "cut at {cut}"
        );
        // What came is whole events; the relay adds the error after them.
        let mut with_error = out.clone();
        with_error.extend_from_slice(b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"cut\"}}\n\n");
        let acc = check(&with_error).unwrap();
        assert_eq!(acc.text(), "Half an ans");
        assert_eq!(acc.blocks[0], thinking("Let me", ""));
    }
    let (out, end) = decode_cut(b"", &[]);
    assert!(out.is_empty());
    assert_eq!(
        end.unwrap_err(),
        "ended the stream without sending any event"
    );
}

const EXHAUSTED: &str = r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#;

#[test]
fn an_error_event_after_the_start_ends_the_stream_in_band() {
    let input = sse(&[
        &event(json!([text("par")]), None, usage(6, 1, 0, 0)),
        EXHAUSTED,
        &event(json!([text("tial")]), Some("STOP"), usage(6, 2, 0, 0)),
    ]);
    let acc = decode(&input);
    assert_eq!(acc.text(), "par");
    assert_eq!(
        acc.error,
        Some((
            "rate_limit_error".into(),
            "Resource has been exhausted (e.g. check quota).".into()
        ))
    );
    assert_eq!(acc.stop_reason, None);
    // Other statuses map as the table says.
    let unavailable =
        r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#;
    let input = sse(&[
        &event(json!([text("x")]), None, usage(6, 1, 0, 0)),
        unavailable,
    ]);
    assert_eq!(
        decode(&input).error.map(|e| e.0),
        Some("overloaded_error".into())
    );
}

#[test]
fn an_error_before_the_start_is_a_failure_to_fail_over_from() {
    let (out, end) = decode_cut(sse(&[EXHAUSTED]).as_bytes(), &[]);
    assert!(out.is_empty());
    assert_eq!(
        end.unwrap_err(),
        "sent an error before its answer began: Resource has been exhausted (e.g. check quota)."
    );
}

#[test]
fn an_event_that_is_not_json_ends_the_stream_after_the_last_whole_event() {
    let input = format!(
        "{}data: {{\"candidates\": [oops\r\n\r\n",
        sse(&[&event(json!([text("kept")]), None, usage(2, 1, 0, 0))])
    );
    let (out, end) = decode_cut(input.as_bytes(), &[]);
    let e = end.unwrap_err();
    assert!(e.starts_with("sent an event that is not JSON"), "{e}");
    let written = String::from_utf8(out).unwrap();
    assert!(written.ends_with("\"text\":\"kept\"}}\n\n"), "{written}");
    // Nor is OpenAI's `[DONE]`, should a proxy add one before the end.
    let done = format!(
        "{}data: [DONE]\r\n\r\n",
        sse(&[&event(json!([text("x")]), None, usage(2, 1, 0, 0))])
    );
    let e = decode_cut(done.as_bytes(), &[]).1.unwrap_err();
    assert!(e.starts_with("sent an event that is not JSON"), "{e}");
}

#[test]
fn shortened_tool_names_are_mapped_back() {
    let short = ToolNames::default().upstream(LONG).into_owned();
    assert_ne!(short, LONG);
    let input = sse(&[&event(
        json!([{"functionCall": {"name": short, "args": {"a": 1}}}]),
        Some("STOP"),
        usage(3, 3, 0, 0),
    )]);
    assert_eq!(
        decode(&input).tool_uses(),
        [("toolu_g1_0", LONG, &json!({"a": 1}))]
    );
}

#[test]
fn odd_call_ids_are_carried_reversibly() {
    let input = sse(&[&event(
        json!([{"functionCall": {"id": "call.get:0", "name": "get", "args": {}}}]),
        Some("STOP"),
        usage(3, 3, 0, 0),
    )]);
    let acc = decode(&input);
    let id = acc.tool_uses()[0].0;
    assert_eq!(crate::dialect::tools::upstream_id(id), "call.get:0");
}

#[test]
fn other_candidates_and_unknown_parts_are_ignored() {
    // The gateway asks for one candidate; a second, and parts it cannot show (executable code),
    // must not reach the client nor break the stream.
    let two = json!({
        "candidates": [
            {"content": {"parts": [{"text": "first"}], "role": "model"}, "index": 0},
            {"content": {"parts": [{"text": "second"}], "role": "model"}, "index": 1}
        ],
        "usageMetadata": usage(2, 1, 0, 0),
        "responseId": "r"
    })
    .to_string();
    let input = sse(&[
        &two,
        &event(
            json!([{"executableCode": {"language": "PYTHON", "code": "print(1)"}}]),
            Some("STOP"),
            usage(2, 3, 0, 0),
        ),
    ]);
    assert_eq!(decode(&input).blocks, [Content::Text("first".into())]);
}
