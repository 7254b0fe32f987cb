//! Property tests for the dialect stream decoders: whatever an upstream sends, however the reads
//! split it, the client gets the same events, and they form a stream a strict client
//! accumulates (`dialect::grammar::check`) with the text, reasoning and tool calls the upstream
//! meant; and bytes that are not what they should be never panic a decoder or break the grammar
//! of what was already sent.
//!
//! The generator writes the upstream's stream from a script it keeps, so every property is held
//! against what was generated, not against the decoder's own idea of it.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::{json, Value};

use ringgate::dialect::events::MessageHead;
use ringgate::dialect::grammar::{check, Accumulated};
use ringgate::dialect::{gemini, openai, Context};
use ringgate::stream::translate::Translate;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn context() -> Context {
    Context {
        head: MessageHead {
            id: "msg_p".into(),
            model: "claude-x".into(),
            input_tokens: 3,
        },
        stream: true,
        request_id: "req_p".into(),
        ..Context::default()
    }
}

/// Runs a decoder over `wire` cut into pieces of the cycled `sizes`: the output, and the
/// failure if it failed (the relay then adds an error event after the output).
fn run(mut d: Box<dyn Translate>, wire: &[u8], sizes: &[usize]) -> (Vec<u8>, Option<String>) {
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < wire.len() {
        let n = sizes[i % sizes.len()].max(1).min(wire.len() - at);
        if let Err(e) = d.feed(&wire[at..at + n], &mut out) {
            return (out, Some(e));
        }
        at += n;
        i += 1;
    }
    let end = d.finish(&mut out).err();
    (out, end)
}

/// What the client ends up with: the output, with the relay's error event after a failure.
/// A failure before any output is an HTTP error instead, so there is nothing to check.
fn as_client_gets(out: Vec<u8>, failure: Option<String>) -> Option<Accumulated> {
    let mut stream = out;
    if let Some(reason) = failure {
        if stream.is_empty() {
            return None;
        }
        let event = json!({"type": "error", "error": {"type": "api_error", "message": reason}});
        stream.extend_from_slice(format!("event: error\ndata: {event}\n\n").as_bytes());
    }
    Some(check(&stream).unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&stream))))
}

fn splits() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        3 => vec(1usize..=9, 1..12),
        1 => vec(1usize..=400, 1..6),
    ]
}

/// Text with the characters JSON and SSE care about.
fn text() -> impl Strategy<Value = String> {
    "[a-z \"\\\\\n\t:é😀{}]{0,12}"
}

/// A tool call's arguments: a small JSON object.
fn arguments() -> impl Strategy<Value = Value> {
    vec(
        (
            "[a-z]{1,6}",
            prop_oneof![
                text().prop_map(Value::from),
                any::<i32>().prop_map(Value::from),
                any::<bool>().prop_map(Value::from)
            ],
        ),
        0..4,
    )
    .prop_map(|members| Value::Object(members.into_iter().collect()))
}

/// One step of an OpenAI stream's script.
#[derive(Clone, Debug)]
enum Step {
    Text(String),
    Reasoning(String, bool),
    /// A fragment of call `index`'s arguments (its id and name ride on its first fragment, or
    /// on its second when `late`).
    Call(usize),
    Noise,
}

#[derive(Clone, Debug)]
struct Script {
    steps: Vec<Step>,
    calls: Vec<(String, Value, bool)>,
    /// How many fragments each call's arguments are cut into.
    cuts: usize,
    finish: &'static str,
    usage: bool,
    done: bool,
    crlf: bool,
}

fn script() -> impl Strategy<Value = Script> {
    let calls = vec(("[a-z_]{1,10}", arguments(), any::<bool>()), 0..4);
    (calls, vec(0u8..4, 0..24), vec(text(), 24), 1usize..5)
        .prop_flat_map(|(calls, kinds, texts, cuts)| {
            let n = calls.len();
            let steps: Vec<Step> = kinds
                .iter()
                .zip(texts)
                .map(|(k, t)| match k {
                    0 => Step::Text(t),
                    1 => {
                        let under_its_first_name = t.len() % 2 == 0;
                        Step::Reasoning(t, under_its_first_name)
                    }
                    2 if n > 0 => Step::Call(t.len() % n),
                    _ => Step::Noise,
                })
                .collect();
            (
                Just((calls, steps, cuts)),
                prop_oneof![
                    Just("stop"),
                    Just("length"),
                    Just("tool_calls"),
                    Just("content_filter")
                ],
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
            )
        })
        .prop_map(|((calls, steps, cuts), finish, usage, done, crlf)| Script {
            steps,
            calls,
            cuts,
            finish,
            usage,
            done,
            crlf,
        })
}

