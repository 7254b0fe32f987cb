//! A script as Gemini's `GenerateContentResponse`: whole, or as the stream of them that
//! `streamGenerateContent?alt=sse` sends.
//!
//! Each stream event is a whole response: the candidate's new parts (a thought piece, a text
//! piece, or every function call at once, as Gemini sends them), `usageMetadata` with the counts
//! so far, `modelVersion` and `responseId`; the last event carries the `finishReason`, and no
//! `[DONE]` follows. Thought parts carry `"thought": true` and the last of them a
//! `thoughtSignature` (`signature-only`: in a part of its own after them); when the model calls
//! functions while thinking, the first call carries a signature too, as Gemini 3 does.

use super::super::answers::Reply;
use super::super::directives::{Quirk, Quirks};
use super::super::faults::{self, StreamFault, BIG_EVENT_TEXT, ERROR_IN_STREAM};
use super::super::script::{Call, Script, Stop};
use super::super::shape::STAMP_IN_TEXT;
use crate::json::write::{push_str, string};

/// What every event of one answer repeats.
pub struct Meta {
    pub response_id: String,
    /// The model, as a JSON string literal.
    pub model: String,
}

/// What opens every event up to its first part's text.
const TEXT_HEAD: &str = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":";

/// The `finishReason` for a stop (Gemini says `STOP` when it calls functions).
pub fn finish_reason(stop: &Stop) -> &str {
    match stop {
        Stop::MaxTokens => "MAX_TOKENS",
        Stop::End | Stop::StopSequence(_) | Stop::ToolCalls => "STOP",
        Stop::Forced(reason) => reason,
    }
}

/// One part of the answer.
enum Part<'a> {
    Thought {
        text: &'a str,
        signature: Option<usize>,
    },
    /// `signature-only`: a part that is only a thought signature.
    Signature(usize),
    Text(&'a str),
    Call {
        call: &'a Call,
        signature: Option<usize>,
    },
}

impl Part<'_> {
    fn write(&self, out: &mut String) {
        let signed = |out: &mut String, n: &Option<usize>| {
            if let Some(n) = n {
                out.push_str(&format!(",\"thoughtSignature\":\"mock-signature-{n}\""));
            }
        };
        match self {
            Part::Thought { text, signature } => {
                out.push_str("{\"text\":");
                push_str(out, text);
                out.push_str(",\"thought\":true");
                signed(out, signature);
                out.push('}');
            }
            Part::Signature(n) => {
                out.push_str(&format!("{{\"thoughtSignature\":\"mock-signature-{n}\"}}"))
            }
            Part::Text(text) => {
                out.push_str("{\"text\":");
                push_str(out, text);
                out.push('}');
            }
            Part::Call { call, signature } => {
                out.push_str(&format!(
                    "{{\"functionCall\":{{\"name\":{},\"args\":{}}}",
                    string(&call.name),
                    call.arguments
                ));
                signed(out, signature);
                out.push('}');
            }
        }
    }

    /// Output tokens this part counts for: (candidates, thoughts).
    fn tokens(&self) -> (u64, u64) {
        match self {
            Part::Thought { .. } => (0, 1),
            Part::Signature(_) => (0, 0),
            Part::Text(_) | Part::Call { .. } => (1, 0),
        }
    }
}

/// The parts of the thoughts (`thought`: all in one, or one per piece), and the number of the
/// next signature.
fn thought_parts<'a>(thoughts: Vec<&'a str>, quirks: Quirks, parts: &mut Vec<Part<'a>>) -> usize {
    if thoughts.is_empty() {
        return 1;
    }
    let last = thoughts.len() - 1;
    let separate = quirks.has(Quirk::SignatureOnly);
    for (i, text) in thoughts.into_iter().enumerate() {
        let signature = (i == last && !separate).then_some(1);
        parts.push(Part::Thought { text, signature });
    }
    if separate {
        parts.push(Part::Signature(1));
    }
    2
}

fn call_parts<'a>(script: &'a Script, next_signature: usize) -> Vec<Part<'a>> {
    let thinking = !script.reasoning.is_empty();
    (script.calls.iter().enumerate())
        .map(|(i, call)| Part::Call {
            call,
            signature: (i == 0 && thinking).then_some(next_signature),
        })
        .collect()
}

fn usage(script: &Script, candidates: u64, thoughts: u64) -> String {
    let prompt = script.input_tokens;
    let mut u = format!(
        "{{\"promptTokenCount\":{prompt},\"candidatesTokenCount\":{candidates},\
         \"totalTokenCount\":{}",
        prompt + candidates + thoughts
    );
    if !script.reasoning.is_empty() {
        u.push_str(&format!(",\"thoughtsTokenCount\":{thoughts}"));
    }
    u.push('}');
    u
}

