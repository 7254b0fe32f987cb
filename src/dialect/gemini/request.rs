//! A Messages request as a Gemini `generateContent` request (TRANSLATION.md §2, "Request").
//!
//! What needs care:
//! - a `tool_result` becomes a `functionResponse` named after the **function** (found from the
//!   `tool_use` with its id), one per call of the turn before, as Gemini counts them;
//! - a thinking block's signature goes back on the part that followed it (or, with none after
//!   it, on the turn's last part), and a function call in the history with no signature gets
//!   the bypass value Gemini documents, since Gemini 3 refuses a call without one;
//! - turns of the same role are merged (Gemini wants them to alternate), and a last model turn's
//!   unanswered function calls are dropped;
//! - tool schemas go as `parametersJsonSchema`, which takes JSON Schema as clients write it,
//!   less its `$schema` member.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::value::RawValue;

use super::super::request::{content, unsupported, Block, Invalid, MessagesRequest};
use super::super::tools::ToolNames;
use super::super::SEGMENT;
use crate::json::skim;
use crate::json::write::push_str;

/// The signature Gemini accepts on a function call it did not produce (its documented bypass).
pub const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateRequest<'a> {
    contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<Content<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Tools<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
    generation_config: GenerationConfig<'a>,
}

#[derive(Serialize)]
struct CountRequest<'a> {
    #[serde(rename = "generateContentRequest")]
    request: CountedRequest<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CountedRequest<'a> {
    model: String,
    contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<Content<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Tools<'a>>,
}

#[derive(Serialize)]
struct Content<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    parts: Vec<Part<'a>>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Part<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inline_data: Option<Blob<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_data: Option<FileData<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_call: Option<FunctionCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_response: Option<FunctionResponse<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thought_signature: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Blob<'a> {
    mime_type: Cow<'a, str>,
    data: Cow<'a, str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileData<'a> {
    mime_type: Cow<'a, str>,
    file_uri: Cow<'a, str>,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: String,
    args: &'a RawValue,
}

#[derive(Serialize)]
struct FunctionResponse<'a> {
    name: String,
    response: ResponseValue<'a>,
}

