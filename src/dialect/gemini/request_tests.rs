//! Messages requests as Gemini `generateContent` bodies, case by case of TRANSLATION.md §2
//! "Request": each body is encoded, parsed back, and held to what the Gemini API must receive.

use serde_json::{json, Value};

use super::*;

/// The path, the body's text and the names the encoder learned.
fn encode_text(body: &str, model: &str, count_tokens: bool) -> (String, String, ToolNames) {
    let req = MessagesRequest::parse(body.as_bytes()).unwrap();
    let mut names = ToolNames::default();
    let (path, out) =
        encode(&req, model, count_tokens, &mut names).unwrap_or_else(|e| panic!("{}: {body}", e.0));
    (path, String::from_utf8(out).unwrap(), names)
}

fn encoded(body: &str) -> Value {
    serde_json::from_str(&encode_text(body, "gemini-2.5-flash", false).1).unwrap()
}

fn refused(body: &str) -> String {
    let req = MessagesRequest::parse(body.as_bytes()).unwrap();
    encode(&req, "gemini-2.5-flash", false, &mut ToolNames::default())
        .unwrap_err()
        .0
}

/// A request with these messages (a JSON array's text) and nothing else of note.
fn with_messages(messages: &str) -> String {
    format!(r#"{{"model":"claude-x","max_tokens":100,"messages":{messages}}}"#)
}

const HI: &str = r#"[{"role":"user","content":"Hi"}]"#;

#[test]
fn paths_for_each_call_and_the_models_prefix() {
    let plain = with_messages(HI);
    let stream = format!(r#"{{"model":"claude-x","stream":true,"messages":{HI}}}"#);
    for (body, model, count, expected) in [
        (
            &stream,
            "gemini-2.5-pro",
            false,
            "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
        ),
        (
            &plain,
            "gemini-2.5-pro",
            false,
            "/v1beta/models/gemini-2.5-pro:generateContent",
        ),
        (
            &plain,
            "models/gemini-2.5-pro",
            false,
            "/v1beta/models/gemini-2.5-pro:generateContent",
        ),
        // A count is never streamed.
        (
            &stream,
            "models/gemini-2.5-pro",
            true,
            "/v1beta/models/gemini-2.5-pro:countTokens",
        ),
        // A model id is one path segment, whatever it holds.
        (
            &plain,
            "tuned/x y",
            false,
            "/v1beta/models/tuned%2Fx%20y:generateContent",
        ),
    ] {
        assert_eq!(encode_text(body, model, count).0, expected, "{model}");
    }
}

#[test]
fn count_tokens_wraps_the_request_with_its_model() {
    let body = format!(
        r#"{{"model":"claude-x","max_tokens":100,"system":"Be brief.","temperature":0.5,"messages":{HI},
        "tools":[{{"name":"get","input_schema":{{"type":"object"}}}}],"tool_choice":{{"type":"any"}}}}"#
    );
    let (_, text, _) = encode_text(&body, "models/gemini-2.5-flash", true);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v,
        json!({"generateContentRequest": {
            "model": "models/gemini-2.5-flash",
            "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "tools": [{"functionDeclarations": [{"name": "get", "parametersJsonSchema": {"type": "object"}}]}]
        }})
    );
}

#[test]
fn system_roles_and_merged_turns() {
    let v = encoded(
        r#"{"model":"claude-x","max_tokens":100,
        "system":[{"type":"text","text":"You are terse."},{"type":"text","text":"Answer in French.","cache_control":{"type":"ephemeral"}}],
        "messages":[
            {"role":"user","content":"Hello"},
            {"role":"user","content":[{"type":"text","text":"Are you there?"}]},
            {"role":"assistant","content":"Oui."},
            {"role":"assistant","content":[{"type":"text","text":"Bonjour."}]},
            {"role":"user","content":"Merci"}
        ]}"#,
    );
    assert_eq!(
        v["systemInstruction"],
        json!({"parts": [{"text": "You are terse."}, {"text": "Answer in French."}]})
    );
    // Gemini wants the roles to alternate: same-role neighbours become one turn.
    assert_eq!(
        v["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Hello"}, {"text": "Are you there?"}]},
            {"role": "model", "parts": [{"text": "Oui."}, {"text": "Bonjour."}]},
            {"role": "user", "parts": [{"text": "Merci"}]}
        ])
    );
    assert!(encoded(&with_messages(HI))
        .get("systemInstruction")
        .is_none());
}

