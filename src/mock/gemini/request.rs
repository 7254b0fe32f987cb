//! A `generateContent` request as the mock reads it: checked the way the Gemini API checks it,
//! then boiled down to an [`Ask`].
//!
//! The checks are the ones a translation can fail: turns that do not alternate user, model,
//! user (starting with the user); a turn answering function calls with a different number of
//! `functionResponse` parts than the model turn before had `functionCall` parts, or with other
//! names; a model turn whose first `functionCall` has no `thoughtSignature` (Gemini 3 refuses
//! those: it signs the first call of each step and leaves the others of a parallel set
//! unsigned, so that is what it checks); parts with no data; function declarations
//! without a schema. Field names are read in either of the spellings the API takes
//! (`functionCall` or `function_call`).

use serde_json::{Map, Value};

use super::super::script::{estimate_tokens, Ask, ToolResult};
use crate::http::ApiError;

/// The most characters of a function name.
const MAX_NAME: usize = 64;

/// The members a part holds its data in: exactly one of them.
const DATA: &[(&str, &str)] = &[
    ("text", "text"),
    ("inlineData", "inline_data"),
    ("fileData", "file_data"),
    ("functionCall", "function_call"),
    ("functionResponse", "function_response"),
    ("executableCode", "executable_code"),
    ("codeExecutionResult", "code_execution_result"),
];

fn invalid(message: String) -> ApiError {
    ApiError::invalid_request(message.into())
}

/// A member under either of its spellings.
fn field<'a>(obj: &'a Map<String, Value>, camel: &str, snake: &str) -> Option<&'a Value> {
    obj.get(camel)
        .or_else(|| obj.get(snake))
        .filter(|v| !v.is_null())
}

fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(invalid("the request body must be a JSON object".into())),
        Err(e) => Err(invalid(format!("Invalid JSON payload received. {e}"))),
    }
}

/// Reads and checks a `generateContent` body for `model`.
pub fn read(body: &[u8], model: &str) -> Result<Ask, ApiError> {
    let obj = object(body)?;
    let turns = contents(&obj)?;
    let system = system_bytes(&obj)?;
    let tools = tools(obj.get("tools"))?;
    let config = match field(&obj, "generationConfig", "generation_config") {
        None => Map::new(),
        Some(Value::Object(c)) => c.clone(),
        Some(_) => return Err(invalid("generationConfig: expected an object".into())),
    };
    let max_tokens = match field(&config, "maxOutputTokens", "max_output_tokens") {
        None => None,
        Some(v) => Some(v.as_u64().filter(|&n| n >= 1).ok_or_else(|| {
            invalid("generationConfig.maxOutputTokens: expected a positive integer".into())
        })?),
    };
    let stop_sequences = match field(&config, "stopSequences", "stop_sequences") {
        None => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                invalid("generationConfig.stopSequences: expected an array of strings".into())
            })?,
        Some(_) => {
            return Err(invalid(
                "generationConfig.stopSequences: expected an array of strings".into(),
            ))
        }
    };
    let reasoning = match field(&config, "thinkingConfig", "thinking_config") {
        None => false,
        Some(Value::Object(t)) => match field(t, "includeThoughts", "include_thoughts") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(invalid(
                    "generationConfig.thinkingConfig.includeThoughts: expected a boolean".into(),
                ))
            }
        },
        Some(_) => {
            return Err(invalid(
                "generationConfig.thinkingConfig: expected an object".into(),
            ))
        }
    };
    Ok(Ask {
        model: model.to_string(),
        last_user_text: turns.last_user_text,
        tool_results: turns.tool_results,
        tools,
        max_tokens,
        stop_sequences,
        reasoning,
        input_tokens: estimate_tokens(turns.text_bytes + system),
    })
}

/// The input tokens of a `countTokens` body: `{"contents": …}` or
/// `{"generateContentRequest": {…}}`.
pub fn count(body: &[u8]) -> Result<u64, ApiError> {
    let mut obj = object(body)?;
    if let Some(inner) = field(&obj, "generateContentRequest", "generate_content_request") {
        obj = match inner {
            Value::Object(o) => o.clone(),
            _ => return Err(invalid("generateContentRequest: expected an object".into())),
        };
    }
    let turns = contents(&obj)?;
    Ok(estimate_tokens(turns.text_bytes + system_bytes(&obj)?))
}

