//! The decoders of whole answers from upstreams of other dialects, as `dialect::translator`
//! picks them: an OpenAI or Gemini message, a Gemini or Bedrock token count, and the error
//! decoder of any dialect's error status. Byte 0 picks the dialect and the answer's kind, byte 1
//! the error status; then a split recipe and the body.
//! Asserts: no panic; the same output and failure however the body is split; what is written is
//! one JSON object of the Anthropic shape the client expects: a `message` with a `content`
//! array, a count with a whole `input_tokens`, or an `error` with a string type and message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringgate::dialect::{translator, Answered, Dialect};
use ringgate_fuzz::{context, drive, pieces, recipe};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Message,
    Count,
    Error,
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (dialect, kind) = match data[0] % 7 {
        0 => (Dialect::OpenAi, Kind::Message),
        1 => (Dialect::Gemini, Kind::Message),
        2 => (Dialect::Gemini, Kind::Count),
        3 => (Dialect::Bedrock, Kind::Count),
        4 => (Dialect::OpenAi, Kind::Error),
        5 => (Dialect::Gemini, Kind::Error),
        _ => (Dialect::Bedrock, Kind::Error),
    };
    let status = match kind {
        Kind::Error => 400 + data[1] as u16 % 200,
        _ => 200,
    };
    let error_type = ["ThrottlingException", "validationException", "Other"][data[1] as usize % 3];
    let answered = Answered {
        status,
        count_tokens: kind == Kind::Count,
        error_type: Some(error_type),
    };
    let (sizes, body) = recipe(&data[2..]);
    let make = || {
        let context = ringgate::dialect::Context {
            dialect,
            stream: false,
            ..context()
        };
        translator(context, &answered).expect("a stage for another dialect")
    };
    let whole = drive(&mut *make(), &[body]);
    let split = drive(&mut *make(), &pieces(body, &sizes));
    assert_eq!(whole, split);
    let (out, failure) = whole;
    if failure.is_some() {
        return;
    }
    let v: Value = serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "{kind:?} output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out)
        )
    });
    match kind {
        Kind::Message => {
            assert_eq!(v["type"], "message", "{v}");
            assert!(v["content"].is_array(), "{v}");
        }
        Kind::Count => assert!(v["input_tokens"].is_u64(), "{v}"),
        Kind::Error => {
            assert_eq!(v["type"], "error", "{v}");
            assert!(
                v["error"]["type"].is_string() && v["error"]["message"].is_string(),
                "{v}"
            );
        }
    }
});
