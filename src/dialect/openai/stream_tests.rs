//! Recorded chunk sequences for every case of TRANSLATION.md §1 "Stream", each decoded whole and
//! cut at every byte, checked against the grammar and against what the client should accumulate.

use serde_json::json;

use super::*;
use crate::dialect::events::MessageHead;
use crate::dialect::grammar::{check, translate_cut, Accumulated, Content};
use crate::stream::translate::Translate;

fn context() -> Context {
    let mut tools = crate::dialect::tools::ToolNames::default();
    tools.upstream("mcp__a_server_with_a_long_name__a_tool_with_an_even_longer_name_x");
    Context {
        head: MessageHead {
            id: "msg_1".into(),
            model: "claude-x".into(),
            input_tokens: 11,
        },
        stream: true,
        stop_sequences: vec!["END".into()],
        tools,
        request_id: "req_1".into(),
        ..Context::default()
    }
}

/// `data:` events from JSON chunks, then `[DONE]`.
fn sse(chunks: &[&str]) -> String {
    let mut s: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    s.push_str("data: [DONE]\n\n");
    s
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
        let (split, _) = decode_cut(input.as_bytes(), &[cut]);
        assert_eq!(
            String::from_utf8_lossy(&split),
            String::from_utf8_lossy(&whole),
            "cut at {cut}"
        );
    }
    check(&whole).unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&whole)))
}

const ROLE: &str = r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
const USAGE: &str = r#"{"id":"c1","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":8}}}"#;

fn content(text: &str) -> String {
    json!({"choices":[{"index":0,"delta":{"content":text},"finish_reason":null}]}).to_string()
}

fn finish(reason: &str) -> String {
    json!({"choices":[{"index":0,"delta":{},"finish_reason":reason}]}).to_string()
}

