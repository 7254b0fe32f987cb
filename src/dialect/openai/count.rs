//! count_tokens for OpenAI-compatible upstreams, which have no such endpoint: an estimate,
//! counted locally.
//!
//! The text a model reads (system prompt, messages, tool calls and results, tool definitions) is
//! tokenized with OpenAI's `cl100k_base` encoding (the `tiktoken-rs` crate), plus a few tokens of
//! framing per message and a flat [`MEDIA_TOKENS`] per image or document, whose size the request
//! does not tell. The upstream's own tokenizer (Llama's, Qwen's, DeepSeek's…) differs, and a
//! Claude-trained client expects Claude's counts, so this is an estimate: `cl100k_base` was
//! chosen over the newer `o200k_base` because its smaller vocabulary counts more tokens for the
//! same text, and a client that sizes its context (Claude Code's autocompaction) fares better
//! overestimating than underestimating. The encoding is loaded on first use (about 25 MB), and
//! counting a long prompt takes milliseconds: callers run it off the worker threads.

use std::sync::OnceLock;

use tiktoken_rs::CoreBPE;

use super::super::request::{content, Block, Invalid, MessagesRequest};

/// Tokens assumed for an image or a document.
pub const MEDIA_TOKENS: u64 = 1_000;
/// Tokens of framing per message (role and separators), as OpenAI's own estimate counts them.
const PER_MESSAGE: u64 = 4;

fn encoding() -> Option<&'static CoreBPE> {
    static ENCODING: OnceLock<Option<CoreBPE>> = OnceLock::new();
    ENCODING
        .get_or_init(|| match tiktoken_rs::cl100k_base() {
            Ok(bpe) => Some(bpe),
            Err(e) => {
                log::error!("the cl100k_base encoding could not be loaded: {e}");
                None
            }
        })
        .as_ref()
}

/// The estimated input tokens of a Messages request.
pub fn count(body: &[u8]) -> Result<u64, Invalid> {
    let req = MessagesRequest::parse(body)?;
    let mut text = String::new();
    let mut extra = 0;
    for s in req.system_texts()? {
        text.push_str(&s);
        text.push('\n');
    }
    for (i, m) in req.messages.iter().enumerate() {
        extra += PER_MESSAGE;
        for block in content(m.content, &format!("messages[{i}].content"))? {
            extra += gather(&block, &mut text)?;
        }
    }
    for t in &req.tools {
        text.push_str(&t.name);
        text.push('\n');
        if let Some(d) = &t.description {
            text.push_str(d);
            text.push('\n');
        }
        if let Some(schema) = t.input_schema {
            text.push_str(schema.get());
            text.push('\n');
        }
    }
    let tokens = match encoding() {
        Some(bpe) => bpe.encode_ordinary(&text).len() as u64,
        None => (text.len() as u64).div_ceil(4),
    };
    Ok(tokens + extra)
}

/// Adds a block's text to `text`; returns the tokens counted for it otherwise (media).
fn gather(block: &Block<'_>, text: &mut String) -> Result<u64, Invalid> {
    let mut push = |s: &str| {
        text.push_str(s);
        text.push('\n');
    };
    match block.kind.as_ref() {
        "text" => push(block.text.as_deref().unwrap_or_default()),
        "thinking" => push(block.thinking.as_deref().unwrap_or_default()),
        "tool_use" => {
            push(block.name.as_deref().unwrap_or_default());
            push(block.input.map_or("{}", |i| i.get()));
        }
        "tool_result" => {
            let mut media = 0;
            if let Some(raw) = block.content {
                for inner in content(raw, "tool_result.content")? {
                    media += gather(&inner, text)?;
                }
            }
            return Ok(media);
        }
        "image" | "document" => return Ok(MEDIA_TOKENS),
        _ => {}
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_text_a_model_reads() {
        let short =
            count(br#"{"model":"m","messages":[{"role":"user","content":"Hello, world"}]}"#)
                .unwrap();
        // "Hello", ",", " world" and the line end in cl100k_base, and one message's framing.
        assert_eq!(short, 4 + PER_MESSAGE);
        let body = serde_json::json!({
            "model": "m",
            "system": "You are terse.",
            "tools": [{"name": "get_weather", "description": "Weather for a city",
                       "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "aGk="}}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "get_weather", "input": {"city": "Paris"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "Sunny, 21 C"}]}
            ]
        });
        let n = count(body.to_string().as_bytes()).unwrap();
        assert!(
            n > MEDIA_TOKENS + 3 * PER_MESSAGE + 20 && n < MEDIA_TOKENS + 80,
            "{n}"
        );
        assert!(count(b"{}").is_err());
    }
}
