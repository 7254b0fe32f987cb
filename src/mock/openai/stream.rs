//! A script as a `chat.completion.chunk` stream, cut the way real servers cut theirs.
//!
//! The plain stream is what OpenAI sends: a role chunk, one delta per reasoning or text piece,
//! each tool call as a first fragment with its id and name and its arguments in 2 or 3 more,
//! a chunk with the `finish_reason`, a usage chunk with `choices: []` when the request asked
//! for one (`stream_options.include_usage`), and `data: [DONE]`.
//!
//! The quirks ([`Quirk`]) reproduce what other servers do and translators get wrong:
//! interleaved fragments of parallel calls, an id and name after the first arguments, empty and
//! null deltas, comment and keep-alive lines, a missing `[DONE]`, the finish in the last delta's
//! chunk, the usage in the finish chunk, `reasoning` for `reasoning_content`, arguments one
//! character at a time, CRLF line ends. The stream faults ([`StreamFault`]) end it badly.

use super::super::answers::Reply;
use super::super::directives::{Quirk, Quirks};
use super::super::faults::{self, StreamFault, BIG_EVENT_TEXT, ERROR_IN_STREAM};
use super::super::script::{Call, Script};
use super::super::shape::STAMP_IN_TEXT;
use super::{finish_reason, reasoning_key, usage, Meta};
use crate::json::write::{push_str, string};

/// What opens the JSON of a text delta, after the chunk's head.
const TEXT_DELTA: &str = "{\"content\":";

/// The bytes of a text delta chunk beside its text, for the bound on a shaped stream.
pub fn delta_overhead(meta: &Meta) -> usize {
    let mut chunk = head(meta);
    chunk.push_str(TEXT_DELTA);
    chunk.push_str("\"\"}");
    tail(&mut chunk, None, None, None);
    chunk.len()
}

/// The chunk stream of `script`.
pub fn reply(
    script: &Script,
    meta: &Meta,
    quirks: Quirks,
    include_usage: bool,
    fault: Option<StreamFault>,
) -> Reply {
    let mut deltas: Vec<Delta<'_>> = vec![Delta::Role];
    deltas.extend(script.reasoning.iter().map(|p| Delta::Reasoning(p)));
    deltas.extend(script.pieces.iter().map(|p| Delta::Text(p)));
    if fault == Some(StreamFault::BigEvent) {
        deltas.push(Delta::Big);
    }
    deltas.extend(fragments(&script.calls, &meta.call_ids, quirks));
    let ended = fault != Some(StreamFault::NoEnd);
    let usage = usage(script);
    let usage_in_finish = quirks.has(Quirk::UsageInFinish);
    let comments = quirks.has(Quirk::Comments);
    let head = head(meta);

    let mut events =
        Vec::with_capacity(deltas.len() * if quirks.has(Quirk::Noise) { 2 } else { 1 } + 4);
    if comments {
        events.push(": OPENROUTER PROCESSING\n\n".to_string());
    }
    let mut text_at = Vec::with_capacity(2);
    let mut stamped = 0..0;
    let last = deltas.len() - 1;
    for (k, delta) in deltas.iter().enumerate() {
        let mut chunk = head.clone();
        delta.write(&mut chunk, quirks);
        let combined = k == last && ended && quirks.has(Quirk::CombinedFinish);
        match combined {
            true => finish(&mut chunk, script, usage_in_finish.then_some(&usage)),
            false => tail(&mut chunk, None, None, None),
        }
        if let Delta::Text(_) = delta {
            if text_at.len() < 2 {
                text_at.push(events.len());
            }
            // From the first text delta to the last, noise and comments between included.
            if stamped.is_empty() {
                stamped.start = events.len();
            }
            stamped.end = events.len() + 1;
        }
        events.push(chunk);
        if quirks.has(Quirk::Noise) && k < last {
            // Alternately an empty and a null content: noise providers put between deltas.
            let mut chunk = head.clone();
            chunk.push_str(if k % 2 == 0 {
                "{\"content\":\"\"}"
            } else {
                "{\"content\":null}"
            });
            tail(&mut chunk, None, None, None);
            events.push(chunk);
        }
        if comments && k % 3 == 2 {
            events.push(match k % 6 {
                2 => "data: : keepalive\n\n".to_string(),
                _ => ": OPENROUTER PROCESSING\n\n".to_string(),
            });
        }
    }
    if ended {
        if !quirks.has(Quirk::CombinedFinish) {
            let mut chunk = head.clone();
            chunk.push_str("{}");
            finish(&mut chunk, script, usage_in_finish.then_some(&usage));
            events.push(chunk);
        }
        if include_usage && !usage_in_finish {
            events.push(format!(
                "data: {{\"id\":\"{}\",\"object\":\"chat.completion.chunk\",\"created\":{},\
                 \"model\":{},\"choices\":[],\"usage\":{usage}}}\n\n",
                meta.id, meta.created, meta.model
            ));
        }
        if !quirks.has(Quirk::NoDone) {
            events.push("data: [DONE]\n\n".to_string());
        }
    }
    let delivery = faults::bend(&mut events, text_at, fault, || {
        format!(
            "data: {{\"error\":{{\"message\":{},\"type\":\"server_error\",\"param\":null,\
             \"code\":500}}}}\n\n",
            string(ERROR_IN_STREAM)
        )
    });
    if quirks.has(Quirk::Crlf) {
        for e in &mut events {
            *e = e.replace('\n', "\r\n");
        }
    }
    Reply::Stream {
        events,
        delivery,
        stamped: if script.stamped { stamped } else { 0..0 },
        // After the head, `{"content":"`, `#` and the index.
        stamp_offset: head.len() + TEXT_DELTA.len() + 1 + STAMP_IN_TEXT,
    }
}

