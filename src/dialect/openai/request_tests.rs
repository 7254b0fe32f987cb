//! Messages requests as OpenAI Chat Completions bodies, case by case of TRANSLATION.md §1
//! "Request": each body is encoded, parsed back, and held to what an OpenAI-compatible server
//! must receive.

use serde_json::{json, Value};

use super::*;
use crate::dialect::tools::client_id;

/// The encoded body's text and the names the encoder learned.
fn encode_text(body: &str, options: &Options) -> (String, ToolNames) {
    let req = MessagesRequest::parse(body.as_bytes()).unwrap();
    let mut names = ToolNames::default();
    let out = encode(&req, "upstream-model", options, &mut names)
        .unwrap_or_else(|e| panic!("{}: {body}", e.0));
    (String::from_utf8(out).unwrap(), names)
}

fn encode_with(body: &str, options: &Options) -> Value {
    serde_json::from_str(&encode_text(body, options).0).unwrap()
}

fn encoded(body: &str) -> Value {
    encode_with(body, &Options::default())
}

/// Why `body` cannot be encoded.
fn refused(body: &str) -> String {
    let req = MessagesRequest::parse(body.as_bytes()).unwrap();
    encode(
        &req,
        "upstream-model",
        &Options::default(),
        &mut ToolNames::default(),
    )
    .unwrap_err()
    .0
}

/// A request with these messages (a JSON array's text) and nothing else of note.
fn with_messages(messages: &str) -> String {
    format!(r#"{{"model":"claude-x","max_tokens":100,"messages":{messages}}}"#)
}

const HI: &str = r#"[{"role":"user","content":"Hi"}]"#;

#[test]
fn the_model_is_the_upstreams_and_the_system_prompt_comes_first() {
    let v = encoded(&format!(
        r#"{{"model":"claude-x","max_tokens":100,"system":"Be brief.","messages":{HI}}}"#
    ));
    assert_eq!(v["model"], "upstream-model");
    assert_eq!(
        v["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"}
        ])
    );
    // Text blocks are joined, and their cache_control goes.
    let v = encoded(&format!(
        r#"{{"model":"claude-x","max_tokens":100,"system":[{{"type":"text","text":"You are Claude Code."}},{{"type":"text","text":"Be brief.","cache_control":{{"type":"ephemeral"}}}}],"messages":{HI}}}"#
    ));
    assert_eq!(
        v["messages"][0],
        json!({"role": "system", "content": "You are Claude Code.\n\nBe brief."})
    );
    // No system prompt, no system message.
    assert_eq!(encoded(&with_messages(HI))["messages"][0]["role"], "user");
}

#[test]
fn one_text_block_is_a_string_and_several_parts_an_array() {
    let v = encoded(&with_messages(
        r#"[{"role":"user","content":[{"type":"text","text":"Only this","cache_control":{"type":"ephemeral"}}]}]"#,
    ));
    assert_eq!(v["messages"][0]["content"], "Only this");
    let v = encoded(&with_messages(
        r#"[{"role":"user","content":[{"type":"text","text":"One"},{"type":"text","text":"Two"}]}]"#,
    ));
    assert_eq!(
        v["messages"][0]["content"],
        json!([{"type": "text", "text": "One"}, {"type": "text", "text": "Two"}])
    );
}

#[test]
fn images_become_image_url_parts() {
    let v = encoded(&with_messages(
        r#"[{"role":"user","content":[
            {"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/4AAQSkZJRg=="}},
            {"type":"image","source":{"type":"url","url":"https://example.com/cat.png"}},
            {"type":"text","text":"What are these?"}
        ]}]"#,
    ));
    assert_eq!(
        v["messages"][0]["content"],
        json!([
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            {"type": "text", "text": "What are these?"}
        ])
    );
    // An image alone is still an array: only text may be a plain string.
    let v = encoded(&with_messages(
        r#"[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]}]"#,
    ));
    assert!(v["messages"][0]["content"].is_array());
}

