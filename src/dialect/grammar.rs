//! Checking an Anthropic event stream the way a strict client reads it, and accumulating the
//! message it carries.
//!
//! The decoders promise that whatever an upstream sends, the client gets a stream the official
//! SDKs accumulate without error. This is that promise as a function, for the tests (unit,
//! property and fuzz) to hold every decoder to: event names match their `type`; `message_start`
//! comes first and once; blocks open in index order, one at a time, and take only deltas of
//! their own kind; a tool's `partial_json` is a valid prefix of a JSON object after every delta
//! (the SDKs parse it then, in a mode that takes an unfinished object but not a wrong one);
//! `message_delta` comes with no block open, and `message_stop` last. Or an `error` event ends
//! the stream, after anything. A tool input that never completed (an answer cut short, or
//! arguments that went wrong and were cut where they did) is accumulated as `null`: a client
//! keeps what its partial parse made of it.

use serde_json::Value;

use crate::json::prefix::JsonPrefix;
use crate::stream::translate::Translate;

/// The message a stream carried, as a client accumulates it.
#[derive(Debug, Default, PartialEq)]
pub struct Accumulated {
    pub id: String,
    pub model: String,
    pub blocks: Vec<Content>,
    pub stop_reason: Option<String>,
    pub stop_sequence: Option<String>,
    /// The usage of `message_start`, with `message_delta`'s counts over it.
    pub usage: Value,
    /// The `error` event that ended the stream, as (type, message).
    pub error: Option<(String, String)>,
    /// Events read, `ping`s included.
    pub events: usize,
}

