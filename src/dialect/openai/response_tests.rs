//! Whole `chat.completion` answers as Anthropic messages (TRANSLATION.md §1 "Non-stream
//! response"), each fed in pieces of several sizes: all must give the same message.

use serde_json::{json, Value};

use super::*;
use crate::dialect::events::MessageHead;
use crate::dialect::tools::ToolNames;
use crate::dialect::Dialect;
use crate::dialect::MAX_HELD;
use crate::stream::translate::Translate;

const LONG: &str = "mcp__a_server_with_a_long_name__a_tool_with_an_even_longer_name_x";

fn context() -> Context {
    let mut tools = ToolNames::default();
    tools.upstream(LONG);
    Context {
        dialect: Dialect::OpenAi,
        head: MessageHead {
            id: "msg_o1".into(),
            model: "claude-alias".into(),
            input_tokens: 11,
        },
        stop_sequences: vec!["END".into(), "\n\nUser:".into()],
        tools,
        request_id: "req_o1".into(),
        ..Context::default()
    }
}

/// `body` fed in pieces of `size` bytes: the output and how it ended.
fn run(body: &str, size: usize) -> (Vec<u8>, Result<(), String>) {
    let mut d = MessageDecoder::new(context());
    let mut out = Vec::new();
    for piece in body.as_bytes().chunks(size) {
        if let Err(e) = d.feed(piece, &mut out) {
            return (out, Err(e));
        }
    }
    let end = d.finish(&mut out);
    (out, end)
}

/// The message for `body`, the same whatever the pieces.
fn decode(body: &str) -> Value {
    let (whole, end) = run(body, body.len().max(1));
    end.unwrap_or_else(|e| panic!("{e}"));
    for size in [1, 2, 7, 64] {
        assert_eq!(run(body, size), (whole.clone(), Ok(())), "pieces of {size}");
    }
    serde_json::from_slice(&whole).unwrap_or_else(|e| panic!("{e}: {:?}", whole))
}

/// Why `body` cannot be decoded; nothing is written then.
fn refused(body: &str) -> String {
    let (out, end) = run(body, 5);
    assert!(out.is_empty());
    end.unwrap_err()
}

/// An answer whose first choice holds `message` and `finish_reason`, with usage.
fn completion(message: Value, finish: &str) -> String {
    json!({
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4.1-2025-04-14",
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
                  "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0}},
        "system_fingerprint": "fp_3a668b2c1c"
    })
    .to_string()
}

const DEEPSEEK: &str = r#"{"id":"930c60df-bf64-41c9-a88e-3ec75f81e00e","object":"chat.completion","created":1741234567,"model":"deepseek-reasoner","choices":[{"index":0,"message":{"role":"assistant","content":"Let me look both up.","reasoning_content":"The user wants the \"weather\" and the time.","tool_calls":[{"index":0,"id":"call_0_9f3c","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\", \"days\": [1, 2]}"}},{"index":1,"id":"call_1_4a2b","type":"function","function":{"name":"get_time","arguments":"{\"zone\": "}}]},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":1200,"completion_tokens":85,"total_tokens":1285,"prompt_tokens_details":{"cached_tokens":1024},"prompt_cache_hit_tokens":1024,"prompt_cache_miss_tokens":176},"system_fingerprint":"fp_7e73fd9a08"}"#;

#[test]
fn blocks_in_order_thinking_text_tool_calls() {
    let m = decode(DEEPSEEK);
    assert_eq!(
        m,
        json!({
            "id": "msg_o1",
            "type": "message",
            "role": "assistant",
            "model": "claude-alias",
            "content": [
                {"type": "thinking", "thinking": "The user wants the \"weather\" and the time.", "signature": ""},
                {"type": "text", "text": "Let me look both up."},
                {"type": "tool_use", "id": "call_0_9f3c", "name": "get_weather", "input": {"city": "Paris", "days": [1, 2]}},
                // Arguments that are not a whole object: the client cannot use half of one.
                {"type": "tool_use", "id": "call_1_4a2b", "name": "get_time", "input": {}}
            ],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": {"input_tokens": 176, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1024, "output_tokens": 85}
        })
    );
}

#[test]
fn reasoning_under_its_other_name() {
    // vLLM ≥ 0.9 and OpenRouter call it `reasoning`.
    let m = decode(&completion(
        json!({"role": "assistant", "content": "42", "reasoning": "Six times seven."}),
        "stop",
    ));
    assert_eq!(
        m["content"],
        json!([
            {"type": "thinking", "thinking": "Six times seven.", "signature": ""},
            {"type": "text", "text": "42"}
        ])
    );
    assert_eq!(m["stop_reason"], "end_turn");
    // Empty reasoning and null content make no blocks.
    let m = decode(&completion(
        json!({"role": "assistant", "content": null, "reasoning_content": ""}),
        "stop",
    ));
    assert_eq!(m["content"], json!([]));
}

#[test]
fn any_tool_call_makes_the_stop_tool_use() {
    // Ollama says `stop` when it calls a tool.
    let call = json!({"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_k3j4", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}
    ]});
    let m = decode(&completion(call.clone(), "stop"));
    assert_eq!(m["stop_reason"], "tool_use");
    assert_eq!(
        m["content"],
        json!([{"type": "tool_use", "id": "call_k3j4", "name": "get_weather", "input": {"city": "Oslo"}}])
    );
    // But a call cut by the limit is max_tokens.
    assert_eq!(
        decode(&completion(call, "length"))["stop_reason"],
        "max_tokens"
    );
}

