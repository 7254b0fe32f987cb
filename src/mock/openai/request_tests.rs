//! Tests of what the mock takes from a Chat Completions request, and what it refuses.

use serde_json::{json, Value};

use super::*;

fn chat(body: Value) -> Result<Chat, ApiError> {
    read(body.to_string().as_bytes())
}

fn refused(body: Value) -> String {
    let e = chat(body.clone()).expect_err(&format!("accepted {body}"));
    assert_eq!(e.status, 400);
    e.message.into_owned()
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

fn calls(ids: &[&str]) -> Value {
    let calls: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "type": "function", "function": {"name": format!("f_{id}"), "arguments": "{\"a\":1}"}}))
        .collect();
    json!({"role": "assistant", "content": null, "tool_calls": calls})
}

fn tool(id: &str, content: &str) -> Value {
    json!({"role": "tool", "tool_call_id": id, "content": content})
}

#[test]
fn reads_what_the_answer_needs() {
    let c = chat(json!({
        "model": "gpt-x",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}, {"type": "text", "text": "there"}]},
            {"role": "assistant", "content": "sure"},
            {"role": "developer", "content": "hmm"},
        ],
        "tools": [{"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {}}}}, {"type": "function", "function": {"name": "noargs"}}],
        "max_tokens": 50,
        "max_completion_tokens": 20,
        "stop": "END",
        "stream": true,
        "stream_options": {"include_usage": true},
        "reasoning_effort": "low",
    }))
    .unwrap();
    assert!(c.stream && c.include_usage);
    let a = c.ask;
    assert_eq!(a.model, "gpt-x");
    assert_eq!(a.last_user_text, "hello there");
    assert_eq!(a.tools, ["search", "noargs"]);
    assert_eq!(a.max_tokens, Some(20));
    assert_eq!(a.stop_sequences, ["END"]);
    assert!(a.reasoning);
    assert!(a.tool_results.is_empty());
    // "be brief" + "hello there" + "sure" + "hmm": 26 bytes.
    assert_eq!(a.input_tokens, 7);

    let c = chat(json!({"model": "m", "messages": [user("x")], "stop": ["a", "b"], "reasoning_effort": null})).unwrap();
    assert!(!c.stream && !c.include_usage && !c.ask.reasoning);
    assert_eq!(c.ask.stop_sequences, ["a", "b"]);
    assert_eq!(c.ask.max_tokens, None);
}

#[test]
fn a_conversation_ending_in_tool_results_is_read_as_them() {
    let c = chat(json!({"model": "m", "messages": [
        user("look it up"),
        calls(&["c1", "c2"]),
        tool("c2", "two"),
        tool("c1", "one"),
    ]}))
    .unwrap();
    let results: Vec<(&str, &str)> = (c.ask.tool_results.iter())
        .map(|r| (r.name.as_str(), r.content.as_str()))
        .collect();
    assert_eq!(results, [("f_c2", "two"), ("f_c1", "one")]);
    assert_eq!(c.ask.last_user_text, "look it up");

    // Answered, then a user turn: the results are history.
    let c = chat(json!({"model": "m", "messages": [
        user("a"), calls(&["c1"]), tool("c1", "one"), user("b"),
    ]}))
    .unwrap();
    assert!(c.ask.tool_results.is_empty());
    assert_eq!(c.ask.last_user_text, "b");
}

#[test]
fn tool_messages_must_answer_the_calls_right_before_them() {
    let base = |messages: Value| json!({"model": "m", "messages": messages});
    let m = refused(base(json!([user("a"), tool("c1", "x")])));
    assert!(
        m.contains("must be a response to a preceeding message with 'tool_calls'"),
        "{m}"
    );
    let m = refused(base(json!([user("a"), calls(&["c1"]), tool("c9", "x")])));
    assert!(
        m.contains("\"c9\"") && m.contains("messages[2].tool_call_id"),
        "{m}"
    );
    // An older call does not count once a user turn came between.
    let m = refused(base(json!([
        user("a"),
        calls(&["c1"]),
        tool("c1", "x"),
        user("b"),
        tool("c1", "again"),
    ])));
    assert!(m.contains("preceeding message"), "{m}");
    let m = refused(base(json!([
        user("a"),
        calls(&["c1", "c2"]),
        tool("c1", "x"),
        user("b")
    ])));
    assert!(
        m.contains("An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'")
            && m.contains("c2")
            && !m.contains("c1"),
        "{m}"
    );
    // Unanswered at the end, too.
    let m = refused(base(json!([user("a"), calls(&["c1"])])));
    assert!(m.contains("did not have response messages: c1"), "{m}");
    let m = refused(base(
        json!([user("a"), calls(&["c1"]), {"role": "tool", "content": "x"}]),
    ));
    assert!(m.contains("tool_call_id: Field required"), "{m}");
}

