//! A Messages request as an OpenAI Chat Completions request.
//!
//! The mapping is in TRANSLATION.md §1. What needs care:
//! - an assistant turn's text and `tool_use` blocks make **one** message with `tool_calls`
//!   (split in two, a server loses the pairing of calls and results);
//! - `tool_result` blocks become `tool` messages placed before the rest of the user turn, and
//!   images in them (a `tool` message takes only text) go first in the user message after;
//! - thinking goes back as `reasoning_content` (DeepSeek refuses a conversation without it);
//! - parameters some servers refuse are each behind a switch of [`Options`].

use std::borrow::Cow;

use serde::Serialize;
use serde_json::value::RawValue;

use super::super::request::{content, unsupported, Block, Invalid, MessagesRequest};
use super::super::tools::{upstream_id, ToolNames};
use crate::json::skim;

/// Switches for parameters that some OpenAI-compatible servers refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// `stream_options: {include_usage: true}` on streams, for the usage chunk at the end.
    pub stream_options: bool,
    /// Send the output limit as `max_completion_tokens` (OpenAI's reasoning models want it)
    /// instead of `max_tokens`.
    pub max_completion_tokens: bool,
    /// Send `top_k` (vLLM and SGLang take it; OpenAI does not know it).
    pub top_k: bool,
    /// Send `metadata.user_id` as `user`.
    pub user: bool,
    /// Send extended thinking as `reasoning_effort`.
    pub reasoning_effort: bool,
    /// Send `parallel_tool_calls: false` when the client disabled parallel tool use.
    pub parallel_tool_calls: bool,
    /// Send an assistant turn's thinking back as `reasoning_content` (DeepSeek requires it;
    /// servers that refuse unknown message fields do not take it).
    pub reasoning_content: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            stream_options: true,
            max_completion_tokens: false,
            top_k: false,
            user: true,
            reasoning_effort: true,
            parallel_tool_calls: true,
            reasoning_content: true,
        }
    }
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<ChatMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop: &'a [Cow<'a, str>],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ChatTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ChatToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'static str>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    /// `null` for an assistant turn that only calls tools.
    content: Option<ChatContent<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ChatToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<Cow<'a, str>>,
}

impl<'a> ChatMessage<'a> {
    fn new(role: &'static str, content: Option<ChatContent<'a>>) -> ChatMessage<'a> {
        ChatMessage {
            role,
            content,
            reasoning_content: None,
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum ChatContent<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<Part<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Part<'a> {
    Text { text: Cow<'a, str> },
    ImageUrl { image_url: Url },
    File { file: File<'a> },
}

#[derive(Serialize)]
struct Url {
    url: String,
}

#[derive(Serialize)]
struct File<'a> {
    filename: Cow<'a, str>,
    file_data: String,
}

#[derive(Serialize)]
struct ChatToolCall<'a> {
    id: Cow<'a, str>,
    #[serde(rename = "type")]
    kind: &'static str,
    function: ChatFunctionCall<'a>,
}

#[derive(Serialize)]
struct ChatFunctionCall<'a> {
    name: Cow<'a, str>,
    /// The input as JSON text.
    arguments: &'a str,
}

#[derive(Serialize)]
struct ChatTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: ChatFunction<'a>,
}

#[derive(Serialize)]
struct ChatFunction<'a> {
    name: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: Cow<'a, RawValue>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ChatToolChoice<'a> {
    Mode(&'static str),
    Function {
        #[serde(rename = "type")]
        kind: &'static str,
        function: Named<'a>,
    },
}

#[derive(Serialize)]
struct Named<'a> {
    name: Cow<'a, str>,
}

