//! Tests of Gemini's responses and streams, each event parsed back.

use serde_json::{json, Value};

use super::*;
use crate::mock::answers::Delivery;
use crate::mock::shape::{self, PLACEHOLDER};

fn meta() -> Meta {
    Meta {
        response_id: "resp1".into(),
        model: "\"gemini-x\"".into(),
    }
}

fn script(pieces: &[&str], reasoning: &[&str], calls: usize) -> Script {
    Script {
        reasoning: reasoning.iter().map(|p| p.to_string()).collect(),
        pieces: pieces.iter().map(|p| p.to_string()).collect(),
        calls: (0..calls)
            .map(|i| Call {
                name: format!("tool{i}"),
                arguments: format!("{{\"query\":\"q\",\"n\":{i}}}"),
            })
            .collect(),
        stop: if calls > 0 {
            Stop::ToolCalls
        } else {
            Stop::End
        },
        input_tokens: 6,
        output_tokens: (pieces.len() + reasoning.len() + calls) as u64,
        stamped: false,
    }
}

/// The events of a stream, parsed; asserts each is one `data:` line of JSON.
fn stream_of(s: &Script, quirks: &str, fault: Option<StreamFault>) -> (Vec<Value>, Delivery) {
    let Reply::Stream {
        events, delivery, ..
    } = stream(s, &meta(), Quirks::parse(quirks), fault)
    else {
        panic!()
    };
    let values = events
        .iter()
        .map(|e| {
            assert!(e.ends_with("\n\n") && !e.contains('\r'), "{e:?}");
            let data = e.strip_prefix("data: ").unwrap().trim_end();
            assert!(!data.contains('\n'));
            serde_json::from_str(data).unwrap_or_else(|x| panic!("{x}: {data}"))
        })
        .collect();
    (values, delivery)
}

fn parts(v: &Value) -> &Vec<Value> {
    v["candidates"][0]["content"]["parts"].as_array().unwrap()
}

#[test]
fn a_whole_response() {
    let s = script(&["Hello", " you"], &[], 0);
    let v: Value = serde_json::from_str(&response(&s, &meta(), Quirks::default())).unwrap();
    assert_eq!(
        v,
        json!({
            "candidates": [{"content": {"parts": [{"text": "Hello you"}], "role": "model"}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 6, "candidatesTokenCount": 2, "totalTokenCount": 8},
            "modelVersion": "gemini-x",
            "responseId": "resp1",
        })
    );
    let mut s = script(&[], &["Thinking", " hard"], 2);
    s.stop = Stop::ToolCalls;
    let v: Value = serde_json::from_str(&response(&s, &meta(), Quirks::default())).unwrap();
    assert_eq!(
        *parts(&v),
        vec![
            json!({"text": "Thinking hard", "thought": true, "thoughtSignature": "mock-signature-1"}),
            json!({"functionCall": {"name": "tool0", "args": {"query": "q", "n": 0}}, "thoughtSignature": "mock-signature-2"}),
            json!({"functionCall": {"name": "tool1", "args": {"query": "q", "n": 1}}}),
        ]
    );
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
    assert_eq!(
        v["usageMetadata"],
        json!({"promptTokenCount": 6, "candidatesTokenCount": 2, "totalTokenCount": 10, "thoughtsTokenCount": 2})
    );
    let v: Value =
        serde_json::from_str(&response(&s, &meta(), Quirks::parse("signature-only"))).unwrap();
    assert_eq!(
        parts(&v)[0],
        json!({"text": "Thinking hard", "thought": true})
    );
    assert_eq!(
        parts(&v)[1],
        json!({"thoughtSignature": "mock-signature-1"})
    );
    for (stop, reason) in [
        (Stop::MaxTokens, "MAX_TOKENS"),
        (Stop::StopSequence("x".into()), "STOP"),
        (Stop::Forced("SAFETY".into()), "SAFETY"),
    ] {
        let mut s = script(&["a"], &[], 0);
        s.stop = stop;
        let v: Value = serde_json::from_str(&response(&s, &meta(), Quirks::default())).unwrap();
        assert_eq!(v["candidates"][0]["finishReason"], reason);
    }
}

#[test]
fn a_stream_of_whole_responses() {
    let s = script(&["Hello", " you"], &["Hmm", " yes"], 0);
    let (events, delivery) = stream_of(&s, "", None);
    assert_eq!((events.len(), delivery), (4, Delivery::Whole));
    let got: Vec<&Value> = events.iter().map(|e| &parts(e)[0]).collect();
    assert_eq!(
        got,
        [
            &json!({"text": "Hmm", "thought": true}),
            &json!({"text": " yes", "thought": true, "thoughtSignature": "mock-signature-1"}),
            &json!({"text": "Hello"}),
            &json!({"text": " you"}),
        ]
    );
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["modelVersion"], "gemini-x");
        assert_eq!(e["responseId"], "resp1");
        assert_eq!(e["candidates"][0]["content"]["role"], "model");
        assert_eq!(e["candidates"][0]["index"], 0);
        // The usage so far, on every event.
        let u = &e["usageMetadata"];
        let (cand, thoughts) = (
            u["candidatesTokenCount"].as_u64().unwrap(),
            u["thoughtsTokenCount"].as_u64().unwrap(),
        );
        assert_eq!((cand + thoughts) as usize, i + 1);
        assert_eq!(u["totalTokenCount"].as_u64().unwrap(), 6 + cand + thoughts);
        let finish = e["candidates"][0].get("finishReason");
        assert_eq!(finish.is_some(), i == 3, "{e}");
    }
    assert_eq!(events[3]["candidates"][0]["finishReason"], "STOP");
}