#[test]
fn roles_and_null_content_are_checked() {
    let base = |messages: Value| json!({"model": "m", "messages": messages});
    let m = refused(base(json!([{"role": "bot", "content": "x"}])));
    assert!(m.contains("messages[0].role") && m.contains("'bot'"), "{m}");
    let m = refused(base(json!([{"content": "x"}])));
    assert!(m.contains("messages[0].role: Field required"), "{m}");
    for role in ["user", "system", "tool", "assistant"] {
        let m = refused(base(
            json!([user("a"), calls(&["c"]), tool("c", "x"), {"role": role, "content": null}]),
        ));
        assert!(
            m.contains("messages[3].content: null is allowed only"),
            "{role}: {m}"
        );
    }
    // A tool message takes only text.
    let m = refused(base(
        json!([user("a"), calls(&["c"]), {"role": "tool", "tool_call_id": "c", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]),
    ));
    assert!(m.contains("a tool message takes only text parts"), "{m}");
}

#[test]
fn tool_calls_and_tools_are_checked() {
    let with_call = |call: Value| json!({"model": "m", "messages": [user("a"), {"role": "assistant", "content": null, "tool_calls": [call]}, tool("c", "x")]});
    let m = refused(with_call(
        json!({"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}),
    ));
    assert!(m.contains("arguments: expected a string"), "{m}");
    let m = refused(with_call(
        json!({"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}),
    ));
    assert!(m.contains("not valid JSON"), "{m}");
    let m = refused(with_call(
        json!({"type": "function", "function": {"name": "f", "arguments": "{}"}}),
    ));
    assert!(m.contains("tool_calls[0].id"), "{m}");
    let long = "n".repeat(65);
    let m = refused(with_call(
        json!({"id": "c", "type": "function", "function": {"name": long, "arguments": "{}"}}),
    ));
    assert!(m.contains("^[a-zA-Z0-9_-]{1,64}$"), "{m}");

    let with_tool = |function: Value| json!({"model": "m", "messages": [user("a")], "tools": [{"type": "function", "function": function}]});
    let m = refused(with_tool(
        json!({"name": "f", "parameters": {"type": "string"}}),
    ));
    assert!(
        m.contains("Invalid schema for function 'f'") && m.contains("\"string\""),
        "{m}"
    );
    let m = refused(with_tool(
        json!({"name": "f", "parameters": {"type": "object"}}),
    ));
    assert!(m.contains("object schema missing properties"), "{m}");
    let m = refused(with_tool(json!({"name": "f", "parameters": []})));
    assert!(m.contains("Invalid schema"), "{m}");
    let m = refused(with_tool(json!({"name": "bad name"})));
    assert!(m.contains("tools[0].function.name"), "{m}");
    let m =
        refused(json!({"model": "m", "messages": [user("a")], "tools": [{"type": "retrieval"}]}));
    assert!(m.contains("tools[0].type"), "{m}");
}

#[test]
fn the_body_and_its_parameters_are_checked() {
    for (body, needle) in [
        (json!([]), "JSON object"),
        (
            json!({"messages": [user("a")]}),
            "you must provide a model parameter",
        ),
        (
            json!({"model": "m"}),
            "Missing required parameter: 'messages'",
        ),
        (json!({"model": "m", "messages": []}), "too short"),
        (
            json!({"model": "m", "messages": [user("a")], "max_tokens": 0}),
            "max_tokens: expected a positive integer",
        ),
        (
            json!({"model": "m", "messages": [user("a")], "stop": 5}),
            "stop:",
        ),
        (
            json!({"model": "m", "messages": [user("a")], "stream_options": {"include_usage": true}}),
            "only allowed when 'stream' is enabled",
        ),
        (
            json!({"model": "m", "messages": [user("a")], "stream": "yes"}),
            "stream: expected a boolean",
        ),
    ] {
        let m = refused(body.clone());
        assert!(m.contains(needle), "{body} -> {m}");
    }
    let e = read(b"{not json").unwrap_err();
    assert!(
        e.message.contains("could not parse the JSON body"),
        "{}",
        e.message
    );
}