/// One content block, accumulated.
#[derive(Debug, PartialEq)]
pub enum Content {
    Text(String),
    Thinking {
        thinking: String,
        signature: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
}

#[derive(PartialEq)]
enum Phase {
    Start,
    Blocks,
    Delta,
    Done,
}

/// Reads `stream` (whole events); the message it carries, or what breaks the grammar, with the
/// index of the event.
pub fn check(stream: &[u8]) -> Result<Accumulated, String> {
    let text = std::str::from_utf8(stream).map_err(|e| format!("not UTF-8: {e}"))?;
    let mut acc = Accumulated::default();
    let mut phase = Phase::Start;
    let mut open: Option<(usize, JsonPrefix, String)> = None;
    let events: Vec<&str> = text.split("\n\n").collect();
    let (last, whole) = events.split_last().ok_or("empty")?;
    if !last.is_empty() {
        return Err(format!("the stream ends inside an event: {last:?}"));
    }
    for (n, raw) in whole.iter().enumerate() {
        let fail = |what: String| format!("event {n} ({raw:?}): {what}");
        acc.events += 1;
        let (name, data) = parse_event(raw).map_err(fail)?;
        if phase == Phase::Done {
            return Err(fail("an event after the end".into()));
        }
        if name == "error" {
            let e = &data["error"];
            acc.error = Some((string(&e["type"]), string(&e["message"])));
            phase = Phase::Done;
            continue;
        }
        match (name.as_str(), &phase) {
            ("message_start", Phase::Start) => {
                let m = &data["message"];
                acc.id = string(&m["id"]);
                acc.model = string(&m["model"]);
                acc.usage = m["usage"].clone();
                if m["content"] != Value::Array(Vec::new()) || m["role"] != "assistant" {
                    return Err(fail("message_start must have no content yet".into()));
                }
                phase = Phase::Blocks;
            }
            ("ping", Phase::Blocks | Phase::Delta) => {}
            ("content_block_start", Phase::Blocks) => {
                let index = index_of(&data).map_err(fail)?;
                if open.is_some() || index != acc.blocks.len() {
                    return Err(fail(format!(
                        "block {index} opened with {} closed and {} open",
                        acc.blocks.len(),
                        open.is_some() as u8
                    )));
                }
                let b = &data["content_block"];
                let block = match b["type"].as_str() {
                    Some("text") => Content::Text(string(&b["text"])),
                    Some("thinking") => Content::Thinking {
                        thinking: string(&b["thinking"]),
                        signature: string(&b["signature"]),
                    },
                    Some("tool_use") => {
                        let id = string(&b["id"]);
                        let valid = !id.is_empty()
                            && id
                                .bytes()
                                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
                        if !valid || b["input"] != serde_json::json!({}) {
                            return Err(fail(format!("a tool_use block with id {id:?}")));
                        }
                        Content::ToolUse {
                            id,
                            name: string(&b["name"]),
                            input: Value::Null,
                        }
                    }
                    other => return Err(fail(format!("a block of type {other:?}"))),
                };
                acc.blocks.push(block);
                open = Some((index, JsonPrefix::new(), String::new()));
            }
            ("content_block_delta", Phase::Blocks) => {
                let index = index_of(&data).map_err(fail)?;
                let Some((at, json, partial)) = open.as_mut().filter(|o| o.0 == index) else {
                    return Err(fail(format!("a delta to block {index}, which is not open")));
                };
                let d = &data["delta"];
                match (d["type"].as_str(), &mut acc.blocks[*at]) {
                    (Some("text_delta"), Content::Text(t)) => t.push_str(&text_of(&d["text"])?),
                    (Some("thinking_delta"), Content::Thinking { thinking, .. }) => {
                        thinking.push_str(&text_of(&d["thinking"])?)
                    }
                    (Some("signature_delta"), Content::Thinking { signature, .. }) => {
                        signature.push_str(&text_of(&d["signature"])?)
                    }
                    (Some("input_json_delta"), Content::ToolUse { .. }) => {
                        let piece = text_of(&d["partial_json"])?;
                        if json.feed(piece.as_bytes()) < piece.len() {
                            return Err(fail(format!("{partial}{piece} is not a JSON prefix")));
                        }
                        partial.push_str(&piece);
                    }
                    (kind, _) => return Err(fail(format!("a {kind:?} delta to that block"))),
                }
            }
            ("content_block_stop", Phase::Blocks) => {
                let index = index_of(&data).map_err(fail)?;
                let Some((at, json, partial)) = open.take().filter(|o| o.0 == index) else {
                    return Err(fail(format!("block {index} closed but not open")));
                };
                if let Content::ToolUse { input, .. } = &mut acc.blocks[at] {
                    *input = match partial.trim() {
                        "" => serde_json::json!({}),
                        _ if !json.is_complete() => Value::Null,
                        p => serde_json::from_str(p)
                            .map_err(|e| fail(format!("tool input {p:?}: {e}")))?,
                    };
                }
            }
            ("message_delta", Phase::Blocks) => {
                if open.is_some() {
                    return Err(fail("message_delta with a block open".into()));
                }
                acc.stop_reason = data["delta"]["stop_reason"].as_str().map(str::to_string);
                acc.stop_sequence = data["delta"]["stop_sequence"].as_str().map(str::to_string);
                if acc.stop_reason.is_none() {
                    return Err(fail("message_delta without a stop_reason".into()));
                }
                if let (Some(u), Some(over)) =
                    (acc.usage.as_object_mut(), data["usage"].as_object())
                {
                    for (k, v) in over {
                        u.insert(k.clone(), v.clone());
                    }
                }
                phase = Phase::Delta;
            }
            ("message_stop", Phase::Delta) => phase = Phase::Done,
            (other, _) => return Err(fail(format!("{other} out of place"))),
        }
    }
    if phase != Phase::Done {
        return Err("the stream ends without message_stop or an error".into());
    }
    Ok(acc)
}

/// Runs a translation stage over `input` cut at `cuts` (ascending offsets): its output, and
/// how it ended (a failure stops the feeding, as it stops the relay).
pub fn translate_cut(
    stage: &mut dyn Translate,
    input: &[u8],
    cuts: &[usize],
) -> (Vec<u8>, Result<(), String>) {
    let mut out = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain([input.len()].iter()) {
        if let Err(e) = stage.feed(&input[at..cut], &mut out) {
            return (out, Err(e));
        }
        at = cut;
    }
    let end = stage.finish(&mut out);
    (out, end)
}

/// An event's name and its data, which must be JSON with a matching `type`.
fn parse_event(raw: &str) -> Result<(String, Value), String> {
    let mut name = None;
    let mut data = None;
    for line in raw.lines() {
        if let Some(v) = line.strip_prefix("event: ") {
            name = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("data: ") {
            data = Some(v);
        } else if !line.starts_with(':') {
            return Err(format!("a line that is no field: {line:?}"));
        }
    }
    let (name, data) = name.zip(data).ok_or("an event without its name or data")?;
    let data: Value = serde_json::from_str(data).map_err(|e| format!("data: {e}"))?;
    if data["type"] != name.as_str() {
        return Err(format!("named {name} but of type {}", data["type"]));
    }
    Ok((name, data))
}

fn index_of(data: &Value) -> Result<usize, String> {
    data["index"]
        .as_u64()
        .map(|i| i as usize)
        .ok_or_else(|| "no index".to_string())
}

fn text_of(v: &Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{v} is not a string"))
}

fn string(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

impl Accumulated {
    /// The text of all text blocks.
    pub fn text(&self) -> String {
        self.blocks
            .iter()
            .filter_map(|b| match b {
                Content::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The tool calls, as (id, name, input).
    pub fn tool_uses(&self) -> Vec<(&str, &str, &Value)> {
        self.blocks
            .iter()
            .filter_map(|b| match b {
                Content::ToolUse { id, name, input } => Some((id.as_str(), name.as_str(), input)),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"x\",\"content\":[],\"usage\":{\"input_tokens\":3,\"output_tokens\":0}}}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"f\",\"input\":{}}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"1}\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":5}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    #[test]
    fn a_good_stream_accumulates() {
        let acc = check(GOOD.as_bytes()).unwrap();
        assert_eq!(acc.tool_uses(), [("t1", "f", &serde_json::json!({"a": 1}))]);
        assert_eq!(acc.stop_reason.as_deref(), Some("tool_use"));
        assert_eq!(
            acc.usage,
            serde_json::json!({"input_tokens": 3, "output_tokens": 5})
        );
    }

    #[test]
    fn each_break_of_the_grammar_is_found() {
        let events: Vec<&str> = GOOD.split_inclusive("\n\n").collect();
        let without = |i: usize| {
            let mut e = events.clone();
            e.remove(i);
            e.concat()
        };
        for i in 0..events.len() {
            match check(without(i).as_bytes()) {
                // Without its last fragment the input is left unfinished, which a client
                // takes (as null here), but no more than that.
                Ok(acc) if i == 3 => assert_eq!(acc.tool_uses()[0].2, &Value::Null),
                other => assert!(other.is_err(), "without event {i}"),
            }
        }
        let bad_json = GOOD.replace("\"1}\"", "\"1}}\"");
        assert!(check(bad_json.as_bytes())
            .unwrap_err()
            .contains("not a JSON prefix"));
        let wrong_kind = GOOD.replace("input_json_delta", "text_delta");
        assert!(check(wrong_kind.as_bytes()).is_err());
        let cut = &GOOD[..GOOD.len() - 1];
        assert!(check(cut.as_bytes()).is_err());
        let error_at_end = [events[0], events[1], "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"x\"}}\n\n"].concat();
        let acc = check(error_at_end.as_bytes()).unwrap();
        assert_eq!(acc.error, Some(("api_error".into(), "x".into())));
    }
}