/// The fragments of each call's arguments' JSON text.
fn fragments(args: &Value, cuts: usize) -> Vec<String> {
    let text = args.to_string();
    let chars: Vec<char> = text.chars().collect();
    let size = chars.len().div_ceil(cuts).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// The script as an OpenAI SSE stream; every call's fragments all go out (those the steps did
/// not name, before the finish).
fn openai_wire(s: &Script) -> Vec<u8> {
    let mut w = Wire {
        text: String::new(),
        end: if s.crlf { "\r\n\r\n" } else { "\n\n" },
        sent: vec![0; s.calls.len()],
        fragments: s
            .calls
            .iter()
            .map(|(_, a, _)| fragments(a, s.cuts))
            .collect(),
    };
    w.text
        .push_str(&format!(": OPENROUTER PROCESSING{}", w.end));
    w.delta(json!({"role": "assistant", "content": ""}));
    for step in &s.steps {
        match step {
            Step::Text(t) => w.delta(json!({"content": t})),
            Step::Reasoning(t, true) => w.delta(json!({"reasoning_content": t})),
            Step::Reasoning(t, false) => w.delta(json!({"reasoning": t})),
            Step::Call(i) => w.call(s, *i),
            Step::Noise => w.delta(json!({"content": null, "tool_calls": []})),
        }
    }
    for i in 0..s.calls.len() {
        while w.sent[i] < w.fragments[i].len().max(2) {
            w.call(s, i);
        }
    }
    w.push(json!({"choices":[{"index":0,"delta":{},"finish_reason":s.finish}]}));
    if s.usage {
        w.push(json!({"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":5}}));
    }
    if s.done {
        w.text.push_str(&format!("data: [DONE]{}", w.end));
    }
    w.text.into_bytes()
}

struct Wire {
    text: String,
    end: &'static str,
    /// Fragments sent of each call.
    sent: Vec<usize>,
    fragments: Vec<Vec<String>>,
}

impl Wire {
    fn push(&mut self, chunk: Value) {
        self.text.push_str(&format!("data: {chunk}{}", self.end));
    }

    fn delta(&mut self, delta: Value) {
        self.push(json!({"object":"chat.completion.chunk","choices":[{"index":0,"delta":delta,"finish_reason":null}]}));
    }

    /// The next fragment of call `i` (its id and name on the first, or when `late` the second).
    fn call(&mut self, s: &Script, i: usize) {
        let (name, _, late) = &s.calls[i];
        let k = self.sent[i];
        if k >= self.fragments[i].len() && k > 1 {
            return;
        }
        let args = self.fragments[i].get(k).cloned().unwrap_or_default();
        let mut c = json!({"index": i, "function": {"arguments": args}});
        if k == usize::from(*late) {
            c["id"] = json!(format!("call_{i}"));
            c["type"] = json!("function");
            c["function"]["name"] = json!(name);
        }
        self.sent[i] += 1;
        self.delta(json!({"tool_calls": [c]}));
    }
}

fn openai_decoder() -> Box<dyn Translate> {
    Box::new(openai::stream::StreamDecoder::new(context()))
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn openai_streams_in_any_split_give_what_the_upstream_meant(s in script(), sizes in splits()) {
        let wire = openai_wire(&s);
        let (whole, failure) = run(openai_decoder(), &wire, &[wire.len()]);
        prop_assert_eq!(&failure, &None);
        let (split, _) = run(openai_decoder(), &wire, &sizes);
        prop_assert_eq!(String::from_utf8_lossy(&split), String::from_utf8_lossy(&whole));
        let acc = as_client_gets(whole, None).unwrap();

        let text: String = s.steps.iter().filter_map(|st| match st { Step::Text(t) => Some(t.as_str()), _ => None }).collect();
        prop_assert_eq!(acc.text(), text);
        let mut calls = acc.tool_uses();
        calls.sort_by(|a, b| a.0.cmp(b.0));
        prop_assert_eq!(calls.len(), s.calls.len());
        for (i, (name, args, _)) in s.calls.iter().enumerate() {
            let id = format!("call_{i}");
            prop_assert_eq!(calls[i], (id.as_str(), name.as_str(), args));
        }
        let expected = match (s.finish, s.calls.is_empty()) {
            ("length", _) => "max_tokens",
            ("content_filter", _) => "refusal",
            (_, false) => "tool_use",
            _ => "end_turn",
        };
        prop_assert_eq!(acc.stop_reason.as_deref(), Some(expected));
    }

    #[test]
    fn openai_streams_with_damaged_bytes_never_break_the_grammar(
        s in script(),
        damage in vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
        sizes in splits(),
    ) {
        let mut wire = openai_wire(&s);
        for (at, byte, how) in damage {
            let i = at.index(wire.len().max(1));
            match how {
                0 if i < wire.len() => wire[i] = byte,
                1 => wire.insert(i.min(wire.len()), byte),
                _ if i < wire.len() => { wire.remove(i); }
                _ => {}
            }
        }
        let (out, failure) = run(openai_decoder(), &wire, &sizes);
        as_client_gets(out, failure);
    }

    #[test]
    fn any_bytes_at_all_never_break_the_grammar(bytes in vec(any::<u8>(), 0..600), sizes in splits()) {
        for d in [openai_decoder(), gemini_decoder()] {
            let (out, failure) = run(d, &bytes, &sizes);
            as_client_gets(out, failure);
        }
        let mut with_data = b"data: ".to_vec();
        with_data.extend_from_slice(&bytes);
        for d in [openai_decoder(), gemini_decoder()] {
            let (out, failure) = run(d, &with_data, &sizes);
            as_client_gets(out, failure);
        }
    }
}

