//! The Messages request as the encoders read it: every field a dialect maps, borrowed from the
//! client's body.
//!
//! Blocks are read through one flat struct with every field a block type may have, not through
//! serde's tagged enums: those buffer each block, which costs a copy per string and cannot keep a
//! tool's input or schema as the raw JSON text that goes upstream unchanged. Content that may be a
//! string or a list of blocks is kept raw and read on demand for the same reason.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// Why a body cannot be translated: a message for a 400 `invalid_request_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl Invalid {
    pub fn new(message: impl Into<String>) -> Invalid {
        Invalid(message.into())
    }
}

#[derive(Deserialize, Debug)]
pub struct MessagesRequest<'a> {
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    pub max_tokens: Option<u64>,
    #[serde(borrow)]
    pub system: Option<&'a RawValue>,
    #[serde(borrow)]
    pub messages: Vec<Message<'a>>,
    #[serde(borrow, default)]
    pub tools: Vec<Tool<'a>>,
    #[serde(borrow)]
    pub tool_choice: Option<ToolChoice<'a>>,
    #[serde(borrow, default)]
    pub stop_sequences: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    pub temperature: Option<&'a RawValue>,
    #[serde(borrow)]
    pub top_p: Option<&'a RawValue>,
    #[serde(borrow)]
    pub top_k: Option<&'a RawValue>,
    #[serde(default)]
    pub stream: bool,
    #[serde(borrow)]
    pub metadata: Option<Metadata<'a>>,
    #[serde(borrow)]
    pub thinking: Option<Thinking<'a>>,
    #[serde(borrow)]
    pub output_config: Option<OutputConfig<'a>>,
}

/// `output_config`: how hard the model should work (`effort`: low, medium, high, …).
#[derive(Deserialize, Debug)]
pub struct OutputConfig<'a> {
    #[serde(borrow)]
    pub effort: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Debug)]
pub struct Message<'a> {
    #[serde(borrow)]
    pub role: Cow<'a, str>,
    #[serde(borrow)]
    pub content: &'a RawValue,
}

/// A content block, any type: the fields its type uses are set.
#[derive(Deserialize, Default, Debug)]
pub struct Block<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub text: Option<Cow<'a, str>>,
    /// An image's or a document's source. A search result's `source` is a string (its URL),
    /// which no dialect reads: it counts as none, so that the block is refused by its type
    /// rather than failing the whole content as a shape that does not parse.
    #[serde(borrow, default, deserialize_with = "source_object")]
    pub source: Option<Source<'a>>,
    #[serde(borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub input: Option<&'a RawValue>,
    #[serde(borrow)]
    pub tool_use_id: Option<Cow<'a, str>>,
    /// A tool result's content: a string or blocks.
    #[serde(borrow)]
    pub content: Option<&'a RawValue>,
    #[serde(default)]
    pub is_error: bool,
    #[serde(borrow)]
    pub thinking: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub signature: Option<Cow<'a, str>>,
    /// A document's title, which names a file part.
    #[serde(borrow)]
    pub title: Option<Cow<'a, str>>,
}

/// Where an image's or a document's bytes are.
#[derive(Deserialize, Debug)]
pub struct Source<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub media_type: Option<Cow<'a, str>>,
    /// Base64 data; kept as it is, it is copied, never decoded.
    #[serde(borrow)]
    pub data: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub url: Option<Cow<'a, str>>,
}

/// A `source` that is an object, as a [`Source`]; any other value as none.
fn source_object<'de: 'a, 'a, D>(d: D) -> Result<Option<Source<'a>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    match Option::<&'a RawValue>::deserialize(d)? {
        Some(raw) if raw.get().starts_with('{') => serde_json::from_str(raw.get())
            .map(Some)
            .map_err(serde::de::Error::custom),
        _ => Ok(None),
    }
}

#[derive(Deserialize, Debug)]
pub struct Tool<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(borrow)]
    pub description: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub input_schema: Option<&'a RawValue>,
}

#[derive(Deserialize, Debug)]
pub struct ToolChoice<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(default)]
    pub disable_parallel_tool_use: bool,
}

#[derive(Deserialize, Debug)]
pub struct Metadata<'a> {
    #[serde(borrow)]
    pub user_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Debug)]
pub struct Thinking<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    pub budget_tokens: Option<u64>,
}

