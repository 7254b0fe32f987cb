//! A Chat Completions request as the mock reads it: checked the way real servers check it, then
//! boiled down to an [`Ask`].
//!
//! The mock is the gateway's counterpart, so it refuses what OpenAI refuses and a translation
//! could get wrong: `tool` messages that answer no call of the assistant message right before
//! them, calls left unanswered, roles OpenAI does not know, a null `content` where only an
//! assistant's tool calls allow one, arguments that are not JSON text, tool names OpenAI would
//! refuse (more than 64 characters, say), and parameter schemas that are not objects with
//! `properties`. Each refusal names the problem, in the words of the real server where they are
//! known.

use serde_json::{Map, Value};

use super::super::script::{estimate_tokens, Ask, ToolResult};
use crate::http::ApiError;

/// What the mock needs of a Chat Completions request.
#[derive(Debug)]
pub struct Chat {
    pub ask: Ask,
    pub stream: bool,
    /// `stream_options.include_usage`: a usage chunk at the end of the stream.
    pub include_usage: bool,
}

const ROLES: &[&str] = &["system", "developer", "user", "assistant", "tool"];

/// The most characters of a function name (OpenAI: `^[a-zA-Z0-9_-]{1,64}$`).
const MAX_NAME: usize = 64;

/// Reads and checks a request body.
pub fn read(body: &[u8]) -> Result<Chat, ApiError> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| {
        invalid(format!(
            "We could not parse the JSON body of your request. ({e})"
        ))
    })?;
    let obj = doc
        .as_object()
        .ok_or_else(|| invalid("the request body must be a JSON object".into()))?;
    let model = match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(Value::String(_)) | None => {
            return Err(invalid("you must provide a model parameter".into()))
        }
        Some(_) => return Err(invalid("model: expected a string".into())),
    };
    let messages = match obj.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        Some(Value::Array(_)) => return Err(invalid("[] is too short - 'messages'".into())),
        None => return Err(invalid("Missing required parameter: 'messages'.".into())),
        Some(_) => return Err(invalid("messages: expected an array".into())),
    };
    let tools = tools(obj.get("tools"))?;
    let turns = conversation(messages)?;
    let limits = [
        positive(obj, "max_tokens")?,
        positive(obj, "max_completion_tokens")?,
    ];
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("stream: expected a boolean".into())),
    };
    let include_usage = match obj.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(_) if !stream => {
            return Err(invalid(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.".into(),
            ))
        }
        Some(Value::Object(o)) => match o.get("include_usage") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(invalid(
                    "stream_options.include_usage: expected a boolean".into(),
                ))
            }
        },
        Some(_) => return Err(invalid("stream_options: expected an object".into())),
    };
    Ok(Chat {
        ask: Ask {
            model,
            last_user_text: turns.last_user_text,
            tool_results: turns.tool_results,
            tools,
            max_tokens: limits.into_iter().flatten().min(),
            stop_sequences: stop(obj.get("stop"))?,
            reasoning: obj.get("reasoning_effort").is_some_and(|v| !v.is_null()),
            input_tokens: estimate_tokens(turns.text_bytes),
        },
        stream,
        include_usage,
    })
}

fn invalid(message: String) -> ApiError {
    ApiError::invalid_request(message.into())
}

/// What the messages say.
struct Turns {
    text_bytes: usize,
    last_user_text: String,
    tool_results: Vec<ToolResult>,
}

/// A call of an assistant message: its id and function name.
struct Called {
    id: String,
    name: String,
}

fn conversation(messages: &[Value]) -> Result<Turns, ApiError> {
    let mut turns = Turns {
        text_bytes: 0,
        last_user_text: String::new(),
        tool_results: Vec::new(),
    };
    // The calls of the latest assistant message with tool calls, and those not answered yet.
    let mut called: Vec<Called> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    // Whether a `tool` message may come next: right after an assistant message with tool calls,
    // or after another `tool` message answering it.
    let mut answering = false;
    for (i, m) in messages.iter().enumerate() {
        let m = m
            .as_object()
            .ok_or_else(|| invalid(format!("messages[{i}]: expected an object")))?;
        let role = match m.get("role") {
            Some(Value::String(r)) if ROLES.contains(&r.as_str()) => r.as_str(),
            Some(Value::String(r)) => {
                return Err(invalid(format!(
                    "messages[{i}].role: Invalid value: '{r}'. Supported values are: 'system', \
                     'assistant', 'user', 'tool', and 'developer'."
                )))
            }
            _ => return Err(invalid(format!("messages[{i}].role: Field required"))),
        };
        let calls = match role {
            "assistant" => tool_calls(m, i)?,
            _ => Vec::new(),
        };
        let text = match m.get("content").filter(|c| !c.is_null()) {
            None if !calls.is_empty() => String::new(),
            None => {
                return Err(invalid(format!(
                    "messages[{i}].content: null is allowed only for an assistant message with \
                     tool_calls"
                )))
            }
            Some(c) => content_text(c, role, i)?,
        };
        turns.text_bytes += text.len();
        if role == "tool" {
            if !answering {
                return Err(invalid(format!(
                    "messages[{i}]: Invalid parameter: messages with role 'tool' must be a \
                     response to a preceeding message with 'tool_calls'."
                )));
            }
            let id = match m.get("tool_call_id") {
                Some(Value::String(id)) => id,
                _ => {
                    return Err(invalid(format!(
                        "messages[{i}].tool_call_id: Field required"
                    )))
                }
            };
            let call = called.iter().find(|c| c.id == *id).ok_or_else(|| {
                invalid(format!(
                    "messages[{i}].tool_call_id: {id:?} answers no tool_calls[].id of the \
                     assistant message before it"
                ))
            })?;
            pending.retain(|p| p != id);
            turns.tool_results.push(ToolResult {
                name: call.name.clone(),
                content: text,
            });
            continue;
        }
        if !pending.is_empty() {
            return Err(unanswered(&pending));
        }
        turns.tool_results.clear();
        answering = !calls.is_empty();
        if answering {
            pending = calls.iter().map(|c| c.id.clone()).collect();
            called = calls;
        }
        if role == "user" {
            turns.last_user_text = text;
        }
    }
    if !pending.is_empty() {
        return Err(unanswered(&pending));
    }
    Ok(turns)
}