#[test]
fn a_base64_pdf_becomes_a_file_part() {
    let v = encoded(&with_messages(
        r#"[{"role":"user","content":[
            {"type":"document","title":"report.pdf","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0xLjQK"}},
            {"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0xLjcK"}},
            {"type":"text","text":"Summarise."}
        ]}]"#,
    ));
    assert_eq!(
        v["messages"][0]["content"],
        json!([
            {"type": "file", "file": {"filename": "report.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQK"}},
            {"type": "file", "file": {"filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjcK"}},
            {"type": "text", "text": "Summarise."}
        ])
    );
}

const CALLS: &str = r#"[
    {"role":"user","content":"Weather and time in Paris?"},
    {"role":"assistant","content":[
        {"type":"thinking","thinking":"Two tools.","signature":"EqQBCkYIBxgCKkB"},
        {"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix"},
        {"type":"text","text":"Let me check."},
        {"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"city": "Paris", "days": [1, 2]}},
        {"type":"tool_use","id":"toolu_01B","name":"get_time","input":{}}
    ]},
    {"role":"user","content":[
        {"type":"tool_result","tool_use_id":"toolu_01A","content":[{"type":"text","text":"Sunny"},{"type":"text","text":"21°C"}]},
        {"type":"tool_result","tool_use_id":"toolu_01B","content":"14:02","is_error":false},
        {"type":"text","text":"Thanks!"}
    ]}
]"#;

#[test]
fn an_assistant_turn_is_one_message_with_its_tool_calls() {
    let v = encoded(&with_messages(CALLS));
    let assistant = &v["messages"][1];
    assert_eq!(
        *assistant,
        json!({
            "role": "assistant",
            "content": "Let me check.",
            "reasoning_content": "Two tools.",
            "tool_calls": [
                {"id": "toolu_01A", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"days\": [1, 2]}"}},
                {"id": "toolu_01B", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
            ]
        })
    );
    // A turn that only calls a tool has null content, which servers accept beside tool_calls.
    let v = encoded(&with_messages(
        r#"[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{"a":1}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}]"#,
    ));
    assert_eq!(v["messages"][1]["content"], Value::Null);
    assert!(v["messages"][1].get("reasoning_content").is_none());
}

#[test]
fn tool_results_come_before_the_rest_of_the_user_turn() {
    let v = encoded(&with_messages(CALLS));
    let messages = v["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 5);
    assert_eq!(
        messages[2..],
        [
            json!({"role": "tool", "content": "Sunny\n21°C", "tool_call_id": "toolu_01A"}),
            json!({"role": "tool", "content": "14:02", "tool_call_id": "toolu_01B"}),
            json!({"role": "user", "content": "Thanks!"}),
        ]
    );
}

#[test]
fn an_image_in_a_tool_result_goes_to_the_user_message_after() {
    // A `tool` message takes only text.
    let v = encoded(&with_messages(
        r#"[{"role":"user","content":"Screenshot?"},
        {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"screenshot","input":{}}]},
        {"role":"user","content":[
            {"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"Here it is."},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]},
            {"type":"text","text":"What do you see?"}
        ]}]"#,
    ));
    assert_eq!(
        v["messages"].as_array().unwrap()[2..],
        [
            json!({"role": "tool", "content": "Here it is.", "tool_call_id": "t1"}),
            json!({"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "text", "text": "What do you see?"}
            ]}),
        ]
    );
    // With nothing else in the turn, the image still gets a user message of its own.
    let v = encoded(&with_messages(
        r#"[{"role":"user","content":"x"},
        {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"image","source":{"type":"url","url":"https://e.com/a.png"}}]}]}]"#,
    ));
    assert_eq!(
        v["messages"].as_array().unwrap()[2..],
        [
            json!({"role": "tool", "content": "", "tool_call_id": "t1"}),
            json!({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://e.com/a.png"}}]}),
        ]
    );
}

#[test]
fn tools_become_functions_with_object_schemas() {
    let v = encoded(&format!(
        r#"{{"model":"claude-x","max_tokens":100,"messages":{HI},"tools":[
            {{"name":"get_weather","description":"Weather of a city","input_schema":{{"type":"object","properties":{{"city":{{"type":"string"}}}},"required":["city"]}}}},
            {{"name":"now","input_schema":{{"type":"object"}},"cache_control":{{"type":"ephemeral"}}}},
            {{"type":"custom","name":"empty","input_schema":{{}}}}
        ]}}"#
    ));
    assert_eq!(
        v["tools"],
        json!([
            {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
            {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}},
            {"type": "function", "function": {"name": "empty", "parameters": {"properties": {}}}}
        ])
    );
    // No tools, no `tools` key (some servers refuse an empty list).
    assert!(encoded(&with_messages(HI)).get("tools").is_none());
}