impl<'a> MessagesRequest<'a> {
    pub fn parse(body: &'a [u8]) -> Result<MessagesRequest<'a>, Invalid> {
        let r: MessagesRequest<'a> = serde_json::from_slice(body).map_err(|e| {
            Invalid::new(format!(
                "the request body does not fit the Messages API: {e}"
            ))
        })?;
        if r.messages.is_empty() {
            return Err(Invalid::new("messages: at least one message is required"));
        }
        Ok(r)
    }

    /// The system prompt's text blocks (a string is one block).
    pub fn system_texts(&self) -> Result<Vec<Cow<'a, str>>, Invalid> {
        let Some(raw) = self.system else {
            return Ok(Vec::new());
        };
        let mut texts = Vec::new();
        for block in content(raw, "system")? {
            match block.kind.as_ref() {
                "text" => texts.push(block.text.unwrap_or_default()),
                other => {
                    return Err(Invalid::new(format!(
                        "system: blocks of type {other:?} cannot be translated (only text)"
                    )))
                }
            }
        }
        Ok(texts)
    }

    /// The tools, each with its input schema. Tools the Anthropic API runs itself (web search, …)
    /// have no place in another dialect, so a request naming one is refused.
    pub fn custom_tools(&self, dialect: &str) -> Result<Vec<(&Tool<'a>, &'a RawValue)>, Invalid> {
        let mut tools = Vec::with_capacity(self.tools.len());
        for (i, t) in self.tools.iter().enumerate() {
            if let Some(kind) = t.kind.as_deref().filter(|k| *k != "custom") {
                return Err(Invalid::new(format!(
                    "tools[{i}]: {kind:?} is a tool the Anthropic API runs itself; an upstream of \
                     kind {dialect:?} cannot run it"
                )));
            }
            let schema = (t.input_schema)
                .ok_or_else(|| Invalid::new(format!("tools[{i}].input_schema: Field required")))?;
            tools.push((t, schema));
        }
        Ok(tools)
    }

    /// Whether extended thinking is asked for, and its budget.
    pub fn thinking_budget(&self) -> Option<u64> {
        let t = self.thinking.as_ref()?;
        match t.kind.as_ref() {
            "enabled" => Some(t.budget_tokens.unwrap_or(DEFAULT_THINKING_BUDGET)),
            "adaptive" => Some(DEFAULT_THINKING_BUDGET),
            _ => None,
        }
    }

    /// A rough count of the prompt's tokens (4 bytes a token) for `message_start`, before the
    /// upstream reports the real one.
    pub fn estimated_input_tokens(body_len: usize) -> u64 {
        (body_len as u64).div_ceil(4).max(1)
    }
}

/// The budget assumed for thinking asked for without one.
const DEFAULT_THINKING_BUDGET: u64 = 8_192;

/// The blocks of a `content` value: a string is one text block.
pub fn content<'a>(raw: &'a RawValue, what: &str) -> Result<Vec<Block<'a>>, Invalid> {
    let text = raw.get();
    if text.starts_with('"') {
        let s: Cow<'a, str> =
            serde_json::from_str(text).map_err(|e| Invalid::new(format!("{what}: {e}")))?;
        return Ok(vec![Block {
            kind: Cow::Borrowed("text"),
            text: Some(s),
            ..Block::default()
        }]);
    }
    serde_json::from_str(text).map_err(|e| {
        Invalid::new(format!(
            "{what}: expected a string or a list of content blocks ({e})"
        ))
    })
}

/// The error for a block type a dialect has no place for.
pub fn unsupported(what: &str, kind: &str, dialect: &str) -> Invalid {
    Invalid::new(format!(
        "{what}: content blocks of type {kind:?} cannot be sent to an upstream of kind \
         {dialect:?}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_blocks_and_raw_values() {
        let body = br#"{"model":"m","max_tokens":5,"system":"be brief","messages":[
            {"role":"user","content":"hi"},
            {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{"a": [1, 2]}}]},
            {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"ok"}],"is_error":true,"cache_control":{"type":"ephemeral"}}]}
        ],"temperature":0.70,"thinking":{"type":"enabled","budget_tokens":2048}}"#;
        let r = MessagesRequest::parse(body).unwrap();
        assert_eq!(r.system_texts().unwrap(), ["be brief"]);
        assert_eq!(r.temperature.unwrap().get(), "0.70");
        assert_eq!(r.thinking_budget(), Some(2048));
        let first = content(r.messages[0].content, "m").unwrap();
        assert_eq!(
            (first[0].kind.as_ref(), first[0].text.as_deref()),
            ("text", Some("hi"))
        );
        let call = &content(r.messages[1].content, "m").unwrap()[0];
        assert_eq!(call.input.unwrap().get(), "{\"a\": [1, 2]}");
        let result = &content(r.messages[2].content, "m").unwrap()[0];
        assert!(result.is_error);
        assert_eq!(
            content(result.content.unwrap(), "c").unwrap()[0]
                .text
                .as_deref(),
            Some("ok")
        );
    }

    #[test]
    fn shapes_that_cannot_be_read_are_named() {
        for (body, needle) in [
            (
                &br#"{"model":"m","messages":[]}"#[..],
                "at least one message",
            ),
            (br#"{"model":"m"}"#, "missing field `messages`"),
            (br#"{"model":1,"messages":[]}"#, "invalid type"),
        ] {
            let e = MessagesRequest::parse(body).err().unwrap();
            assert!(e.0.contains(needle), "{}", e.0);
        }
        let r = MessagesRequest::parse(
            br#"{"model":"m","system":[{"type":"image"}],"messages":[{"role":"user","content":5}]}"#,
        )
        .unwrap();
        assert!(r.system_texts().unwrap_err().0.contains("\"image\""));
        assert!(content(r.messages[0].content, "messages[0].content")
            .unwrap_err()
            .0
            .contains("messages[0].content"));
    }
}