#[test]
fn images_and_documents_become_inline_or_file_data() {
    let v = encoded(&with_messages(
        r#"[{"role":"user","content":[
            {"type":"image","source":{"type":"base64","media_type":"image/webp","data":"UklGRhIAAABXRUJQ"}},
            {"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0xLjQK"}},
            {"type":"image","source":{"type":"url","url":"https://example.com/cat.png"}},
            {"type":"text","text":"Describe."}
        ]}]"#,
    ));
    assert_eq!(
        v["contents"][0]["parts"],
        json!([
            {"inlineData": {"mimeType": "image/webp", "data": "UklGRhIAAABXRUJQ"}},
            {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0xLjQK"}},
            {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat.png"}},
            {"text": "Describe."}
        ])
    );
}

/// A conversation with a tool call and its answer, with `assistant` the assistant turn's
/// blocks and `result` the tool_result block (JSON texts).
fn with_call(assistant: &str, result: &str) -> String {
    with_messages(&format!(
        r#"[{{"role":"user","content":"Weather in Paris?"}},
        {{"role":"assistant","content":{assistant}}},
        {{"role":"user","content":[{result}]}}]"#
    ))
}

const CALL: &str =
    r#"{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"city": "Paris"}}"#;

#[test]
fn a_call_carries_the_signature_of_the_thinking_before_it() {
    let v = encoded(&with_call(
        &format!(
            r#"[{{"type":"thinking","thinking":"Use the tool.","signature":"EpsCCpgCAdHtim9+ZXo="}},{CALL}]"#
        ),
        r#"{"type":"tool_result","tool_use_id":"toolu_01A","content":"Sunny"}"#,
    ));
    // The thinking text itself does not go back: Gemini keeps its thoughts behind the signature.
    assert_eq!(
        v["contents"][1],
        json!({"role": "model", "parts": [{
            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
            "thoughtSignature": "EpsCCpgCAdHtim9+ZXo="
        }]})
    );
}

#[test]
fn a_call_without_a_signature_gets_the_bypass_value() {
    // History Gemini did not write (another model's, or thinking left out) has no signature;
    // Gemini 3 refuses such a call unless it carries the documented bypass value.
    let v = encoded(&with_call(
        &format!(r#"[{{"type":"text","text":"Checking."}},{CALL}]"#),
        r#"{"type":"tool_result","tool_use_id":"toolu_01A","content":"Sunny"}"#,
    ));
    assert_eq!(
        v["contents"][1]["parts"],
        json!([
            {"text": "Checking."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "skip_thought_signature_validator"}
        ])
    );
    // A signature after the last part still goes back, on that part.
    let v = encoded(&with_messages(
        r#"[{"role":"user","content":"Hi"},{"role":"assistant","content":[{"type":"text","text":"Hello"},{"type":"thinking","thinking":"","signature":"late"}]},{"role":"user","content":"Bye"}]"#,
    ));
    assert_eq!(
        v["contents"][1]["parts"],
        json!([{"text": "Hello", "thoughtSignature": "late"}])
    );
}

#[test]
fn results_are_named_after_their_function() {
    // The name is the function's, not the call's id: Gemini answers 400 otherwise.
    let v = encoded(&with_call(
        &format!("[{CALL}]"),
        r#"{"type":"tool_result","tool_use_id":"toolu_01A","content":[{"type":"text","text":"Sunny"},{"type":"text","text":"21°C"}]}"#,
    ));
    assert_eq!(
        v["contents"][2],
        json!({"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"result": "Sunny\n21°C"}}}
        ]})
    );
    let v = encoded(&with_call(
        &format!("[{CALL}]"),
        r#"{"type":"tool_result","tool_use_id":"toolu_01A","content":"city not found","is_error":true}"#,
    ));
    assert_eq!(
        v["contents"][2]["parts"][0]["functionResponse"],
        json!({"name": "get_weather", "response": {"error": "city not found"}})
    );
}

#[test]
fn a_result_that_answers_no_call_is_refused() {
    let e = refused(&with_call(
        &format!("[{CALL}]"),
        r#"{"type":"tool_result","tool_use_id":"toolu_other","content":"x"}"#,
    ));
    assert!(e.starts_with("messages[2].content:"), "{e}");
    assert!(e.contains("\"toolu_other\""), "{e}");
}