/// One response holding `parts`, with the usage so far and, if `finish`, its finish reason.
fn write_response(
    out: &mut String,
    parts: &[Part<'_>],
    finish: Option<&str>,
    usage: &str,
    meta: &Meta,
) {
    out.push_str("{\"candidates\":[{\"content\":{\"parts\":[");
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        p.write(out);
    }
    out.push_str("],\"role\":\"model\"}");
    if let Some(reason) = finish {
        out.push_str(",\"finishReason\":");
        push_str(out, reason);
    }
    out.push_str(&format!(
        ",\"index\":0}}],\"usageMetadata\":{usage},\"modelVersion\":{},\"responseId\":\"{}\"}}",
        meta.model, meta.response_id
    ));
}

/// A whole `generateContent` answer.
pub fn response(script: &Script, meta: &Meta, quirks: Quirks) -> String {
    let reasoning = script.reasoning_text();
    let text = script.text();
    let mut parts = Vec::new();
    let thoughts = if reasoning.is_empty() {
        Vec::new()
    } else {
        vec![reasoning.as_str()]
    };
    let next = thought_parts(thoughts, quirks, &mut parts);
    if !text.is_empty() || script.calls.is_empty() {
        parts.push(Part::Text(&text));
    }
    parts.extend(call_parts(script, next));
    let usage = usage(script, script.text_tokens(), script.reasoning.len() as u64);
    let mut out = String::new();
    write_response(
        &mut out,
        &parts,
        Some(finish_reason(&script.stop)),
        &usage,
        meta,
    );
    out
}

/// The bytes of a text event beside its text, for the bound on a shaped stream (the usage
/// counts given room for their largest values).
pub fn delta_overhead(meta: &Meta) -> usize {
    let mut out = String::from("data: ");
    let parts = [Part::Text("")];
    let big = u64::MAX / 4;
    let script_usage = format!(
        "{{\"promptTokenCount\":{big},\"candidatesTokenCount\":{big},\"totalTokenCount\":{big}}}"
    );
    write_response(&mut out, &parts, None, &script_usage, meta);
    out.len() + 2
}

/// The `streamGenerateContent?alt=sse` stream of `script`.
pub fn stream(script: &Script, meta: &Meta, quirks: Quirks, fault: Option<StreamFault>) -> Reply {
    // Each event's parts: a thought piece, the signature, a text piece, or all the calls.
    let mut events_parts: Vec<Vec<Part<'_>>> = Vec::new();
    let mut thoughts = Vec::new();
    let next = thought_parts(
        script.reasoning.iter().map(String::as_str).collect(),
        quirks,
        &mut thoughts,
    );
    events_parts.extend(thoughts.into_iter().map(|p| vec![p]));
    let first_text = events_parts.len();
    events_parts.extend(script.pieces.iter().map(|p| vec![Part::Text(p)]));
    let text_end = events_parts.len();
    let big = format!(" {}", "x".repeat(BIG_EVENT_TEXT));
    if fault == Some(StreamFault::BigEvent) {
        events_parts.push(vec![Part::Text(&big)]);
    }
    if !script.calls.is_empty() {
        events_parts.push(call_parts(script, next));
    }
    if events_parts.is_empty() {
        events_parts.push(vec![Part::Text("")]);
    }
    let ended = fault != Some(StreamFault::NoEnd);
    let last = events_parts.len() - 1;
    let (mut candidates, mut thoughts) = (0, 0);
    let mut events = Vec::with_capacity(events_parts.len());
    for (k, parts) in events_parts.iter().enumerate() {
        for p in parts {
            let (c, t) = p.tokens();
            candidates += c;
            thoughts += t;
        }
        let finish = (k == last && ended).then(|| finish_reason(&script.stop));
        let mut event = String::from("data: ");
        write_response(
            &mut event,
            parts,
            finish,
            &usage(script, candidates, thoughts),
            meta,
        );
        event.push_str("\n\n");
        events.push(event);
    }
    let stamped = match script.stamped && first_text < text_end {
        true => first_text..text_end,
        false => 0..0,
    };
    let delivery = faults::bend(&mut events, first_text..text_end, fault, || {
        format!(
            "data: {{\"error\":{{\"code\":503,\"message\":{},\"status\":\"UNAVAILABLE\"}}}}\n\n",
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
        stamped,
        stamp_offset: TEXT_HEAD.len() + 1 + STAMP_IN_TEXT,
    }
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