#[derive(Serialize)]
enum ResponseValue<'a> {
    #[serde(rename = "result")]
    Result(Cow<'a, str>),
    #[serde(rename = "error")]
    Error(Cow<'a, str>),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Tools<'a> {
    function_declarations: Vec<FunctionDeclaration<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionDeclaration<'a> {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters_json_schema: Box<RawValue>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    function_calling_config: FunctionCallingConfig<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCallingConfig<'a> {
    mode: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allowed_function_names: Vec<Cow<'a, str>>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop_sequences: &'a [Cow<'a, str>],
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_config: Option<ThinkingConfig>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThinkingConfig {
    /// Tokens, or -1: as many as the model sees fit.
    thinking_budget: i64,
    include_thoughts: bool,
}

/// The largest thinking budget every Gemini 2.5 model takes (Flash's; Pro's is 32,768). A larger
/// one asks for as much as the model sees fit instead, which no model refuses.
const MAX_THINKING_BUDGET: u64 = 24_576;

/// The path and body for `req` (`count_tokens`: for `:countTokens`), with `model` the upstream's
/// id. `names` learns the tool names that had to be shortened.
pub fn encode(
    req: &MessagesRequest<'_>,
    model: &str,
    count_tokens: bool,
    names: &mut ToolNames,
) -> Result<(String, Vec<u8>), Invalid> {
    let model = model.strip_prefix("models/").unwrap_or(model);
    let mut system: Vec<Part<'_>> = (req.system_texts()?.into_iter())
        .map(|text| Part {
            text: Some(text),
            ..Part::default()
        })
        .collect();
    let contents = contents(req, names, &mut system)?;
    let system_instruction = (!system.is_empty()).then_some(Content {
        role: None,
        parts: system,
    });
    let tools = tools(req, names)?;
    let encoded = |e: serde_json::Error| Invalid::new(format!("cannot encode the request: {e}"));
    let segment = percent_encoding::utf8_percent_encode(model, SEGMENT).to_string();
    if count_tokens {
        let body = CountRequest {
            request: CountedRequest {
                model: format!("models/{model}"),
                contents,
                system_instruction,
                tools,
            },
        };
        let path = format!("/v1beta/models/{segment}:countTokens");
        return Ok((path, serde_json::to_vec(&body).map_err(encoded)?));
    }
    let tool_config = match &req.tool_choice {
        Some(c) if !tools.is_empty() => Some(ToolConfig {
            function_calling_config: match c.kind.as_ref() {
                "auto" => FunctionCallingConfig {
                    mode: "AUTO",
                    allowed_function_names: Vec::new(),
                },
                "any" => FunctionCallingConfig {
                    mode: "ANY",
                    allowed_function_names: Vec::new(),
                },
                "none" => FunctionCallingConfig {
                    mode: "NONE",
                    allowed_function_names: Vec::new(),
                },
                "tool" => FunctionCallingConfig {
                    mode: "ANY",
                    allowed_function_names: vec![Cow::Owned(
                        names
                            .upstream(c.name.as_deref().unwrap_or_default())
                            .into_owned(),
                    )],
                },
                other => {
                    return Err(Invalid::new(format!(
                        "tool_choice.type: {other:?} (expected auto, any, tool or none)"
                    )))
                }
            },
        }),
        _ => None,
    };
    let body = GenerateRequest {
        contents,
        system_instruction,
        tools,
        tool_config,
        generation_config: GenerationConfig {
            temperature: req.temperature,
            top_p: req.top_p,
            top_k: req.top_k,
            max_output_tokens: req.max_tokens,
            stop_sequences: &req.stop_sequences,
            thinking_config: req.thinking_budget().map(|budget| ThinkingConfig {
                thinking_budget: match budget {
                    0..=MAX_THINKING_BUDGET => budget as i64,
                    _ => -1,
                },
                include_thoughts: true,
            }),
        },
    };
    let path = match req.stream {
        true => format!("/v1beta/models/{segment}:streamGenerateContent?alt=sse"),
        false => format!("/v1beta/models/{segment}:generateContent"),
    };
    Ok((path, serde_json::to_vec(&body).map_err(encoded)?))
}

/// The turns of the conversation. Instructions in its middle (`role: "system"`, which newer
/// clients send) join the system instruction: Gemini has no place for them between turns.
fn contents<'a>(
    req: &'a MessagesRequest<'a>,
    names: &mut ToolNames,
    system: &mut Vec<Part<'a>>,
) -> Result<Vec<Content<'a>>, Invalid> {
    let mut contents: Vec<Content<'a>> = Vec::with_capacity(req.messages.len());
    // The function name of each tool_use id so far, for the results that answer them.
    let mut called: Vec<(Cow<'a, str>, String)> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let what = format!("messages[{i}].content");
        let blocks = content(m.content, &what)?;
        let (role, parts) = match m.role.as_ref() {
            "user" => ("user", user_parts(blocks, &what, &called)?),
            "assistant" => ("model", model_parts(blocks, &what, names, &mut called)?),
            "system" => {
                for block in blocks {
                    match block.kind.as_ref() {
                        "text" => system.push(Part {
                            text: Some(block.text.unwrap_or_default()),
                            ..Part::default()
                        }),
                        other => return Err(unsupported(&what, other, "gemini")),
                    }
                }
                continue;
            }
            other => {
                return Err(Invalid::new(format!(
                    "messages[{i}].role: {other:?} (expected \"user\", \"assistant\" or \"system\")"
                )))
            }
        };
        match contents.last_mut() {
            Some(last) if last.role == Some(role) => last.parts.extend(parts),
            _ if parts.is_empty() => {}
            _ => contents.push(Content {
                role: Some(role),
                parts,
            }),
        }
    }
    // A last model turn's calls have no answers: Gemini would refuse them.
    if let Some(last) = contents.last_mut().filter(|c| c.role == Some("model")) {
        last.parts.retain(|p| p.function_call.is_none());
        if last.parts.is_empty() {
            contents.pop();
        }
    }
    Ok(contents)
}

fn user_parts<'a>(
    blocks: Vec<Block<'a>>,
    what: &str,
    called: &[(Cow<'a, str>, String)],
) -> Result<Vec<Part<'a>>, Invalid> {
    let mut responses = Vec::new();
    let mut parts = Vec::new();
    for block in blocks {
        match block.kind.as_ref() {
            "tool_result" => {
                let id = block.tool_use_id.unwrap_or_default();
                let name = (called.iter().rev())
                    .find(|(call, _)| *call == id)
                    .map(|(_, name)| name.clone())
                    .ok_or_else(|| {
                        Invalid::new(format!(
                            "{what}: tool_result {id:?} answers no tool_use of the assistant \
                             turns before it"
                        ))
                    })?;
                let mut texts = Vec::new();
                let mut images = Vec::new();
                if let Some(raw) = block.content {
                    for inner in content(raw, what)? {
                        match inner.kind.as_ref() {
                            "text" => texts.push(inner.text.unwrap_or_default()),
                            "image" => images.push(media_part(inner, what)?),
                            other => return Err(unsupported(what, other, "gemini")),
                        }
                    }
                }
                let text = match texts.len() {
                    1 => texts.pop().unwrap_or_default(),
                    _ => Cow::Owned(texts.join("\n")),
                };
                responses.push(Part {
                    function_response: Some(FunctionResponse {
                        name,
                        response: match block.is_error {
                            true => ResponseValue::Error(text),
                            false => ResponseValue::Result(text),
                        },
                    }),
                    ..Part::default()
                });
                parts.extend(images);
            }
            "thinking" | "redacted_thinking" => {}
            _ => parts.push(media_part(block, what)?),
        }
    }
    responses.extend(parts);
    Ok(responses)
}

/// A text, image or document block as a part.
fn media_part<'a>(block: Block<'a>, what: &str) -> Result<Part<'a>, Invalid> {
    if block.kind == "text" {
        return Ok(Part {
            text: Some(block.text.unwrap_or_default()),
            ..Part::default()
        });
    }
    if !matches!(block.kind.as_ref(), "image" | "document") {
        return Err(unsupported(what, &block.kind, "gemini"));
    }
    let source = block
        .source
        .ok_or_else(|| Invalid::new(format!("{what}: a {} needs a source", block.kind)))?;
    let fallback = if block.kind == "image" {
        "image/png"
    } else {
        "application/pdf"
    };
    let mime = source.media_type.unwrap_or(Cow::Borrowed(fallback));
    match source.kind.as_ref() {
        "base64" => Ok(Part {
            inline_data: Some(Blob {
                mime_type: mime,
                data: source.data.unwrap_or_default(),
            }),
            ..Part::default()
        }),
        "url" => Ok(Part {
            file_data: Some(FileData {
                mime_type: mime,
                file_uri: source.url.unwrap_or_default(),
            }),
            ..Part::default()
        }),
        "text" => Ok(Part {
            text: Some(source.data.unwrap_or_default()),
            ..Part::default()
        }),
        other => Err(unsupported(
            what,
            &format!("{} source {other}", block.kind),
            "gemini",
        )),
    }
}

fn model_parts<'a>(
    blocks: Vec<Block<'a>>,
    what: &str,
    names: &mut ToolNames,
    called: &mut Vec<(Cow<'a, str>, String)>,
) -> Result<Vec<Part<'a>>, Invalid> {
    let mut parts: Vec<Part<'a>> = Vec::with_capacity(blocks.len());
    let mut signature: Option<Cow<'a, str>> = None;
    let mut first_call = true;
    for block in blocks {
        let mut part = match block.kind.as_ref() {
            "thinking" => {
                signature = block.signature.filter(|s| !s.is_empty()).or(signature);
                continue;
            }
            "redacted_thinking" => continue,
            "text" => Part {
                text: Some(block.text.unwrap_or_default()),
                ..Part::default()
            },
            "tool_use" => {
                let id = block.id.unwrap_or_default();
                let name = names
                    .upstream(block.name.as_deref().unwrap_or_default())
                    .into_owned();
                called.push((id, name.clone()));
                let args = block.input.unwrap_or_else(|| empty_object());
                Part {
                    function_call: Some(FunctionCall { name, args }),
                    ..Part::default()
                }
            }
            other => return Err(unsupported(what, other, "gemini")),
        };
        part.thought_signature = signature.take();
        if part.function_call.is_some() {
            // Gemini signs the first call of a turn (the others of a parallel set go unsigned),
            // and refuses a turn whose first call has no signature.
            if first_call && part.thought_signature.is_none() {
                part.thought_signature = Some(Cow::Borrowed(SKIP_SIGNATURE));
            }
            first_call = false;
        }
        parts.push(part);
    }
    if let (Some(s), Some(last)) = (signature, parts.last_mut()) {
        last.thought_signature = Some(s);
    }
    Ok(parts)
}