#[test]
fn images_in_a_result_follow_the_function_responses() {
    let v = encoded(&with_messages(
        r#"[{"role":"user","content":"Two screenshots?"},
        {"role":"assistant","content":[
            {"type":"tool_use","id":"t1","name":"screenshot","input":{"screen":1}},
            {"type":"tool_use","id":"t2","name":"screenshot","input":{"screen":2}}
        ]},
        {"role":"user","content":[
            {"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"one"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]},
            {"type":"tool_result","tool_use_id":"t2","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"BBBB"}}]},
            {"type":"text","text":"Compare them."}
        ]}]"#,
    ));
    // One functionResponse per call of the turn before, first, as Gemini counts them.
    assert_eq!(
        v["contents"][2]["parts"],
        json!([
            {"functionResponse": {"name": "screenshot", "response": {"result": "one"}}},
            {"functionResponse": {"name": "screenshot", "response": {"result": ""}}},
            {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
            {"inlineData": {"mimeType": "image/png", "data": "BBBB"}},
            {"text": "Compare them."}
        ])
    );
}

#[test]
fn a_last_model_turn_of_unanswered_calls_is_dropped() {
    let v = encoded(&with_messages(&format!(
        r#"[{{"role":"user","content":"Weather?"}},{{"role":"assistant","content":[{{"type":"thinking","thinking":"t","signature":"s"}},{CALL}]}}]"#
    )));
    assert_eq!(
        v["contents"],
        json!([{"role": "user", "parts": [{"text": "Weather?"}]}])
    );
    // Its text stays (a prefill); only the calls go.
    let v = encoded(&with_messages(&format!(
        r#"[{{"role":"user","content":"Weather?"}},{{"role":"assistant","content":[{{"type":"text","text":"Let me"}},{CALL}]}}]"#
    )));
    assert_eq!(
        v["contents"][1],
        json!({"role": "model", "parts": [{"text": "Let me"}]})
    );
}

#[test]
fn tools_become_function_declarations_without_schema_key() {
    let schema = r#"{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"city":{"type":"string","description":"A \"city\"","enum":["Paris","Oslo"]},"days":{"type":["integer","null"],"minimum":1}},"required":["city"],"additionalProperties":false}"#;
    let body = format!(
        r#"{{"model":"claude-x","max_tokens":100,"messages":{HI},"tools":[
            {{"name":"get_weather","description":"Weather of a city","input_schema":{schema}}},
            {{"name":"now","input_schema":{{"type":"object"}}}},
            {{"name":"only_schema","input_schema":{{"$schema":"x"}}}}
        ]}}"#
    );
    let v = encoded(&body);
    let mut expected: Value = serde_json::from_str(schema).unwrap();
    expected.as_object_mut().unwrap().remove("$schema");
    assert_eq!(
        v["tools"],
        json!([{"functionDeclarations": [
            {"name": "get_weather", "description": "Weather of a city", "parametersJsonSchema": expected},
            {"name": "now", "parametersJsonSchema": {"type": "object"}},
            {"name": "only_schema", "parametersJsonSchema": {}}
        ]}])
    );
    // A nested `$schema` is a property's business, not the top level's: it stays.
    let nested = r#"{"type":"object","properties":{"$schema":{"type":"string"}}}"#;
    let v = encoded(&format!(
        r#"{{"model":"claude-x","messages":{HI},"tools":[{{"name":"f","input_schema":{nested}}}]}}"#
    ));
    assert_eq!(
        v["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"],
        serde_json::from_str::<Value>(nested).unwrap()
    );
    let e = refused(&format!(
        r#"{{"model":"claude-x","messages":{HI},"tools":[{{"type":"web_search_20250305","name":"web_search"}}]}}"#
    ));
    assert!(e.starts_with("tools[0]:"), "{e}");
}

/// A request with one tool and this `tool_choice` (a JSON object's text).
fn with_choice(choice: &str) -> String {
    format!(
        r#"{{"model":"claude-x","max_tokens":100,"messages":{HI},"tools":[{{"name":"get","input_schema":{{"type":"object"}}}}],"tool_choice":{choice}}}"#
    )
}