/// The OpenAI body for `req`, with `model` the upstream's id. `names` learns the tool names that
/// had to be shortened.
pub fn encode(
    req: &MessagesRequest<'_>,
    model: &str,
    options: &Options,
    names: &mut ToolNames,
) -> Result<Vec<u8>, Invalid> {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    let system = req.system_texts()?;
    if !system.is_empty() {
        let text = join(system, "\n\n");
        messages.push(ChatMessage::new("system", Some(ChatContent::Text(text))));
    }
    for (i, m) in req.messages.iter().enumerate() {
        let what = format!("messages[{i}].content");
        let blocks = content(m.content, &what)?;
        match m.role.as_ref() {
            "user" => user_turn(blocks, &what, &mut messages)?,
            "assistant" => {
                let mut turn = assistant_turn(blocks, &what, names)?;
                if !options.reasoning_content {
                    turn.reasoning_content = None;
                }
                messages.push(turn);
            }
            // Newer clients send instructions in the middle of the conversation.
            "system" => {
                let mut texts = Vec::new();
                for block in blocks {
                    match block.kind.as_ref() {
                        "text" => texts.push(block.text.unwrap_or_default()),
                        other => return Err(unsupported(&what, other, "openai")),
                    }
                }
                let text = ChatContent::Text(join(texts, "\n\n"));
                messages.push(ChatMessage::new("system", Some(text)));
            }
            other => {
                return Err(Invalid::new(format!(
                    "messages[{i}].role: {other:?} (expected \"user\", \"assistant\" or \"system\")"
                )))
            }
        }
    }
    let mut tools = Vec::with_capacity(req.tools.len());
    for (t, schema) in req.custom_tools("openai")? {
        tools.push(ChatTool {
            kind: "function",
            function: ChatFunction {
                name: names.upstream(&t.name),
                description: t.description.as_deref(),
                parameters: with_properties(schema),
            },
        });
    }
    let mut parallel_tool_calls = None;
    let tool_choice = match &req.tool_choice {
        None => None,
        Some(c) => {
            if c.disable_parallel_tool_use && options.parallel_tool_calls && !tools.is_empty() {
                parallel_tool_calls = Some(false);
            }
            Some(match c.kind.as_ref() {
                "auto" => ChatToolChoice::Mode("auto"),
                "any" => ChatToolChoice::Mode("required"),
                "none" => ChatToolChoice::Mode("none"),
                "tool" => {
                    let name = c.name.as_deref().ok_or_else(|| {
                        Invalid::new("tool_choice.name: Field required for type \"tool\"")
                    })?;
                    ChatToolChoice::Function {
                        kind: "function",
                        function: Named {
                            name: Cow::Owned(names.upstream(name).into_owned()),
                        },
                    }
                }
                other => {
                    return Err(Invalid::new(format!(
                        "tool_choice.type: {other:?} (expected auto, any, tool or none)"
                    )))
                }
            })
        }
    };
    let (max_tokens, max_completion_tokens) = match options.max_completion_tokens {
        true => (None, req.max_tokens),
        false => (req.max_tokens, None),
    };
    let body = ChatRequest {
        model,
        messages,
        max_tokens,
        max_completion_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k.filter(|_| options.top_k),
        stop: &req.stop_sequences,
        stream: req.stream,
        stream_options: (req.stream && options.stream_options).then_some(StreamOptions {
            include_usage: true,
        }),
        tool_choice: tool_choice.filter(|_| !tools.is_empty()),
        tools,
        parallel_tool_calls,
        user: (req.metadata.as_ref())
            .and_then(|m| m.user_id.as_deref())
            .filter(|_| options.user),
        reasoning_effort: reasoning_effort(req).filter(|_| options.reasoning_effort),
    };
    serde_json::to_vec(&body).map_err(|e| Invalid::new(format!("cannot encode the request: {e}")))
}

/// The `reasoning_effort` for a request: its `output_config.effort` where OpenAI has the level
/// (above `high` is `high`), else its thinking budget's bucket.
fn reasoning_effort(req: &MessagesRequest<'_>) -> Option<&'static str> {
    let named = req.output_config.as_ref().and_then(|c| c.effort.as_deref());
    match named {
        Some("minimal") => Some("minimal"),
        Some("low") => Some("low"),
        Some("medium") => Some("medium"),
        Some(_) => Some("high"),
        None => req.thinking_budget().map(effort),
    }
}

/// The `reasoning_effort` bucket for a thinking budget.
fn effort(budget: u64) -> &'static str {
    match budget {
        0..=4_096 => "low",
        4_097..=16_384 => "medium",
        _ => "high",
    }
}

/// A user turn: its tool results as `tool` messages first, then the rest as one user message.
fn user_turn<'a>(
    blocks: Vec<Block<'a>>,
    what: &str,
    messages: &mut Vec<ChatMessage<'a>>,
) -> Result<(), Invalid> {
    let mut images = Vec::new();
    let mut parts = Vec::with_capacity(blocks.len());
    for block in blocks {
        match block.kind.as_ref() {
            "tool_result" => {
                let id = block.tool_use_id.unwrap_or_default();
                let mut texts = Vec::new();
                if let Some(raw) = block.content {
                    for inner in content(raw, what)? {
                        match inner.kind.as_ref() {
                            "text" => texts.push(inner.text.unwrap_or_default()),
                            "image" => images.push(part_of(inner, what)?),
                            other => return Err(unsupported(what, other, "openai")),
                        }
                    }
                }
                let mut m = ChatMessage::new("tool", Some(ChatContent::Text(join(texts, "\n"))));
                m.tool_call_id = Some(Cow::Owned(upstream_id(&id).into_owned()));
                messages.push(m);
            }
            // Thinking belongs to the assistant's turns; a client that echoes it here loses
            // nothing by its going.
            "thinking" | "redacted_thinking" => {}
            _ => parts.push(part_of(block, what)?),
        }
    }
    images.extend(parts);
    let parts = images;
    if parts.is_empty() {
        return Ok(());
    }
    let content = match <[Part<'_>; 1]>::try_from(parts) {
        Ok([Part::Text { text }]) => ChatContent::Text(text),
        Ok(one) => ChatContent::Parts(one.into()),
        Err(parts) => ChatContent::Parts(parts),
    };
    messages.push(ChatMessage::new("user", Some(content)));
    Ok(())
}