/// One delta of the stream.
enum Delta<'a> {
    /// The first: the role, and an empty content.
    Role,
    Reasoning(&'a str),
    Text(&'a str),
    /// `big_event`: one text delta larger than a relay buffer.
    Big,
    /// A tool call fragment: the JSON of one `tool_calls` entry.
    Call(String),
}

impl Delta<'_> {
    fn write(&self, out: &mut String, quirks: Quirks) {
        match self {
            Delta::Role => out.push_str("{\"role\":\"assistant\",\"content\":\"\"}"),
            Delta::Reasoning(p) => {
                out.push_str(&format!("{{\"{}\":", reasoning_key(quirks)));
                push_str(out, p);
                out.push('}');
            }
            Delta::Text(p) => {
                out.push_str(TEXT_DELTA);
                push_str(out, p);
                out.push('}');
            }
            Delta::Big => {
                out.push_str(TEXT_DELTA);
                push_str(out, &format!(" {}", "x".repeat(BIG_EVENT_TEXT)));
                out.push('}');
            }
            Delta::Call(entry) => {
                out.push_str("{\"tool_calls\":[");
                out.push_str(entry);
                out.push_str("]}");
            }
        }
    }
}

/// The tool call fragments of `calls`, in the order they go: call by call, or (`interleave`)
/// one fragment of each call in turn.
fn fragments<'a>(calls: &[Call], ids: &[String], quirks: Quirks) -> Vec<Delta<'a>> {
    let mut per_call: Vec<Vec<String>> = calls
        .iter()
        .enumerate()
        .map(|(i, call)| call_fragments(i, call, &ids[i], quirks))
        .collect();
    if !quirks.has(Quirk::Interleave) {
        return per_call.into_iter().flatten().map(Delta::Call).collect();
    }
    let mut out = Vec::new();
    let longest = per_call.iter().map(Vec::len).max().unwrap_or(0);
    for turn in 0..longest {
        for list in &mut per_call {
            if let Some(f) = list.get_mut(turn) {
                out.push(Delta::Call(std::mem::take(f)));
            }
        }
    }
    out
}

/// The `tool_calls` entries that stream call `i`: the id and name in the first (`late-id`: in
/// the second, after a first argument fragment), then the arguments in 2 or 3 pieces
/// (`bytewise-args`: a character each).
fn call_fragments(i: usize, call: &Call, id: &str, quirks: Quirks) -> Vec<String> {
    let args = split_arguments(&call.arguments, i, quirks.has(Quirk::BytewiseArgs));
    let args_entry = |piece: &str| {
        format!(
            "{{\"index\":{i},\"function\":{{\"arguments\":{}}}}}",
            string(piece)
        )
    };
    let name = string(&call.name);
    let mut out = Vec::with_capacity(args.len() + 1);
    if quirks.has(Quirk::LateId) {
        out.push(args_entry(args[0]));
        out.push(format!(
            "{{\"index\":{i},\"id\":\"{id}\",\"type\":\"function\",\"function\":{{\"name\":{name}}}}}"
        ));
        out.extend(args[1..].iter().map(|a| args_entry(a)));
    } else {
        out.push(format!(
            "{{\"index\":{i},\"id\":\"{id}\",\"type\":\"function\",\
             \"function\":{{\"name\":{name},\"arguments\":\"\"}}}}"
        ));
        out.extend(args.iter().map(|a| args_entry(a)));
    }
    out
}

/// Call `i`'s arguments in 2 pieces (even `i`) or 3 (odd `i`), or a character each; never
/// fewer than one piece, and the pieces concatenate to the arguments.
fn split_arguments(args: &str, i: usize, bytewise: bool) -> Vec<&str> {
    let bounds: Vec<usize> = args.char_indices().map(|(at, _)| at).skip(1).collect();
    if bytewise {
        let mut out = Vec::with_capacity(bounds.len() + 1);
        let mut start = 0;
        for &b in &bounds {
            out.push(&args[start..b]);
            start = b;
        }
        out.push(&args[start..]);
        return out;
    }
    let n = 2 + i % 2;
    let mut cuts: Vec<usize> = (1..n)
        .filter_map(|k| bounds.get(bounds.len() * k / n).copied())
        .collect();
    cuts.dedup();
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for c in cuts {
        out.push(&args[start..c]);
        start = c;
    }
    out.push(&args[start..]);
    out
}

/// `data: {` and every member of a chunk before its delta.
fn head(meta: &Meta) -> String {
    format!(
        "data: {{\"id\":\"{}\",\"object\":\"chat.completion.chunk\",\"created\":{},\
         \"model\":{},\"choices\":[{{\"index\":0,\"delta\":",
        meta.id, meta.created, meta.model
    )
}

/// Closes a chunk after its delta: its finish reason and vLLM's stop reason, and any usage.
fn tail(out: &mut String, finish: Option<&str>, stop_reason: Option<&str>, usage: Option<&str>) {
    out.push_str(",\"logprobs\":null,\"finish_reason\":");
    out.push_str(&finish.map_or("null".to_string(), string));
    if let Some(s) = stop_reason {
        out.push_str(",\"stop_reason\":");
        push_str(out, s);
    }
    out.push_str("}]");
    if let Some(u) = usage {
        out.push_str(",\"usage\":");
        out.push_str(u);
    }
    out.push_str("}\n\n");
}

fn finish(out: &mut String, script: &Script, usage: Option<&String>) {
    let (reason, stop_reason) = finish_reason(&script.stop);
    tail(out, Some(reason), stop_reason, usage.map(String::as_str));
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