#[test]
fn tool_choice_becomes_function_calling_config() {
    for (choice, expected) in [
        (r#"{"type":"auto"}"#, json!({"mode": "AUTO"})),
        (r#"{"type":"any"}"#, json!({"mode": "ANY"})),
        (r#"{"type":"none"}"#, json!({"mode": "NONE"})),
        (
            r#"{"type":"tool","name":"get"}"#,
            json!({"mode": "ANY", "allowedFunctionNames": ["get"]}),
        ),
    ] {
        assert_eq!(
            encoded(&with_choice(choice))["toolConfig"],
            json!({ "functionCallingConfig": expected }),
            "{choice}"
        );
    }
    assert!(refused(&with_choice(r#"{"type":"sometimes"}"#)).starts_with("tool_choice.type"));
    // Without tools there is nothing to configure.
    let v = encoded(&format!(
        r#"{{"model":"claude-x","messages":{HI},"tool_choice":{{"type":"any"}}}}"#
    ));
    assert!(v.get("toolConfig").is_none());
}

#[test]
fn long_names_are_shortened_in_declarations_calls_and_results() {
    let long = "mcp__a_server_with_a_long_name__a_tool_with_an_even_longer_name_x";
    let body = format!(
        r#"{{"model":"claude-x","max_tokens":100,"messages":[
            {{"role":"user","content":"go"}},
            {{"role":"assistant","content":[{{"type":"tool_use","id":"t1","name":"{long}","input":{{}}}}]}},
            {{"role":"user","content":[{{"type":"tool_result","tool_use_id":"t1","content":"done"}}]}}
        ],"tools":[{{"name":"{long}","input_schema":{{"type":"object"}}}}],"tool_choice":{{"type":"tool","name":"{long}"}}}}"#
    );
    let (_, text, names) = encode_text(&body, "gemini-2.5-flash", false);
    let v: Value = serde_json::from_str(&text).unwrap();
    let short = v["tools"][0]["functionDeclarations"][0]["name"]
        .as_str()
        .unwrap();
    assert!(short.len() <= crate::dialect::tools::MAX_NAME);
    assert_eq!(v["contents"][1]["parts"][0]["functionCall"]["name"], short);
    assert_eq!(
        v["contents"][2]["parts"][0]["functionResponse"]["name"],
        short
    );
    assert_eq!(
        v["toolConfig"]["functionCallingConfig"]["allowedFunctionNames"][0],
        short
    );
    assert_eq!(names.client(short), long);
    assert!(!text.contains(long));
}

#[test]
fn generation_config() {
    let body = format!(
        r#"{{"model":"claude-x","max_tokens":8192,"messages":{HI},"temperature":0.70,"top_p":0.95,"top_k":40,
        "stop_sequences":["END"],"thinking":{{"type":"enabled","budget_tokens":4096}}}}"#
    );
    let (_, text, _) = encode_text(&body, "gemini-2.5-flash", false);
    // The numbers are copied as the client wrote them.
    assert!(text.contains("\"temperature\":0.70,"), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["generationConfig"],
        json!({
            "temperature": 0.70, "topP": 0.95, "topK": 40, "maxOutputTokens": 8192,
            "stopSequences": ["END"],
            "thinkingConfig": {"thinkingBudget": 4096, "includeThoughts": true}
        })
    );
    let v = encoded(&format!(r#"{{"model":"claude-x","messages":{HI}}}"#));
    assert_eq!(v["generationConfig"], json!({}));
    let v = encoded(&format!(
        r#"{{"model":"claude-x","messages":{HI},"thinking":{{"type":"disabled"}}}}"#
    ));
    assert!(v["generationConfig"].get("thinkingConfig").is_none());
}

#[test]
fn unknown_blocks_and_roles_are_refused_with_their_place() {
    let e = refused(&with_messages(
        r#"[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"server_tool_use","id":"s","name":"web_search","input":{}}]}]"#,
    ));
    assert!(e.starts_with("messages[1].content:"), "{e}");
    assert!(e.contains("\"server_tool_use\""), "{e}");
    let e = refused(&with_messages(r#"[{"role":"tool","content":"x"}]"#));
    assert!(e.starts_with("messages[0].role"), "{e}");
}

#[test]
fn only_the_first_call_of_a_turn_needs_a_signature() {
    // Gemini signs the first call of a parallel set and leaves the others unsigned: the
    // bypass goes where Gemini would have put its signature, and nowhere else.
    let second = r#"{"type":"tool_use","id":"toolu_02B","name":"get_time","input":{}}"#;
    let v = encoded(&with_messages(&format!(
        r#"[{{"role":"user","content":"Hi"}},{{"role":"assistant","content":[{CALL},{second}]}},
        {{"role":"user","content":[{{"type":"tool_result","tool_use_id":"toolu_01A","content":"Sunny"}},{{"type":"tool_result","tool_use_id":"toolu_02B","content":"Noon"}}]}}]"#
    )));
    let parts = v["contents"][1]["parts"].as_array().unwrap();
    assert_eq!(
        parts[0]["thoughtSignature"],
        "skip_thought_signature_validator"
    );
    assert!(parts[1].get("thoughtSignature").is_none(), "{parts:?}");
}

#[test]
fn system_messages_in_the_conversation_join_the_system_instruction() {
    let v = encoded(
        r#"{"model":"claude-x","system":"Be brief.","messages":[{"role":"user","content":"Hi"},{"role":"system","content":"Be terse."},{"role":"user","content":"Again"}]}"#,
    );
    assert_eq!(
        v["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}, {"text": "Be terse."}]})
    );
    assert_eq!(
        v["contents"],
        json!([{"role": "user", "parts": [{"text": "Hi"}, {"text": "Again"}]}])
    );
}

#[test]
fn a_budget_past_what_every_model_takes_asks_for_dynamic_thinking() {
    let v = encoded(&format!(
        r#"{{"model":"claude-x","messages":{HI},"thinking":{{"type":"enabled","budget_tokens":31999}}}}"#
    ));
    assert_eq!(
        v["generationConfig"]["thinkingConfig"]["thinkingBudget"],
        -1
    );
}