/// One user content block as a content part.
fn part_of<'a>(block: Block<'a>, what: &str) -> Result<Part<'a>, Invalid> {
    match block.kind.as_ref() {
        "text" => Ok(Part::Text {
            text: block.text.unwrap_or_default(),
        }),
        "image" => {
            let s = block
                .source
                .ok_or_else(|| Invalid::new(format!("{what}: an image needs a source")))?;
            let url = match s.kind.as_ref() {
                "base64" => format!(
                    "data:{};base64,{}",
                    s.media_type.as_deref().unwrap_or("image/png"),
                    s.data.as_deref().unwrap_or("")
                ),
                "url" => s.url.map(Cow::into_owned).unwrap_or_default(),
                other => {
                    return Err(unsupported(
                        what,
                        &format!("image source {other}"),
                        "openai",
                    ))
                }
            };
            Ok(Part::ImageUrl {
                image_url: Url { url },
            })
        }
        "document" => {
            let s = block
                .source
                .ok_or_else(|| Invalid::new(format!("{what}: a document needs a source")))?;
            match s.kind.as_ref() {
                "text" => Ok(Part::Text {
                    text: s.data.unwrap_or_default(),
                }),
                "base64" => Ok(Part::File {
                    file: File {
                        filename: block.title.unwrap_or(Cow::Borrowed("document.pdf")),
                        file_data: format!(
                            "data:{};base64,{}",
                            s.media_type.as_deref().unwrap_or("application/pdf"),
                            s.data.as_deref().unwrap_or("")
                        ),
                    },
                }),
                other => Err(unsupported(
                    what,
                    &format!("document source {other}"),
                    "openai",
                )),
            }
        }
        other => Err(unsupported(what, other, "openai")),
    }
}

/// An assistant turn: its text, its thinking and its tool calls, in one message.
fn assistant_turn<'a>(
    blocks: Vec<Block<'a>>,
    what: &str,
    names: &mut ToolNames,
) -> Result<ChatMessage<'a>, Invalid> {
    let mut texts = Vec::new();
    let mut thoughts = Vec::new();
    let mut calls = Vec::new();
    for block in blocks {
        match block.kind.as_ref() {
            "text" => texts.push(block.text.unwrap_or_default()),
            "thinking" => thoughts.push(block.thinking.unwrap_or_default()),
            "redacted_thinking" => {}
            "tool_use" => {
                let id = block.id.unwrap_or_default();
                let name = block.name.unwrap_or_default();
                calls.push(ChatToolCall {
                    id: Cow::Owned(upstream_id(&id).into_owned()),
                    kind: "function",
                    function: ChatFunctionCall {
                        name: Cow::Owned(names.upstream(&name).into_owned()),
                        arguments: block.input.map_or("{}", RawValue::get),
                    },
                });
            }
            other => return Err(unsupported(what, other, "openai")),
        }
    }
    let text = (!texts.is_empty()).then(|| ChatContent::Text(join(texts, "\n")));
    let mut m = ChatMessage::new("assistant", text);
    m.reasoning_content = (!thoughts.is_empty()).then(|| thoughts.concat());
    m.tool_calls = calls;
    if m.content.is_none() && m.tool_calls.is_empty() {
        m.content = Some(ChatContent::Text(Cow::Borrowed("")));
    }
    Ok(m)
}

fn join<'a>(mut texts: Vec<Cow<'a, str>>, separator: &str) -> Cow<'a, str> {
    if texts.len() == 1 {
        return texts.pop().unwrap_or_default();
    }
    Cow::Owned(texts.join(separator))
}

/// An object schema with a `properties` member (OpenAI refuses one without).
fn with_properties(schema: &RawValue) -> Cow<'_, RawValue> {
    let text = schema.get();
    let mut has = false;
    let object = skim::members(text.as_bytes(), |key, _| has |= key == "properties").is_ok();
    if !object || has {
        return Cow::Borrowed(schema);
    }
    let open = text.find('{').unwrap_or(0);
    let rest = text[open + 1..].trim_start();
    let separator = if rest.starts_with('}') { "" } else { "," };
    let patched = format!("{{\"properties\":{{}}{separator}{rest}");
    RawValue::from_string(patched).map_or(Cow::Borrowed(schema), Cow::Owned)
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