fn unanswered(pending: &[String]) -> ApiError {
    invalid(format!(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to \
         each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
        pending.join(", ")
    ))
}

/// The calls of assistant message `i`, checked.
fn tool_calls(m: &Map<String, Value>, i: usize) -> Result<Vec<Called>, ApiError> {
    let list = match m.get("tool_calls") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(invalid(format!(
                "messages[{i}].tool_calls: expected an array"
            )))
        }
    };
    let mut calls = Vec::with_capacity(list.len());
    for (j, call) in list.iter().enumerate() {
        let at = format!("messages[{i}].tool_calls[{j}]");
        let id = match call.get("id") {
            Some(Value::String(id)) if !id.is_empty() => id,
            _ => return Err(invalid(format!("{at}.id: Field required"))),
        };
        if call.get("type").and_then(Value::as_str) != Some("function") {
            return Err(invalid(format!("{at}.type: expected \"function\"")));
        }
        let function = call
            .get("function")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid(format!("{at}.function: Field required")))?;
        let name = function_name(function.get("name"), &format!("{at}.function.name"))?;
        match function.get("arguments") {
            Some(Value::String(args)) if serde_json::from_str::<Value>(args).is_ok() => {}
            Some(Value::String(_)) => {
                return Err(invalid(format!(
                    "{at}.function.arguments: not valid JSON text"
                )))
            }
            _ => {
                return Err(invalid(format!(
                    "{at}.function.arguments: expected a string (the arguments as JSON text)"
                )))
            }
        }
        calls.push(Called {
            id: id.clone(),
            name,
        });
    }
    Ok(calls)
}

fn function_name(v: Option<&Value>, at: &str) -> Result<String, ApiError> {
    match v {
        Some(Value::String(n))
            if (1..=MAX_NAME).contains(&n.len())
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            Ok(n.clone())
        }
        Some(Value::String(n)) => Err(invalid(format!(
            "{at}: Invalid {n:?}: string does not match pattern. Expected a string that matches \
             the pattern '^[a-zA-Z0-9_-]{{1,64}}$'."
        ))),
        _ => Err(invalid(format!("{at}: Field required"))),
    }
}

/// The text of a message's `content`: a string, or the text of its parts (parts other than
/// text only in a user message).
fn content_text(content: &Value, role: &str, i: usize) -> Result<String, ApiError> {
    let parts = match content {
        Value::String(s) => return Ok(s.clone()),
        Value::Array(parts) => parts,
        _ => {
            return Err(invalid(format!(
                "messages[{i}].content: expected a string or an array of content parts"
            )))
        }
    };
    let mut texts = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let at = format!("messages[{i}].content[{j}]");
        match part.get("type").and_then(Value::as_str) {
            Some("text") => match part.get("text") {
                Some(Value::String(t)) => texts.push(t.as_str()),
                _ => return Err(invalid(format!("{at}.text: Field required"))),
            },
            Some(kind @ ("image_url" | "input_audio" | "file")) if role != "user" => {
                return Err(invalid(format!(
                    "{at}: a {role} message takes only text parts, not {kind:?}"
                )))
            }
            Some("image_url" | "input_audio" | "file") => {}
            Some("refusal") if role == "assistant" => {}
            Some(other) => return Err(invalid(format!("{at}.type: unknown part type {other:?}"))),
            None => return Err(invalid(format!("{at}.type: Field required"))),
        }
    }
    Ok(texts.join(" "))
}

/// The names of the tools offered, each checked.
fn tools(v: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let list = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(invalid("tools: expected an array".into())),
    };
    let mut names = Vec::with_capacity(list.len());
    for (i, tool) in list.iter().enumerate() {
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            return Err(invalid(format!("tools[{i}].type: expected \"function\"")));
        }
        let function = tool
            .get("function")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid(format!("tools[{i}].function: Field required")))?;
        let name = function_name(function.get("name"), &format!("tools[{i}].function.name"))?;
        // Absent parameters are an empty parameter list; present ones must be an object schema.
        if let Some(schema) = function.get("parameters") {
            let kind = schema.get("type").and_then(Value::as_str);
            if !schema.is_object() || kind != Some("object") {
                return Err(invalid(format!(
                    "Invalid schema for function '{name}': schema must be a JSON Schema of \
                     'type: \"object\"', got 'type: \"{}\"'.",
                    kind.unwrap_or("None")
                )));
            }
            if !schema.get("properties").is_some_and(Value::is_object) {
                return Err(invalid(format!(
                    "Invalid schema for function '{name}': object schema missing properties."
                )));
            }
        }
        names.push(name);
    }
    Ok(names)
}

/// `stop`: a string or a list of them.
fn stop(v: Option<&Value>) -> Result<Vec<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(list)) => list
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid("stop: expected a string or an array of strings".into())),
        Some(_) => Err(invalid(
            "stop: expected a string or an array of strings".into(),
        )),
    }
}

/// A positive integer parameter, if given.
fn positive(obj: &Map<String, Value>, name: &str) -> Result<Option<u64>, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|&n| n >= 1)
            .map(Some)
            .ok_or_else(|| invalid(format!("{name}: expected a positive integer"))),
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