#[test]
fn a_long_tool_name_is_shortened_everywhere_and_mapped_back() {
    let long = "mcp__a_server_with_a_long_name__a_tool_with_an_even_longer_name_x";
    let body = format!(
        r#"{{"model":"claude-x","max_tokens":100,"messages":[
            {{"role":"user","content":"go"}},
            {{"role":"assistant","content":[{{"type":"tool_use","id":"t1","name":"{long}","input":{{}}}}]}},
            {{"role":"user","content":[{{"type":"tool_result","tool_use_id":"t1","content":"done"}}]}}
        ],"tools":[{{"name":"{long}","input_schema":{{"type":"object","properties":{{}}}}}}],
        "tool_choice":{{"type":"tool","name":"{long}"}}}}"#
    );
    let (text, names) = encode_text(&body, &Options::default());
    let v: Value = serde_json::from_str(&text).unwrap();
    let short = v["tools"][0]["function"]["name"].as_str().unwrap();
    assert!(short.len() <= crate::dialect::tools::MAX_NAME, "{short}");
    assert_ne!(short, long);
    assert_eq!(v["messages"][1]["tool_calls"][0]["function"]["name"], short);
    assert_eq!(v["tool_choice"]["function"]["name"], short);
    assert_eq!(names.client(short), long);
    assert!(!text.contains(long));
}

/// A request with one tool and this `tool_choice` (a JSON object's text).
fn with_choice(choice: &str) -> String {
    format!(
        r#"{{"model":"claude-x","max_tokens":100,"messages":{HI},"tools":[{{"name":"get","input_schema":{{"type":"object","properties":{{}}}}}}],"tool_choice":{choice}}}"#
    )
}