/// What the turns say.
struct Turns {
    text_bytes: usize,
    last_user_text: String,
    /// The function responses of the last turn, if it is a user turn with some.
    tool_results: Vec<ToolResult>,
}

fn contents(obj: &Map<String, Value>) -> Result<Turns, ApiError> {
    let list = match obj.get("contents") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        None | Some(Value::Array(_)) => {
            return Err(invalid(
                "* GenerateContentRequest.contents: contents is not specified".into(),
            ))
        }
        Some(_) => return Err(invalid("contents: expected an array".into())),
    };
    let mut turns = Turns {
        text_bytes: 0,
        last_user_text: String::new(),
        tool_results: Vec::new(),
    };
    // The function names the model turn before called, in order.
    let mut called: Vec<String> = Vec::new();
    let mut last_role = None;
    for (i, content) in list.iter().enumerate() {
        let content = content
            .as_object()
            .ok_or_else(|| invalid(format!("contents[{i}]: expected an object")))?;
        // The API reads a turn without a role as the user's.
        let role = match content.get("role") {
            None | Some(Value::Null) => "user",
            Some(Value::String(r)) if r == "user" || r == "model" => r.as_str(),
            Some(_) => {
                return Err(invalid(format!(
                    "contents[{i}].role: Please use a valid role: user, model."
                )))
            }
        };
        if i == 0 && role != "user" {
            return Err(invalid(
                "contents[0].role: Please ensure that multiturn requests start with a user turn."
                    .into(),
            ));
        }
        if last_role == Some(role) {
            return Err(invalid(format!(
                "contents[{i}]: Please ensure that multiturn requests alternate between user and \
                 model."
            )));
        }
        last_role = Some(role);
        let parts = match content.get("parts") {
            Some(Value::Array(p)) if !p.is_empty() => p,
            _ => {
                return Err(invalid(format!(
                    "* GenerateContentRequest.contents[{i}].parts: contents.parts must not be \
                     empty."
                )))
            }
        };
        let turn = read_turn(parts, i)?;
        turns.text_bytes += turn.text.len()
            + turn
                .responses
                .iter()
                .map(|r| r.content.len())
                .sum::<usize>();
        if role == "model" {
            called = turn.calls;
            continue;
        }
        if !called.is_empty() || !turn.responses.is_empty() {
            if called.len() != turn.responses.len() {
                return Err(invalid(format!(
                    "contents[{i}]: Please ensure that the number of function response parts is \
                     equal to the number of function call parts of the function call turn \
                     ({} functionResponse parts for {} functionCall parts).",
                    turn.responses.len(),
                    called.len()
                )));
            }
            let answered: Vec<&str> = turn.responses.iter().map(|r| r.name.as_str()).collect();
            if answered != called {
                return Err(invalid(format!(
                    "contents[{i}]: the functionResponse names {answered:?} do not match the \
                     functionCall names {called:?} of the turn before, in order"
                )));
            }
        }
        called = Vec::new();
        if !turn.text.is_empty() {
            turns.last_user_text = turn.text;
        }
        turns.tool_results = turn.responses;
    }
    if last_role == Some("model") {
        turns.tool_results.clear();
    }
    Ok(turns)
}

/// What one turn's parts hold.
struct Turn {
    text: String,
    calls: Vec<String>,
    responses: Vec<ToolResult>,
}