#[test]
fn finish_reasons() {
    for (finish, expected) in [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        // `tool_calls` without a call is an ordinary end: there is nothing to answer.
        ("tool_calls", "end_turn"),
        ("function_call", "end_turn"),
        ("something_new", "end_turn"),
    ] {
        let m = decode(&completion(
            json!({"role": "assistant", "content": "x"}),
            finish,
        ));
        assert_eq!(m["stop_reason"], expected, "{finish}");
    }
    // No finish_reason at all: the answer is whole, so it ended.
    let body = DEEPSEEK.replace("\"finish_reason\":\"tool_calls\"", "\"finish_reason\":null");
    assert_eq!(decode(&body)["stop_reason"], "tool_use");
}

#[test]
fn a_refusal_is_text_and_the_stop_reason() {
    let m = decode(&completion(
        json!({"role": "assistant", "content": null, "refusal": "I can't help with that."}),
        "stop",
    ));
    assert_eq!(
        m["content"],
        json!([{"type": "text", "text": "I can't help with that."}])
    );
    assert_eq!(m["stop_reason"], "refusal");
    // `refusal: null` beside content is no refusal.
    let m = decode(&completion(
        json!({"role": "assistant", "content": "Sure.", "refusal": null}),
        "stop",
    ));
    assert_eq!(m["stop_reason"], "end_turn");
}

#[test]
fn vllm_names_the_stop_sequence() {
    let vllm = |stop_reason: Value| {
        json!({
            "id": "cmpl-8f2e", "object": "chat.completion", "created": 1741569952,
            "model": "Qwen/Qwen3-8B",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Done.", "tool_calls": []},
                         "logprobs": null, "finish_reason": "stop", "stop_reason": stop_reason}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9, "prompt_tokens_details": null}
        })
        .to_string()
    };
    let m = decode(&vllm(json!("\n\nUser:")));
    assert_eq!(
        (&m["stop_reason"], &m["stop_sequence"]),
        (&json!("stop_sequence"), &json!("\n\nUser:"))
    );
    // A stop string the client did not ask for, or an end-of-sequence token id, is a plain end.
    for other in [json!("</s>"), json!(151645), Value::Null] {
        let m = decode(&vllm(other.clone()));
        assert_eq!(
            (&m["stop_reason"], &m["stop_sequence"]),
            (&json!("end_turn"), &Value::Null),
            "{other}"
        );
    }
    assert_eq!(m["usage"]["input_tokens"], 7);
}

#[test]
fn usage_with_and_without_cached_tokens() {
    let m = decode(&completion(
        json!({"role": "assistant", "content": "x"}),
        "stop",
    ));
    assert_eq!(
        m["usage"],
        json!({"input_tokens": 19, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 10})
    );
    // DeepSeek's own name for the cache hits, alone.
    let body = r#"{"id":"d1","object":"chat.completion","model":"deepseek-chat","choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"stop"}],"usage":{"prompt_tokens":500,"completion_tokens":3,"total_tokens":503,"prompt_cache_hit_tokens":448,"prompt_cache_miss_tokens":52}}"#;
    assert_eq!(
        decode(body)["usage"],
        json!({"input_tokens": 52, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 448, "output_tokens": 3})
    );
    // No usage at all: the estimate from the request.
    let body = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"stop"}]}"#;
    assert_eq!(decode(body)["usage"]["input_tokens"], 11);
}

#[test]
fn calls_without_ids_odd_ids_and_long_names() {
    let short = ToolNames::default().upstream(LONG).into_owned();
    let m = decode(&completion(
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"type": "function", "function": {"name": "a", "arguments": "{}"}},
            {"id": "functions.get:1", "type": "function", "function": {"name": short, "arguments": "{\"k\":1}"}},
            {"id": "", "type": "function", "function": {"name": "c", "arguments": "not json"}}
        ]}),
        "tool_calls",
    ));
    let content = m["content"].as_array().unwrap();
    assert_eq!(content[0]["id"], "toolu_o1_0");
    let odd = content[1]["id"].as_str().unwrap();
    assert_eq!(crate::dialect::tools::upstream_id(odd), "functions.get:1");
    assert!(odd
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
    assert_eq!(content[1]["name"], LONG);
    assert_eq!(content[1]["input"], json!({"k": 1}));
    assert_eq!(
        (&content[2]["id"], &content[2]["input"]),
        (&json!("toolu_o1_2"), &json!({}))
    );
}

#[test]
fn bodies_that_are_no_answer_are_errors() {
    assert!(refused("<html>502 Bad Gateway</html>").starts_with("sent an answer that is not JSON"));
    assert!(refused(&DEEPSEEK[..DEEPSEEK.len() - 1]).starts_with("sent an answer that is not JSON"));
    assert_eq!(
        refused(r#"{"error":{"message":"The server had an error","type":"server_error"}}"#),
        "answered with an error: The server had an error"
    );
    assert_eq!(
        refused(r#"{"id":"x","object":"chat.completion","choices":[]}"#),
        "sent an answer without a choice"
    );
}

#[test]
fn a_body_past_the_limit_is_refused() {
    let mut d = MessageDecoder::new(context());
    let mut out = Vec::new();
    let piece = vec![b' '; 1 << 20];
    let mut fed = 0;
    let e = loop {
        match d.feed(&piece, &mut out) {
            Ok(()) => fed += piece.len(),
            Err(e) => break e,
        }
        assert!(fed <= MAX_HELD);
    };
    assert_eq!(e, format!("sent an answer larger than {MAX_HELD} bytes"));
}