#[test]
fn text_then_finish_then_usage() {
    let input = sse(&[
        ROLE,
        &content("Hello"),
        &content(" \"world\"\n"),
        &finish("stop"),
        USAGE,
    ]);
    let acc = decode(&input);
    assert_eq!(acc.text(), "Hello \"world\"\n");
    assert_eq!(acc.stop_reason.as_deref(), Some("end_turn"));
    assert_eq!(
        acc.usage,
        json!({"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 8, "output_tokens": 5})
    );
    assert_eq!((acc.id.as_str(), acc.model.as_str()), ("msg_1", "claude-x"));
}

#[test]
fn message_start_carries_the_estimate_until_the_real_count() {
    let (out, _) = decode_cut(sse(&[ROLE, &finish("stop"), USAGE]).as_bytes(), &[]);
    let text = String::from_utf8(out).unwrap();
    let start = text.split("\n\n").next().unwrap();
    assert!(start.contains("\"input_tokens\":11"), "{start}");
}

#[test]
fn content_and_finish_reason_in_one_chunk() {
    let both = r#"{"choices":[{"index":0,"delta":{"content":"all at once"},"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":3}}"#;
    let acc = decode(&sse(&[both]));
    assert_eq!(acc.text(), "all at once");
    assert_eq!(acc.stop_reason.as_deref(), Some("max_tokens"));
    assert_eq!(acc.usage["output_tokens"], 3);
}

#[test]
fn no_done_after_usage_ends_normally_but_no_finish_is_an_error() {
    let input = format!(
        "data: {ROLE}\n\ndata: {}\n\ndata: {}\n\ndata: {USAGE}\n\n",
        content("x"),
        finish("stop")
    );
    let acc = decode(&input);
    assert_eq!(acc.stop_reason.as_deref(), Some("end_turn"));

    let cut = format!("data: {ROLE}\n\ndata: {}\n\n", content("half"));
    let (out, end) = decode_cut(cut.as_bytes(), &[]);
    assert_eq!(
        end.unwrap_err(),
        "ended the stream before its finish_reason"
    );
    // What came is whole events; the relay adds the error after them.
    let mut with_error = out.clone();
    with_error.extend_from_slice(b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"cut\"}}\n\n");
    assert_eq!(check(&with_error).unwrap().text(), "half");

    let (out, end) = decode_cut(b"", &[]);
    assert!(out.is_empty());
    assert_eq!(
        end.unwrap_err(),
        "ended the stream without sending any chunk"
    );
}

#[test]
fn done_without_usage_or_finish_still_ends_the_message() {
    let acc = decode(&sse(&[ROLE, &content("ok")]));
    assert_eq!(acc.stop_reason.as_deref(), Some("end_turn"));
    // No usage came: the estimate, and the output counted from the text.
    assert_eq!(acc.usage["input_tokens"], 11);
    assert_eq!(acc.usage["output_tokens"], 1);
}

#[test]
fn reasoning_under_both_names_then_text() {
    for field in ["reasoning_content", "reasoning"] {
        let think = |t: &str| json!({"choices":[{"index":0,"delta":{field:t}}]}).to_string();
        let acc = decode(&sse(&[
            ROLE,
            &think("Let me "),
            &think("think."),
            &content("Answer."),
            &finish("stop"),
        ]));
        assert_eq!(
            acc.blocks,
            [
                Content::Thinking {
                    thinking: "Let me think.".into(),
                    signature: String::new()
                },
                Content::Text("Answer.".into())
            ],
            "{field}"
        );
    }
}

fn call(index: Option<u32>, id: Option<&str>, name: Option<&str>, args: Option<&str>) -> String {
    let mut c = json!({"type": "function", "function": {}});
    if let Some(i) = index {
        c["index"] = json!(i);
    }
    if let Some(id) = id {
        c["id"] = json!(id);
    }
    if let Some(n) = name {
        c["function"]["name"] = json!(n);
    }
    if let Some(a) = args {
        c["function"]["arguments"] = json!(a);
    }
    json!({"choices":[{"index":0,"delta":{"tool_calls":[c]}}]}).to_string()
}

#[test]
fn parallel_calls_with_interleaved_indexes_stay_apart() {
    let input = sse(&[
        ROLE,
        &call(Some(0), Some("call_a"), Some("get_weather"), Some("")),
        &call(Some(1), Some("call_b"), Some("get_time"), Some("")),
        &call(Some(0), None, None, Some("{\"city\": ")),
        &call(Some(1), None, None, Some("{\"zone\": \"UTC")),
        &call(Some(0), None, None, Some("\"Paris\"}")),
        &call(Some(1), None, None, Some("\"}")),
        &finish("tool_calls"),
        USAGE,
    ]);
    let acc = decode(&input);
    assert_eq!(
        acc.tool_uses(),
        [
            ("call_a", "get_weather", &json!({"city": "Paris"})),
            ("call_b", "get_time", &json!({"zone": "UTC"})),
        ]
    );
    assert_eq!(acc.stop_reason.as_deref(), Some("tool_use"));
}

#[test]
fn id_and_name_arriving_late_and_noise_between() {
    let noise = r#"{"choices":[{"index":0,"delta":{"content":null,"tool_calls":[{"index":0,"function":{"arguments":""}}]}}]}"#;
    let input = sse(&[
        ROLE,
        &call(Some(0), None, None, Some("{\"q\"")),
        noise,
        &content(""),
        &call(Some(0), Some("call_late"), None, None),
        &call(Some(0), Some(""), Some("search"), Some(": \"x\"}")),
        &finish("tool_calls"),
    ]);
    let acc = decode(&input);
    assert_eq!(
        acc.tool_uses(),
        [("call_late", "search", &json!({"q": "x"}))]
    );
}

#[test]
fn a_call_that_never_gets_its_id_or_name_is_kept() {
    let acc = decode(&sse(&[
        ROLE,
        &call(Some(0), None, None, Some("{}")),
        &finish("tool_calls"),
    ]));
    let uses = acc.tool_uses();
    assert_eq!(uses.len(), 1);
    assert_eq!(uses[0].0, "toolu_1_0");
    assert_eq!((uses[0].1, uses[0].2), ("unnamed_tool", &json!({})));
}

#[test]
fn missing_indexes_and_reused_index_zero() {
    // No index: fragments continue the last call; a new id is a new call.
    let input = sse(&[
        ROLE,
        &call(None, Some("call_1"), Some("a"), Some("{\"n\":")),
        &call(None, None, None, Some("1}")),
        &call(None, Some("call_2"), Some("b"), Some("{\"n\":2}")),
        &finish("tool_calls"),
    ]);
    let acc = decode(&input);
    assert_eq!(
        acc.tool_uses(),
        [
            ("call_1", "a", &json!({"n": 1})),
            ("call_2", "b", &json!({"n": 2}))
        ]
    );
    // Every call numbered 0, each with its own id.
    let input = sse(&[
        ROLE,
        &call(Some(0), Some("x1"), Some("a"), Some("{}")),
        &call(Some(0), Some("x2"), Some("b"), Some("{\"k\":")),
        &call(Some(0), None, None, Some("true}")),
        &finish("tool_calls"),
    ]);
    let acc = decode(&input);
    assert_eq!(
        acc.tool_uses(),
        [("x1", "a", &json!({})), ("x2", "b", &json!({"k": true}))]
    );
    // A missing choice index counts as the first choice.
    let missing_choice = r#"{"choices":[{"delta":{"content":"hi"}}]}"#;
    assert_eq!(
        decode(&sse(&[missing_choice, &finish("stop")])).text(),
        "hi"
    );
}

#[test]
fn a_whole_call_in_one_chunk_and_ollama_saying_stop() {
    let input = sse(&[
        ROLE,
        &call(Some(0), Some("call_0"), Some("get"), Some("{\"a\":[1,2]}")),
        &finish("stop"),
    ]);
    let acc = decode(&input);
    assert_eq!(acc.tool_uses(), [("call_0", "get", &json!({"a": [1, 2]}))]);
    assert_eq!(acc.stop_reason.as_deref(), Some("tool_use"));
}

#[test]
fn text_waits_while_a_call_is_incomplete() {
    let input = sse(&[
        ROLE,
        &content("Let me look."),
        &call(Some(0), Some("c"), Some("f"), Some("{\"a\":")),
        &content(" (still thinking)"),
        &call(Some(0), None, None, Some("1}")),
        &content(" done"),
        &finish("tool_calls"),
    ]);
    let acc = decode(&input);
    assert_eq!(
        acc.blocks,
        [
            Content::Text("Let me look.".into()),
            Content::ToolUse {
                id: "c".into(),
                name: "f".into(),
                input: json!({"a": 1})
            },
            Content::Text(" (still thinking) done".into()),
        ]
    );
}

#[test]
fn arguments_that_go_wrong_are_cut_where_they_stop_being_json() {
    let input = sse(&[
        ROLE,
        &call(Some(0), Some("c"), Some("f"), Some("{\"a\": 1}")),
        &call(Some(0), None, None, Some("} trailing garbage")),
        &call(Some(1), Some("d"), Some("g"), Some("{\"b\": tru")),
        &call(Some(1), None, None, Some("x}")),
        &finish("tool_calls"),
    ]);
    let (out, end) = decode_cut(input.as_bytes(), &[]);
    end.unwrap();
    let text = String::from_utf8(out.clone()).unwrap();
    // The second call's arguments stop being JSON at `x`: the client gets the valid part,
    // which never completes (a client keeps what its partial parse makes of it).
    assert!(text.contains("{\\\"b\\\": tru"), "{text}");
    assert!(!text.contains("garbage"));
    let acc = check(&out).unwrap();
    assert_eq!(acc.tool_uses()[0].2, &json!({"a": 1}));
    assert_eq!(acc.tool_uses()[1].2, &serde_json::Value::Null);
}

#[test]
fn long_tool_names_are_mapped_back() {
    let long = "mcp__a_server_with_a_long_name__a_tool_with_an_even_longer_name_x";
    let mut names = crate::dialect::tools::ToolNames::default();
    let short = names.upstream(long).into_owned();
    let acc = decode(&sse(&[
        ROLE,
        &call(Some(0), Some("c"), Some(&short), Some("{}")),
        &finish("tool_calls"),
    ]));
    assert_eq!(acc.tool_uses()[0].1, long);
}

#[test]
fn odd_ids_are_carried_reversibly() {
    let acc = decode(&sse(&[
        ROLE,
        &call(Some(0), Some("functions.get:0"), Some("get"), Some("{}")),
        &finish("tool_calls"),
    ]));
    let id = acc.tool_uses()[0].0;
    assert_eq!(crate::dialect::tools::upstream_id(id), "functions.get:0");
}

#[test]
fn stop_reasons() {
    for (finish_reason, expected) in [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        // A tool-call reason without a call is an ordinary end: there is nothing to answer.
        ("function_call", "end_turn"),
        ("tool_calls", "end_turn"),
        ("something_new", "end_turn"),
    ] {
        let acc = decode(&sse(&[ROLE, &content("x"), &finish(finish_reason)]));
        assert_eq!(
            acc.stop_reason.as_deref(),
            Some(expected),
            "{finish_reason}"
        );
    }
    // vLLM names the stop string: a stop sequence of the request.
    let vllm = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop","stop_reason":"END"}]}"#;
    let acc = decode(&sse(&[ROLE, &content("x"), vllm]));
    assert_eq!(
        (acc.stop_reason.as_deref(), acc.stop_sequence.as_deref()),
        (Some("stop_sequence"), Some("END"))
    );
    let other = vllm.replace("\"END\"", "\"STOP\"");
    assert_eq!(
        decode(&sse(&[ROLE, &other])).stop_reason.as_deref(),
        Some("end_turn")
    );
}

#[test]
fn comments_keepalives_and_crlf() {
    let input = format!(
        ": OPENROUTER PROCESSING\r\n\r\ndata: {ROLE}\r\n\r\ndata: : keepalive\r\n\r\n: ping\r\n\r\ndata: {}\r\n\r\ndata: {}\r\n\r\ndata: [DONE]\r\n\r\n",
        content("hi"),
        finish("stop")
    );
    assert_eq!(decode(&input).text(), "hi");
}

#[test]
fn an_error_inside_the_stream_ends_it_in_band_with_its_type() {
    let error =
        r#"{"error":{"message":"Rate limit exceeded","type":"rate_limit_exceeded","code":429}}"#;
    let acc = decode(&format!(
        "data: {ROLE}\n\ndata: {}\n\ndata: {error}\n\ndata: {}\n\n",
        content("par"),
        content("tial")
    ));
    assert_eq!(acc.text(), "par");
    assert_eq!(
        acc.error,
        Some(("rate_limit_error".into(), "Rate limit exceeded".into()))
    );
    // Named by `event: error`, and as a top-level code and message.
    let named = format!("data: {ROLE}\n\nevent: error\ndata: {{\"message\":\"boom\"}}\n\n");
    assert_eq!(
        decode(&named).error,
        Some(("api_error".into(), "boom".into()))
    );
    let top = format!("data: {ROLE}\n\ndata: {{\"code\":503,\"message\":\"down\"}}\n\n");
    assert_eq!(decode(&top).error.map(|e| e.0), Some("api_error".into()));
    // Before anything was sent, an error is a failure the gateway may fail over from.
    let (out, end) = decode_cut(format!("data: {error}\n\n").as_bytes(), &[]);
    assert!(out.is_empty());
    assert!(end.unwrap_err().contains("Rate limit exceeded"));
}

#[test]
fn bytes_that_do_not_parse_end_the_stream_after_the_last_whole_event() {
    let input = format!(
        "data: {ROLE}\n\ndata: {}\n\ndata: {{\"choices\": [oops\n\n",
        content("kept")
    );
    let (out, end) = decode_cut(input.as_bytes(), &[]);
    assert!(end
        .unwrap_err()
        .starts_with("sent a chunk that is not JSON"));
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with("\"text\":\"kept\"}}\n\n"), "{text}");
}

#[test]
fn an_event_that_never_ends_is_refused_at_the_limit() {
    let mut d = StreamDecoder::new(context());
    let mut out = Vec::new();
    d.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"", &mut out)
        .unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut fed = 0;
    let e = loop {
        match d.feed(&chunk, &mut out) {
            Ok(()) => fed += chunk.len(),
            Err(e) => break e,
        }
        assert!(fed <= MAX_HELD, "held more than the limit");
    };
    assert_eq!(e, format!("sent an event longer than {MAX_HELD} bytes"));
}