fn read_turn(parts: &[Value], i: usize) -> Result<Turn, ApiError> {
    let mut turn = Turn {
        text: String::new(),
        calls: Vec::new(),
        responses: Vec::new(),
    };
    for (j, part) in parts.iter().enumerate() {
        let at = format!("contents[{i}].parts[{j}]");
        let part = part
            .as_object()
            .ok_or_else(|| invalid(format!("{at}: expected an object")))?;
        let held = DATA
            .iter()
            .filter(|(camel, snake)| field(part, camel, snake).is_some())
            .count();
        if held != 1 {
            return Err(invalid(format!(
                "{at}: required oneof field 'data' must have exactly one initialized field \
                 (it has {held})"
            )));
        }
        if let Some(text) = field(part, "text", "text") {
            let text = text
                .as_str()
                .ok_or_else(|| invalid(format!("{at}.text: expected a string")))?;
            // Thoughts sent back are not what the user said.
            if part.get("thought").and_then(Value::as_bool) != Some(true) {
                if !turn.text.is_empty() {
                    turn.text.push(' ');
                }
                turn.text.push_str(text);
            }
        } else if let Some(call) = field(part, "functionCall", "function_call") {
            let name = function_name(call.get("name"), &format!("{at}.functionCall.name"))?;
            if let Some(args) = call.get("args").filter(|a| !a.is_null() && !a.is_object()) {
                return Err(invalid(format!(
                    "{at}.functionCall.args: expected an object, not {args}"
                )));
            }
            let signed = field(part, "thoughtSignature", "thought_signature")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty());
            if !signed && turn.calls.is_empty() {
                return Err(invalid(format!(
                    "Function call is missing a thought_signature in functionCall parts. This is \
                     required for tools to work correctly, and missing thought_signature may \
                     lead to degraded model performance. Additional data, function call \
                     `default_api:{name}`, position {}. Please refer to \
                     https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
                    j + 1
                )));
            }
            turn.calls.push(name);
        } else if let Some(response) = field(part, "functionResponse", "function_response") {
            let name = function_name(response.get("name"), &format!("{at}.functionResponse.name"))?;
            let content = match response.get("response") {
                Some(Value::Object(r)) => result_text(r),
                _ => {
                    return Err(invalid(format!(
                        "{at}.functionResponse.response: expected an object"
                    )))
                }
            };
            turn.responses.push(ToolResult { name, content });
        }
    }
    Ok(turn)
}

/// What a function response says: its `result` (or `error`) text, else the whole object.
fn result_text(response: &Map<String, Value>) -> String {
    match response.get("result").or_else(|| response.get("error")) {
        Some(Value::String(s)) => s.clone(),
        Some(other) if response.len() == 1 => other.to_string(),
        _ => Value::Object(response.clone()).to_string(),
    }
}

fn function_name(v: Option<&Value>, at: &str) -> Result<String, ApiError> {
    let fits = |n: &str| {
        (1..=MAX_NAME).contains(&n.len())
            && n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
    };
    match v {
        Some(Value::String(n)) if fits(n) => Ok(n.clone()),
        Some(Value::String(n)) => Err(invalid(format!(
            "{at}: Invalid function name {n:?}. Must start with a letter or an underscore. Must \
             be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:) or dashes \
             (-), with a maximum length of 64."
        ))),
        _ => Err(invalid(format!("{at}: Field required"))),
    }
}

/// Bytes of text in `systemInstruction`.
fn system_bytes(obj: &Map<String, Value>) -> Result<usize, ApiError> {
    let Some(system) = field(obj, "systemInstruction", "system_instruction") else {
        return Ok(0);
    };
    let parts = system
        .get("parts")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("systemInstruction.parts: expected an array".into()))?;
    Ok(parts
        .iter()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .map(str::len)
        .sum())
}

/// The names of the functions declared, each declaration checked.
fn tools(v: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let list = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(invalid("tools: expected an array".into())),
    };
    let mut names = Vec::new();
    for (i, tool) in list.iter().enumerate() {
        let tool = tool
            .as_object()
            .ok_or_else(|| invalid(format!("tools[{i}]: expected an object")))?;
        // Other tools (googleSearch, codeExecution) declare no functions.
        let Some(declarations) = field(tool, "functionDeclarations", "function_declarations")
        else {
            continue;
        };
        let declarations = declarations.as_array().ok_or_else(|| {
            invalid(format!(
                "tools[{i}].functionDeclarations: expected an array"
            ))
        })?;
        for (j, d) in declarations.iter().enumerate() {
            let at = format!("tools[{i}].functionDeclarations[{j}]");
            let d = d
                .as_object()
                .ok_or_else(|| invalid(format!("{at}: expected an object")))?;
            let name = function_name(d.get("name"), &format!("{at}.name"))?;
            let json_schema = field(d, "parametersJsonSchema", "parameters_json_schema");
            let schema = field(d, "parameters", "parameters");
            match (json_schema, schema) {
                (Some(s), None) | (None, Some(s)) if s.is_object() => {}
                (Some(_), Some(_)) => {
                    return Err(invalid(format!(
                        "{at}: only one of parameters and parametersJsonSchema may be set"
                    )))
                }
                (None, None) => {
                    return Err(invalid(format!(
                        "{at}.parametersJsonSchema: Field required"
                    )))
                }
                _ => {
                    return Err(invalid(format!(
                        "{at}.parametersJsonSchema: expected an object"
                    )))
                }
            }
            names.push(name);
        }
    }
    Ok(names)
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