/// One part of a Gemini event.
#[derive(Clone, Debug)]
enum Part {
    Text(String),
    Thought(String, bool),
    Call(String, Value),
}

fn gemini_events() -> impl Strategy<Value = (Vec<Vec<Part>>, &'static str, bool)> {
    let part = prop_oneof![
        3 => text().prop_map(Part::Text),
        2 => (text(), any::<bool>()).prop_map(|(t, s)| Part::Thought(t, s)),
        1 => ("[a-z_]{1,8}", arguments()).prop_map(|(n, a)| Part::Call(n, a)),
    ];
    (
        vec(vec(part, 0..4), 1..8),
        prop_oneof![Just("STOP"), Just("MAX_TOKENS"), Just("SAFETY")],
        any::<bool>(),
    )
}

fn gemini_wire(events: &[Vec<Part>], finish: &str, crlf: bool) -> Vec<u8> {
    let end = if crlf { "\r\n\r\n" } else { "\n\n" };
    let last = events.len() - 1;
    let mut wire = String::new();
    for (i, parts) in events.iter().enumerate() {
        let parts: Vec<Value> = parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => json!({"text": t}),
                Part::Thought(t, true) => {
                    json!({"text": t, "thought": true, "thoughtSignature": "c2ln"})
                }
                Part::Thought(t, false) => json!({"text": t, "thought": true}),
                Part::Call(n, a) => json!({"functionCall": {"name": n, "args": a}}),
            })
            .collect();
        let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        if i == last {
            candidate["finishReason"] = json!(finish);
        }
        let event = json!({"candidates": [candidate], "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": i}});
        wire.push_str(&format!("data: {event}{end}"));
    }
    wire.into_bytes()
}

fn gemini_decoder() -> Box<dyn Translate> {
    Box::new(gemini::stream::StreamDecoder::new(context()))
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn gemini_streams_in_any_split_give_what_the_upstream_meant(
        (events, finish, crlf) in gemini_events(),
        sizes in splits(),
    ) {
        let wire = gemini_wire(&events, finish, crlf);
        let (whole, failure) = run(gemini_decoder(), &wire, &[wire.len()]);
        prop_assert_eq!(&failure, &None);
        let (split, _) = run(gemini_decoder(), &wire, &sizes);
        prop_assert_eq!(String::from_utf8_lossy(&split), String::from_utf8_lossy(&whole));
        let acc = as_client_gets(whole, None).unwrap();
        let parts: Vec<&Part> = events.iter().flatten().collect();
        let text: String = parts.iter().filter_map(|p| match p { Part::Text(t) => Some(t.as_str()), _ => None }).collect();
        prop_assert_eq!(acc.text(), text);
        let calls: Vec<(&str, &Value)> = parts.iter().filter_map(|p| match p { Part::Call(n, a) => Some((n.as_str(), a)), _ => None }).collect();
        let got: Vec<(&str, &Value)> = acc.tool_uses().into_iter().map(|(_, n, a)| (n, a)).collect();
        prop_assert_eq!(got, calls.clone());
        let expected = match (finish, calls.is_empty()) {
            ("MAX_TOKENS", _) => "max_tokens",
            ("SAFETY", _) => "refusal",
            (_, false) => "tool_use",
            _ => "end_turn",
        };
        prop_assert_eq!(acc.stop_reason.as_deref(), Some(expected));
    }

    #[test]
    fn gemini_streams_with_damaged_bytes_never_break_the_grammar(
        (events, finish, crlf) in gemini_events(),
        damage in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        sizes in splits(),
    ) {
        let mut wire = gemini_wire(&events, finish, crlf);
        for (at, byte) in damage {
            let i = at.index(wire.len());
            wire[i] = byte;
        }
        let (out, failure) = run(gemini_decoder(), &wire, &sizes);
        as_client_gets(out, failure);
    }
}