#[test]
fn tool_choice_modes() {
    for (choice, expected) in [
        (r#"{"type":"auto"}"#, json!("auto")),
        (r#"{"type":"any"}"#, json!("required")),
        (r#"{"type":"none"}"#, json!("none")),
        (
            r#"{"type":"tool","name":"get"}"#,
            json!({"type": "function", "function": {"name": "get"}}),
        ),
    ] {
        let v = encoded(&with_choice(choice));
        assert_eq!(v["tool_choice"], expected, "{choice}");
        assert!(v.get("parallel_tool_calls").is_none(), "{choice}");
    }
    let v = encoded(&with_choice(
        r#"{"type":"any","disable_parallel_tool_use":true}"#,
    ));
    assert_eq!(
        (&v["tool_choice"], &v["parallel_tool_calls"]),
        (&json!("required"), &json!(false))
    );
    let off = Options {
        parallel_tool_calls: false,
        ..Options::default()
    };
    let v = encode_with(
        &with_choice(r#"{"type":"auto","disable_parallel_tool_use":true}"#),
        &off,
    );
    assert!(v.get("parallel_tool_calls").is_none());
    // Without tools, a tool_choice means nothing and OpenAI refuses one.
    let v = encoded(&format!(
        r#"{{"model":"claude-x","max_tokens":100,"messages":{HI},"tool_choice":{{"type":"auto"}}}}"#
    ));
    assert!(v.get("tool_choice").is_none());
    assert!(refused(&with_choice(r#"{"type":"tool"}"#)).contains("tool_choice.name"));
    assert!(refused(&with_choice(r#"{"type":"sometimes"}"#)).contains("tool_choice.type"));
}

#[test]
fn sampling_parameters_pass_through_exactly() {
    let body = format!(
        r#"{{"model":"claude-x","max_tokens":100,"messages":{HI},"temperature":0.70,"top_p":0.95,"top_k":40,"stop_sequences":["END","\n\nHuman:"]}}"#
    );
    // The numbers are copied as the client wrote them, not parsed and printed again.
    let (text, _) = encode_text(&body, &Options::default());
    assert!(text.contains("\"temperature\":0.70,"), "{text}");
    assert!(text.contains("\"top_p\":0.95,"), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["stop"], json!(["END", "\n\nHuman:"]));
    // top_k is not OpenAI's: only where the upstream says it takes it.
    assert!(v.get("top_k").is_none());
    let with_top_k = Options {
        top_k: true,
        ..Options::default()
    };
    let (text, _) = encode_text(&body, &with_top_k);
    assert!(text.contains("\"top_k\":40,"), "{text}");
    // Nothing asked, nothing sent.
    let v = encoded(&with_messages(HI));
    for key in ["temperature", "top_p", "top_k", "stop", "stream", "user"] {
        assert!(v.get(key).is_none(), "{key}");
    }
}

#[test]
fn max_tokens_or_max_completion_tokens() {
    let v = encoded(&with_messages(HI));
    assert_eq!(v["max_tokens"], 100);
    assert!(v.get("max_completion_tokens").is_none());
    let v = encode_with(
        &with_messages(HI),
        &Options {
            max_completion_tokens: true,
            ..Options::default()
        },
    );
    assert_eq!(v["max_completion_tokens"], 100);
    assert!(v.get("max_tokens").is_none());
}

#[test]
fn metadata_user_id_becomes_user() {
    // Claude Code sends a JSON-encoded object as a string; it goes as it is.
    let user_id = r#"{\"device_id\":\"abc\",\"session_id\":\"s1\"}"#;
    let body = format!(
        r#"{{"model":"claude-x","max_tokens":100,"messages":{HI},"metadata":{{"user_id":"{user_id}"}}}}"#
    );
    assert_eq!(
        encoded(&body)["user"],
        r#"{"device_id":"abc","session_id":"s1"}"#
    );
    let off = Options {
        user: false,
        ..Options::default()
    };
    assert!(encode_with(&body, &off).get("user").is_none());
}

#[test]
fn thinking_budgets_become_reasoning_effort() {
    let body = |thinking: &str| {
        format!(
            r#"{{"model":"claude-x","max_tokens":40000,"messages":{HI},"thinking":{thinking}}}"#
        )
    };
    for (budget, effort) in [(2048, "low"), (10000, "medium"), (32000, "high")] {
        let v = encoded(&body(&format!(
            r#"{{"type":"enabled","budget_tokens":{budget}}}"#
        )));
        assert_eq!(v["reasoning_effort"], effort, "{budget}");
    }
    assert!(encoded(&body(r#"{"type":"disabled"}"#))
        .get("reasoning_effort")
        .is_none());
    let off = Options {
        reasoning_effort: false,
        ..Options::default()
    };
    let v = encode_with(&body(r#"{"type":"enabled","budget_tokens":2048}"#), &off);
    assert!(v.get("reasoning_effort").is_none());
}

#[test]
fn streams_ask_for_the_usage_chunk() {
    let body = format!(r#"{{"model":"claude-x","max_tokens":100,"stream":true,"messages":{HI}}}"#);
    let v = encoded(&body);
    assert_eq!(v["stream"], true);
    assert_eq!(v["stream_options"], json!({"include_usage": true}));
    let off = Options {
        stream_options: false,
        ..Options::default()
    };
    let v = encode_with(&body, &off);
    assert_eq!(v["stream"], true);
    assert!(v.get("stream_options").is_none());
    // Not streamed, no stream options.
    assert!(encoded(&with_messages(HI)).get("stream_options").is_none());
}

#[test]
fn server_tools_are_refused_by_index() {
    let e = refused(&format!(
        r#"{{"model":"claude-x","max_tokens":100,"messages":{HI},"tools":[
            {{"name":"get","input_schema":{{"type":"object"}}}},
            {{"type":"web_search_20250305","name":"web_search","max_uses":5}}
        ]}}"#
    ));
    assert!(e.starts_with("tools[1]: \"web_search_20250305\""), "{e}");
    let e = refused(&format!(
        r#"{{"model":"claude-x","max_tokens":100,"messages":{HI},"tools":[{{"name":"get"}}]}}"#
    ));
    assert!(e.starts_with("tools[0].input_schema"), "{e}");
}

#[test]
fn unknown_blocks_and_roles_are_refused_with_their_place() {
    // A search result's `source` is a string (its URL), not an image's source object: this
    // guards the fix in request.rs (`source_object`) that lets the block be read and refused by
    // its type, where the whole content used to fail as "expected a string or a list of content
    // blocks".
    let e = refused(&with_messages(
        r#"[{"role":"user","content":"x"},{"role":"assistant","content":"y"},{"role":"user","content":[
            {"type":"search_result","source":"https://docs.example.com/a","title":"A","content":[{"type":"text","text":"B"}],"citations":{"enabled":true}}
        ]}]"#,
    ));
    assert!(e.starts_with("messages[2].content:"), "{e}");
    assert!(e.contains("\"search_result\""), "{e}");
    let e = refused(&with_messages(
        r#"[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"server_tool_use","id":"s1","name":"web_search","input":{}}]}]"#,
    ));
    assert!(e.starts_with("messages[1].content:"), "{e}");
    let e = refused(&with_messages(
        r#"[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"document","source":{"type":"text","data":"x"}}]}]}]"#,
    ));
    assert!(e.starts_with("messages[0].content:"), "{e}");
    let e = refused(&with_messages(r#"[{"role":"tool","content":"x"}]"#));
    assert!(e.starts_with("messages[0].role"), "{e}");
}

#[test]
fn an_encoded_tool_id_goes_back_as_the_upstream_wrote_it() {
    // Kimi and others use ids like `functions.get:0`, which Anthropic clients refuse; the client
    // saw an encoded id and the upstream must get its own back, in the call and in the result.
    let shown = client_id("functions.get:0").into_owned();
    assert!(shown.starts_with("toolu_enc_"));
    let v = encoded(&with_messages(&format!(
        r#"[{{"role":"user","content":"x"}},
        {{"role":"assistant","content":[{{"type":"tool_use","id":"{shown}","name":"get","input":{{}}}}]}},
        {{"role":"user","content":[{{"type":"tool_result","tool_use_id":"{shown}","content":"ok"}}]}}]"#
    )));
    assert_eq!(v["messages"][1]["tool_calls"][0]["id"], "functions.get:0");
    assert_eq!(v["messages"][2]["tool_call_id"], "functions.get:0");
}

#[test]
fn thinking_echoed_in_a_user_turn_is_dropped() {
    let v = encoded(&with_messages(
        r#"[{"role":"user","content":[{"type":"thinking","thinking":"x","signature":"s"},{"type":"text","text":"Hi"}]}]"#,
    ));
    assert_eq!(v["messages"], json!([{"role": "user", "content": "Hi"}]));
}

#[test]
fn system_messages_in_the_conversation_stay_in_place() {
    // Newer Claude Code sends instructions between turns as `role: "system"` messages.
    let v = encoded(&with_messages(
        r#"[{"role":"user","content":"x"},{"role":"system","content":[{"type":"text","text":"Be terse."}]},{"role":"user","content":"y"}]"#,
    ));
    assert_eq!(
        v["messages"][1],
        json!({"role": "system", "content": "Be terse."})
    );
    assert_eq!(v["messages"].as_array().unwrap().len(), 3);
}

#[test]
fn an_effort_names_the_reasoning_effort_and_thinking_can_stay_home() {
    let v = encoded(
        r#"{"model":"m","max_tokens":9,"thinking":{"type":"adaptive"},"output_config":{"effort":"xhigh"},"messages":[{"role":"user","content":"x"}]}"#,
    );
    assert_eq!(v["reasoning_effort"], "high");
    let v = encoded(
        r#"{"model":"m","max_tokens":9,"output_config":{"effort":"low"},"messages":[{"role":"user","content":"x"}]}"#,
    );
    assert_eq!(v["reasoning_effort"], "low");
    let body = with_messages(
        r#"[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"thinking","thinking":"hm","signature":"s"},{"type":"text","text":"y"}]}]"#,
    );
    assert_eq!(encoded(&body)["messages"][1]["reasoning_content"], "hm");
    let req = MessagesRequest::parse(body.as_bytes()).unwrap();
    let options = Options {
        reasoning_content: false,
        ..Options::default()
    };
    let out = encode(&req, "m", &options, &mut ToolNames::default()).unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert!(v["messages"][1].get("reasoning_content").is_none());
}