#[test]
fn calls_come_whole_in_one_event_the_first_signed_when_thinking() {
    let (events, _) = stream_of(&script(&[], &["Hmm"], 2), "", None);
    assert_eq!(events.len(), 2);
    let calls = parts(&events[1]);
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["thoughtSignature"], "mock-signature-2");
    assert!(calls[1].get("thoughtSignature").is_none());
    assert_eq!(
        calls[1]["functionCall"],
        json!({"name": "tool1", "args": {"query": "q", "n": 1}})
    );
    assert_eq!(events[1]["candidates"][0]["finishReason"], "STOP");
    // Not thinking: no signatures at all.
    let (events, _) = stream_of(&script(&[], &[], 1), "", None);
    assert_eq!(events.len(), 1);
    assert!(parts(&events[0])[0].get("thoughtSignature").is_none());
    assert!(events[0]["usageMetadata"]
        .get("thoughtsTokenCount")
        .is_none());
}

#[test]
fn signature_only_sends_the_signature_in_a_part_of_its_own() {
    let (events, _) = stream_of(&script(&["a"], &["Hmm", " ok"], 0), "signature-only", None);
    let got: Vec<&Value> = events.iter().map(|e| &parts(e)[0]).collect();
    assert_eq!(
        got,
        [
            &json!({"text": "Hmm", "thought": true}),
            &json!({"text": " ok", "thought": true}),
            &json!({"thoughtSignature": "mock-signature-1"}),
            &json!({"text": "a"}),
        ]
    );
}

#[test]
fn crlf_and_an_empty_answer() {
    let Reply::Stream { events, .. } =
        stream(&script(&[], &[], 0), &meta(), Quirks::parse("crlf"), None)
    else {
        panic!()
    };
    assert_eq!(events.len(), 1);
    assert!(events[0].ends_with("}\r\n\r\n"), "{:?}", events[0]);
    let v: Value =
        serde_json::from_str(events[0].strip_prefix("data: ").unwrap().trim_end()).unwrap();
    assert_eq!(parts(&v)[0], json!({"text": ""}));
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
}

#[test]
fn stream_faults() {
    let s = script(&["a", " b", " c"], &[], 0);
    let (events, _) = stream_of(&s, "", Some(StreamFault::NoEnd));
    assert_eq!(events.len(), 3);
    assert!(events
        .iter()
        .all(|e| e["candidates"][0].get("finishReason").is_none()));

    let (events, _) = stream_of(&s, "", Some(StreamFault::ErrorInStream));
    assert_eq!(events.len(), 3);
    assert_eq!(
        events[2],
        json!({"error": {"code": 503, "message": "mock: error in stream", "status": "UNAVAILABLE"}})
    );

    let Reply::Stream { events, .. } =
        stream(&s, &meta(), Quirks::default(), Some(StreamFault::Garbage))
    else {
        panic!()
    };
    assert_eq!(events.len(), 3);
    assert_eq!(
        events[2],
        format!("data: {}\n\n", crate::mock::faults::GARBAGE)
    );

    let (events, _) = stream_of(&s, "", Some(StreamFault::BigEvent));
    assert_eq!(
        parts(&events[3])[0]["text"].as_str().unwrap().len(),
        BIG_EVENT_TEXT + 1
    );
    assert!(events[3]["candidates"][0].get("finishReason").is_some());

    let (_, delivery) = stream_of(&s, "", Some(StreamFault::Fragmented));
    assert_eq!(delivery, Delivery::Fragmented);
}

#[test]
fn shaped_deltas_are_stamped_where_the_placeholder_is() {
    let mut s = script(&[], &[], 0);
    s.pieces = (0..4).map(|i| shape::delta_text(i, 30)).collect();
    s.stamped = true;
    for q in ["", "crlf"] {
        let Reply::Stream {
            events,
            stamped,
            stamp_offset,
            ..
        } = stream(&s, &meta(), Quirks::parse(q), None)
        else {
            panic!()
        };
        assert_eq!(stamped, 0..4);
        for (n, e) in events.iter().enumerate() {
            assert!(
                shape::has_placeholder(e.as_bytes(), stamp_offset),
                "{q}: {e}"
            );
            assert_eq!(
                &e.as_bytes()[stamp_offset - 8..stamp_offset],
                format!("#{n:06}@").as_bytes()
            );
            assert_eq!(&e.as_bytes()[stamp_offset..stamp_offset + 16], PLACEHOLDER);
        }
    }
    let Reply::Stream { events, .. } = stream(&s, &meta(), Quirks::default(), None) else {
        panic!()
    };
    assert!(delta_overhead(&meta()) >= events[0].len() - 30);
}
