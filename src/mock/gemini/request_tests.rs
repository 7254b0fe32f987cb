//! Tests of what the mock takes from a `generateContent` request, and what it refuses.

use serde_json::{json, Value};

use super::*;

fn ask(body: Value) -> Result<Ask, ApiError> {
    read(body.to_string().as_bytes(), "gemini-x")
}

fn refused(body: Value) -> String {
    let e = ask(body.clone()).expect_err(&format!("accepted {body}"));
    assert_eq!(e.status, 400);
    e.message.into_owned()
}

fn user(text: &str) -> Value {
    json!({"role": "user", "parts": [{"text": text}]})
}

fn model_calls(names: &[&str]) -> Value {
    let parts: Vec<Value> = names
        .iter()
        .map(|n| json!({"functionCall": {"name": n, "args": {"q": 1}}, "thoughtSignature": "skip_thought_signature_validator"}))
        .collect();
    json!({"role": "model", "parts": parts})
}

fn responses(names: &[&str]) -> Value {
    let parts: Vec<Value> = names
        .iter()
        .map(|n| json!({"functionResponse": {"name": n, "response": {"result": format!("{n} done")}}}))
        .collect();
    json!({"role": "user", "parts": parts})
}

#[test]
fn reads_what_the_answer_needs() {
    let a = ask(json!({
        "contents": [user("hello there"), {"role": "model", "parts": [{"text": "thinking", "thought": true}, {"text": "sure"}]}, {"parts": [{"text": "go on"}, {"inline_data": {"mime_type": "image/png", "data": "AA"}}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "tools": [{"functionDeclarations": [{"name": "search", "parametersJsonSchema": {"type": "object"}}, {"name": "lookup.v2", "parameters": {"type": "OBJECT"}}]}, {"googleSearch": {}}],
        "generationConfig": {"maxOutputTokens": 30, "stopSequences": ["END"], "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": true}},
    }))
    .unwrap();
    assert_eq!(a.model, "gemini-x");
    assert_eq!(a.last_user_text, "go on");
    assert_eq!(a.tools, ["search", "lookup.v2"]);
    assert_eq!(a.max_tokens, Some(30));
    assert_eq!(a.stop_sequences, ["END"]);
    assert!(a.reasoning);
    assert!(a.tool_results.is_empty());
    // "hello there" + "sure" + "go on" + "be brief" (the thought is not counted): 28 bytes.
    assert_eq!(a.input_tokens, 7);

    let a = ask(json!({"contents": [user("x")], "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}})).unwrap();
    assert!(!a.reasoning);
    assert_eq!(a.max_tokens, None);
}

#[test]
fn a_last_turn_of_function_responses_is_read_as_tool_results() {
    let a =
        ask(json!({"contents": [user("look"), model_calls(&["a", "b"]), responses(&["a", "b"])]}))
            .unwrap();
    let got: Vec<(&str, &str)> = a
        .tool_results
        .iter()
        .map(|r| (r.name.as_str(), r.content.as_str()))
        .collect();
    assert_eq!(got, [("a", "a done"), ("b", "b done")]);
    assert_eq!(a.last_user_text, "look");
    // An error result, and a response that is neither: its JSON.
    let a = ask(
        json!({"contents": [user("look"), model_calls(&["a", "b"]), {"role": "user", "parts": [
            {"functionResponse": {"name": "a", "response": {"error": "boom"}}},
            {"functionResponse": {"name": "b", "response": {"rows": [1, 2]}}},
            {"text": "and then?"},
        ]}]}),
    )
    .unwrap();
    assert_eq!(a.tool_results[0].content, "boom");
    assert_eq!(a.tool_results[1].content, "{\"rows\":[1,2]}");
    assert_eq!(a.last_user_text, "and then?");
    // Answered, then the user spoke: history.
    let a = ask(json!({"contents": [user("look"), model_calls(&["a"]), responses(&["a"]), {"role": "model", "parts": [{"text": "ok"}]}, user("next")]})).unwrap();
    assert!(a.tool_results.is_empty());
}

#[test]
fn turns_must_alternate_starting_with_the_user() {
    let m = refused(json!({"contents": [{"role": "model", "parts": [{"text": "hi"}]}]}));
    assert!(m.contains("contents[0].role"), "{m}");
    let m = refused(json!({"contents": [user("a"), user("b")]}));
    assert!(
        m.contains("alternate between user and model") && m.contains("contents[1]"),
        "{m}"
    );
    let m = refused(json!({"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]}));
    assert!(m.contains("Please use a valid role: user, model."), "{m}");
    let m = refused(json!({"contents": []}));
    assert!(m.contains("contents is not specified"), "{m}");
    let m = refused(json!({"contents": [{"role": "user", "parts": []}]}));
    assert!(m.contains("contents.parts must not be empty"), "{m}");
    let m = refused(json!({"contents": [{"role": "user", "parts": [{}]}]}));
    assert!(
        m.contains("parts[0]") && m.contains("oneof field 'data'"),
        "{m}"
    );
    let m = refused(
        json!({"contents": [{"role": "user", "parts": [{"text": "a", "inlineData": {}}]}]}),
    );
    assert!(m.contains("(it has 2)"), "{m}");
}

#[test]
fn function_responses_must_match_the_calls_before_them() {
    let m = refused(json!({"contents": [user("a"), model_calls(&["f", "g"]), responses(&["f"])]}));
    assert!(
        m.contains(
            "number of function response parts is equal to the number of function call parts"
        ),
        "{m}"
    );
    assert!(
        m.contains("1 functionResponse parts for 2 functionCall parts"),
        "{m}"
    );
    let m =
        refused(json!({"contents": [user("a"), model_calls(&["f", "g"]), responses(&["g", "f"])]}));
    assert!(
        m.contains("[\"g\", \"f\"]") && m.contains("[\"f\", \"g\"]"),
        "{m}"
    );
    // Responses with no calls before them.
    let m = refused(
        json!({"contents": [user("a"), {"role": "model", "parts": [{"text": "ok"}]}, responses(&["f"])]}),
    );
    assert!(m.contains("number of function response parts"), "{m}");
    // Calls the next user turn does not answer.
    let m = refused(json!({"contents": [user("a"), model_calls(&["f"]), user("never mind")]}));
    assert!(
        m.contains("0 functionResponse parts for 1 functionCall parts"),
        "{m}"
    );
    // A last model turn with calls has no answer yet: nothing to check.
    assert!(ask(json!({"contents": [user("a"), model_calls(&["f"])]})).is_ok());
}

#[test]
fn the_first_function_call_of_a_turn_needs_a_thought_signature() {
    // Gemini signs the first call of a parallel set and leaves the others unsigned.
    let parallel = json!({"role": "model", "parts": [
        {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "sig"},
        {"functionCall": {"name": "g", "args": {}}},
    ]});
    assert!(ask(json!({"contents": [user("a"), parallel, responses(&["f", "g"])]})).is_ok());
    let unsigned = json!({"role": "model", "parts": [
        {"text": "Let me check."},
        {"functionCall": {"name": "g", "args": {}}},
    ]});
    let m = refused(json!({"contents": [user("a"), unsigned, responses(&["g"])]}));
    assert!(
        m.contains("missing a thought_signature")
            && m.contains("default_api:g")
            && m.contains("position 2"),
        "{m}"
    );
    let empty = json!({"role": "model", "parts": [{"functionCall": {"name": "f"}, "thoughtSignature": ""}]});
    assert!(
        refused(json!({"contents": [user("a"), empty, responses(&["f"])]}))
            .contains("thought_signature")
    );
    let snake = json!({"role": "model", "parts": [{"function_call": {"name": "f"}, "thought_signature": "s"}]});
    assert!(ask(json!({"contents": [user("a"), snake, {"role": "user", "parts": [{"function_response": {"name": "f", "response": {}}}]}]})).is_ok());
    let m = refused(
        json!({"contents": [user("a"), {"role": "model", "parts": [{"functionCall": {"name": "f", "args": "{}"}, "thoughtSignature": "s"}]}, responses(&["f"])]}),
    );
    assert!(m.contains("functionCall.args: expected an object"), "{m}");
}

#[test]
fn declarations_and_config_are_checked() {
    let with =
        |d: Value| json!({"contents": [user("a")], "tools": [{"functionDeclarations": [d]}]});
    let m = refused(with(json!({"name": "f"})));
    assert!(
        m.contains("functionDeclarations[0].parametersJsonSchema: Field required"),
        "{m}"
    );
    let m = refused(with(
        json!({"name": "f", "parametersJsonSchema": {}, "parameters": {}}),
    ));
    assert!(m.contains("only one of"), "{m}");
    let m = refused(with(json!({"name": "f", "parametersJsonSchema": "{}"})));
    assert!(m.contains("expected an object"), "{m}");
    let m = refused(with(json!({"name": "9lives", "parametersJsonSchema": {}})));
    assert!(m.contains("Invalid function name"), "{m}");
    let m = refused(with(
        json!({"name": "n".repeat(65), "parametersJsonSchema": {}}),
    ));
    assert!(m.contains("maximum length of 64"), "{m}");
    for (config, needle) in [
        (json!({"maxOutputTokens": 0}), "maxOutputTokens"),
        (json!({"stopSequences": "END"}), "stopSequences"),
        (
            json!({"thinkingConfig": {"includeThoughts": "yes"}}),
            "includeThoughts",
        ),
    ] {
        let m = refused(json!({"contents": [user("a")], "generationConfig": config}));
        assert!(m.contains(needle), "{m}");
    }
    let e = read(b"[1]", "m").unwrap_err();
    assert!(e.message.contains("JSON object"), "{}", e.message);
}