fn empty_object() -> &'static RawValue {
    static EMPTY: std::sync::OnceLock<Box<RawValue>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| RawValue::from_string("{}".into()).expect("{} is JSON"))
}

fn tools<'a>(
    req: &'a MessagesRequest<'a>,
    names: &mut ToolNames,
) -> Result<Vec<Tools<'a>>, Invalid> {
    let mut declarations = Vec::with_capacity(req.tools.len());
    for (t, schema) in req.custom_tools("gemini")? {
        declarations.push(FunctionDeclaration {
            name: names.upstream(&t.name).into_owned(),
            description: t.description.as_deref(),
            parameters_json_schema: without_schema_key(schema),
        });
    }
    Ok(match declarations.is_empty() {
        true => Vec::new(),
        false => vec![Tools {
            function_declarations: declarations,
        }],
    })
}

/// The schema without its top-level `$schema` member.
fn without_schema_key(schema: &RawValue) -> Box<RawValue> {
    let mut kept = String::with_capacity(schema.get().len());
    let mut dropped = false;
    let walked = skim::members(schema.get().as_bytes(), |key, value| {
        if key == "$schema" {
            dropped = true;
            return;
        }
        kept.push(if kept.is_empty() { '{' } else { ',' });
        push_str(&mut kept, key);
        kept.push(':');
        kept.push_str(std::str::from_utf8(value).unwrap_or("null"));
    });
    if walked.is_err() || !dropped {
        return schema.to_owned();
    }
    if kept.is_empty() {
        kept.push('{');
    }
    kept.push('}');
    RawValue::from_string(kept).unwrap_or_else(|_| schema.to_owned())
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