#[test]
fn queued_calls_are_bounded() {
    let mut d = StreamDecoder::new(context());
    let mut out = Vec::new();
    d.feed(
        format!(
            "data: {}\n\n",
            call(Some(0), Some("a"), Some("f"), Some("{\"x\":\""))
        )
        .as_bytes(),
        &mut out,
    )
    .unwrap();
    let piece = "y".repeat(512 * 1024);
    let big = call(
        Some(1),
        Some("b"),
        Some("g"),
        Some(&format!("{{\"z\":\"{piece}")),
    );
    d.feed(format!("data: {big}\n\n").as_bytes(), &mut out)
        .unwrap();
    let more = call(Some(1), None, None, Some(&piece));
    let mut result = Ok(());
    for _ in 0..16 {
        result = d.feed(format!("data: {more}\n\n").as_bytes(), &mut out);
        if result.is_err() {
            break;
        }
    }
    assert!(result.unwrap_err().contains("could not be relayed in turn"));
}

#[test]
fn a_refusal_is_text() {
    let refusal = r#"{"choices":[{"index":0,"delta":{"refusal":"I can't help with that."}}]}"#;
    let acc = decode(&sse(&[ROLE, refusal, &finish("content_filter")]));
    assert_eq!(acc.text(), "I can't help with that.");
    assert_eq!(acc.stop_reason.as_deref(), Some("refusal"));
}
