//! Tests of the chunk stream: each event parsed back, the sequence checked per quirk and fault.

use serde_json::{json, Value};

use super::super::Meta;
use super::*;
use crate::mock::answers::Delivery;
use crate::mock::script::Stop;
use crate::mock::shape::{self, PLACEHOLDER};

/// One event of a stream, read back.
#[derive(Debug, PartialEq)]
enum Ev {
    Chunk(Value),
    Done,
    Comment,
    Keepalive,
}

fn read(events: &[String]) -> Vec<Ev> {
    events
        .iter()
        .map(|e| {
            assert!(e.ends_with("\n\n") && !e.contains('\r'), "{e:?}");
            let e = e.trim_end();
            match e.strip_prefix("data: ") {
                Some("[DONE]") => Ev::Done,
                Some(": keepalive") => Ev::Keepalive,
                Some(data) => {
                    Ev::Chunk(serde_json::from_str(data).unwrap_or_else(|x| panic!("{x}: {data}")))
                }
                None if e.starts_with(": ") => Ev::Comment,
                None => panic!("not an event: {e:?}"),
            }
        })
        .collect()
}

fn script(pieces: &[&str], calls: usize) -> Script {
    Script {
        reasoning: Vec::new(),
        pieces: pieces.iter().map(|p| p.to_string()).collect(),
        calls: (0..calls)
            .map(|i| Call {
                name: format!("tool{i}"),
                arguments: format!("{{\"query\":\"find it\",\"n\":{i}}}"),
            })
            .collect(),
        stop: if calls > 0 {
            Stop::ToolCalls
        } else {
            Stop::End
        },
        input_tokens: 4,
        output_tokens: (pieces.len() + calls) as u64,
        stamped: false,
    }
}

fn quirks(names: &str) -> Quirks {
    Quirks::parse(names)
}

/// The stream of `s` with these quirks, usage asked for, read back.
fn stream(s: &Script, q: &str, fault: Option<StreamFault>) -> (Vec<Ev>, Delivery, Meta) {
    let meta = Meta::new("m", s.calls.len());
    let Reply::Stream {
        events, delivery, ..
    } = reply(s, &meta, quirks(q), true, fault)
    else {
        panic!()
    };
    (read(&events), delivery, meta)
}

fn chunks(evs: &[Ev]) -> Vec<&Value> {
    evs.iter()
        .filter_map(|e| match e {
            Ev::Chunk(v) => Some(v),
            _ => None,
        })
        .collect()
}

fn delta(c: &Value) -> &Value {
    &c["choices"][0]["delta"]
}

/// The `tool_calls` entries of the stream, in order.
fn fragments(evs: &[Ev]) -> Vec<Value> {
    chunks(evs)
        .into_iter()
        .filter_map(|c| delta(c)["tool_calls"].as_array())
        .map(|list| {
            assert_eq!(list.len(), 1);
            list[0].clone()
        })
        .collect()
}

/// Each call's id, name and arguments, accumulated by index as a client does.
fn accumulate(evs: &[Ev]) -> Vec<(String, String, String)> {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for f in fragments(evs) {
        let i = f["index"].as_u64().unwrap() as usize;
        if calls.len() <= i {
            calls.resize(i + 1, Default::default());
        }
        let c = &mut calls[i];
        if let Some(id) = f["id"].as_str() {
            assert!(c.0.is_empty(), "a second id for call {i}");
            c.0 = id.into();
            assert_eq!(f["type"], "function");
        }
        if let Some(name) = f["function"]["name"].as_str() {
            c.1.push_str(name);
        }
        if let Some(args) = f["function"]["arguments"].as_str() {
            c.2.push_str(args);
        }
    }
    calls
}

#[test]
fn a_plain_text_stream() {
    let s = script(&["Hello", " there", " you"], 0);
    let meta = Meta::new("m", 0);
    let Reply::Stream {
        events,
        delivery,
        stamped,
        ..
    } = reply(&s, &meta, Quirks::default(), false, None)
    else {
        panic!()
    };
    assert_eq!((delivery, stamped), (Delivery::Whole, 0..0));
    let evs = read(&events);
    assert_eq!(evs.last(), Some(&Ev::Done));
    let cs = chunks(&evs);
    assert_eq!(cs.len(), 5);
    for c in &cs {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["id"], meta.id.as_str());
        assert_eq!(c["model"], "m");
        assert_eq!(c["choices"][0]["index"], 0);
    }
    assert_eq!(*delta(cs[0]), json!({"role": "assistant", "content": ""}));
    let text: Vec<&str> = cs[1..4]
        .iter()
        .map(|c| delta(c)["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, ["Hello", " there", " you"]);
    assert!(cs[..4]
        .iter()
        .all(|c| c["choices"][0]["finish_reason"].is_null()));
    assert_eq!(cs[4]["choices"][0]["finish_reason"], "stop");
    assert_eq!(*delta(cs[4]), json!({}));
    // No usage asked for: none sent.
    assert!(cs.iter().all(|c| c.get("usage").is_none()));
}

#[test]
fn usage_comes_in_a_chunk_of_its_own_when_asked_for() {
    let (evs, _, _) = stream(&script(&["a", " b"], 0), "", None);
    let cs = chunks(&evs);
    let usage = cs.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6,
               "prompt_tokens_details": {"cached_tokens": 0},
               "completion_tokens_details": {"reasoning_tokens": 0}})
    );
    assert_eq!(cs[cs.len() - 2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(evs.last(), Some(&Ev::Done));

    // usage-in-finish: on the finish chunk, and no chunk after it.
    let (evs, _, _) = stream(&script(&["a", " b"], 0), "usage-in-finish", None);
    let cs = chunks(&evs);
    let last = cs.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["usage"]["completion_tokens"], 2);
}

#[test]
fn tool_calls_stream_as_a_head_then_argument_fragments() {
    let (evs, _, meta) = stream(&script(&[], 2), "", None);
    let frags = fragments(&evs);
    // Call 0 in 1 + 2 fragments, call 1 in 1 + 3, one call after the other.
    let indexes: Vec<u64> = frags.iter().map(|f| f["index"].as_u64().unwrap()).collect();
    assert_eq!(indexes, [0, 0, 0, 1, 1, 1, 1]);
    assert_eq!(
        frags[0],
        json!({"index": 0, "id": meta.call_ids[0], "type": "function", "function": {"name": "tool0", "arguments": ""}})
    );
    assert!(frags[1].get("id").is_none() && frags[1]["function"].get("name").is_none());
    let calls = accumulate(&evs);
    for (i, (id, name, args)) in calls.iter().enumerate() {
        assert_eq!(
            (id, name.as_str()),
            (&meta.call_ids[i], format!("tool{i}").as_str())
        );
        let args: Value = serde_json::from_str(args).unwrap();
        assert_eq!(args, json!({"query": "find it", "n": i}));
    }
    let cs = chunks(&evs);
    assert_eq!(
        cs[cs.len() - 2]["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[test]
fn interleave_alternates_the_calls_fragments() {
    let (evs, _, _) = stream(&script(&[], 3), "interleave", None);
    let indexes: Vec<u64> = fragments(&evs)
        .iter()
        .map(|f| f["index"].as_u64().unwrap())
        .collect();
    // 3 + 4 + 3 fragments, one of each call in turn.
    assert_eq!(indexes, [0, 1, 2, 0, 1, 2, 0, 1, 2, 1]);
    let plain = accumulate(&stream(&script(&[], 3), "", None).0);
    let interleaved = accumulate(&evs);
    for (a, b) in plain.iter().zip(&interleaved) {
        assert_eq!((&a.1, &a.2), (&b.1, &b.2));
    }
}

#[test]
fn late_id_sends_the_id_and_name_after_the_first_arguments() {
    let (evs, _, meta) = stream(&script(&[], 2), "late-id", None);
    let frags = fragments(&evs);
    for i in 0..2u64 {
        let of_call: Vec<&Value> = frags.iter().filter(|f| f["index"] == i).collect();
        assert!(of_call[0].get("id").is_none(), "{:?}", of_call[0]);
        assert!(of_call[0]["function"]["arguments"]
            .as_str()
            .is_some_and(|a| !a.is_empty()));
        assert_eq!(of_call[1]["id"], meta.call_ids[i as usize].as_str());
        assert_eq!(of_call[1]["function"]["name"], format!("tool{i}"));
        assert!(of_call[1]["function"].get("arguments").is_none());
    }
    let calls = accumulate(&evs);
    assert_eq!(calls[1].2, "{\"query\":\"find it\",\"n\":1}");
}

#[test]
fn bytewise_args_sends_a_character_per_chunk() {
    let (evs, _, _) = stream(&script(&[], 1), "bytewise-args", None);
    let frags = fragments(&evs);
    let args = "{\"query\":\"find it\",\"n\":0}";
    assert_eq!(frags.len(), 1 + args.chars().count());
    assert!(frags[1..].iter().all(|f| f["function"]["arguments"]
        .as_str()
        .unwrap()
        .chars()
        .count()
        == 1));
    assert_eq!(accumulate(&evs)[0].2, args);
}

#[test]
fn noise_puts_empty_and_null_content_between_real_deltas() {
    let (evs, _, _) = stream(&script(&["a", " b"], 1), "noise", None);
    let cs = chunks(&evs);
    let kinds: Vec<String> = cs
        .iter()
        .map(|c| {
            let d = delta(c);
            match (d.get("content"), d.get("tool_calls")) {
                (Some(Value::String(s)), _) if s.is_empty() && d.get("role").is_none() => {
                    "empty".into()
                }
                (Some(Value::Null), _) => "null".into(),
                (_, Some(_)) => "call".into(),
                _ if d.get("role").is_some() => "role".into(),
                (Some(Value::String(_)), _) => "text".into(),
                _ => "other".into(),
            }
        })
        .collect();
    assert_eq!(
        kinds[..10],
        ["role", "empty", "text", "null", "text", "empty", "call", "null", "call", "empty"]
    );
    assert_eq!(accumulate(&evs)[0].2, "{\"query\":\"find it\",\"n\":0}");
}

#[test]
fn combined_finish_no_done_comments_and_reasoning_field() {
    let mut s = script(&["a", " b"], 0);
    s.reasoning = vec!["Thinking".into()];
    let (evs, _, _) = stream(&s, "combined-finish,no-done,reasoning-field", None);
    let cs = chunks(&evs);
    assert_eq!(delta(cs[1])["reasoning"], "Thinking");
    // The last text delta carries the finish; then the usage chunk, and no [DONE].
    let finish = cs[cs.len() - 2];
    assert_eq!(
        (
            delta(finish)["content"].as_str(),
            finish["choices"][0]["finish_reason"].as_str()
        ),
        (Some(" b"), Some("stop"))
    );
    assert_eq!(
        cs.iter()
            .filter(|c| !c["choices"][0]["finish_reason"].is_null())
            .count(),
        1
    );
    assert!(matches!(evs.last(), Some(Ev::Chunk(c)) if c["choices"] == json!([])));

    let (evs, _, _) = stream(&s, "", None);
    assert_eq!(delta(chunks(&evs)[1])["reasoning_content"], "Thinking");

    let (evs, _, _) = stream(&script(&["a", " b", " c", " d", " e"], 0), "comments", None);
    assert_eq!(evs[0], Ev::Comment);
    assert!(evs.contains(&Ev::Keepalive));
    assert!(evs.iter().filter(|e| **e == Ev::Comment).count() >= 2);
}

#[test]
fn crlf_ends_every_line_in_crlf() {
    let meta = Meta::new("m", 1);
    let Reply::Stream { events, .. } = reply(
        &script(&["a"], 1),
        &meta,
        quirks("crlf,comments"),
        true,
        None,
    ) else {
        panic!()
    };
    for e in &events {
        assert!(e.ends_with("\r\n\r\n"), "{e:?}");
        assert_eq!(e.matches('\n').count(), e.matches("\r\n").count(), "{e:?}");
    }
    let lf: Vec<String> = events.iter().map(|e| e.replace("\r\n", "\n")).collect();
    assert_eq!(read(&lf).last(), Some(&Ev::Done));
}

#[test]
fn stream_faults() {
    let s = script(&["a", " b", " c", " d"], 0);
    let (evs, _, _) = stream(&s, "", Some(StreamFault::NoEnd));
    assert!(!evs.contains(&Ev::Done));
    assert!(chunks(&evs)
        .iter()
        .all(|c| c["choices"][0]["finish_reason"].is_null() && c.get("usage").is_none()));

    let (evs, delivery, _) = stream(&s, "", Some(StreamFault::ErrorInStream));
    assert_eq!(delivery, Delivery::Whole);
    assert_eq!(evs.len(), 4);
    let texts: Vec<&Value> = chunks(&evs)[1..3]
        .iter()
        .map(|c| &delta(c)["content"])
        .collect();
    assert_eq!(texts, [&json!("a"), &json!(" b")]);
    assert_eq!(
        evs[3],
        Ev::Chunk(
            json!({"error": {"message": "mock: error in stream", "type": "server_error", "param": null, "code": 500}})
        )
    );

    let meta = Meta::new("m", 0);
    let Reply::Stream { events, .. } =
        reply(&s, &meta, quirks("noise"), true, Some(StreamFault::Garbage))
    else {
        panic!()
    };
    // Role, noise, text, noise, text: then the garbage.
    assert_eq!(events.len(), 6);
    assert_eq!(
        events[5],
        format!("data: {}\n\n", crate::mock::faults::GARBAGE)
    );

    let (evs, _, _) = stream(&s, "", Some(StreamFault::BigEvent));
    let big = chunks(&evs)
        .iter()
        .filter_map(|c| delta(c)["content"].as_str())
        .map(str::len)
        .max();
    assert_eq!(big, Some(BIG_EVENT_TEXT + 1));

    let (evs, delivery, _) = stream(&s, "", Some(StreamFault::Drop));
    assert_eq!(delivery, Delivery::DropAfter(4));
    assert_eq!(
        evs.last(),
        Some(&Ev::Done),
        "the events are whole; the server drops them"
    );
}

#[test]
fn shaped_deltas_are_stamped_where_the_placeholder_is() {
    let mut s = script(&[], 0);
    s.pieces = (0..5).map(|i| shape::delta_text(i, 40)).collect();
    s.stamped = true;
    let meta = Meta::new("model-with-a-long-name", 0);
    for q in ["", "noise,comments", "combined-finish,crlf"] {
        let Reply::Stream {
            events,
            stamped,
            stamp_offset,
            ..
        } = reply(&s, &meta, quirks(q), true, None)
        else {
            panic!()
        };
        let with_stamp: Vec<usize> = (stamped.clone())
            .filter(|&i| shape::has_placeholder(events[i].as_bytes(), stamp_offset))
            .collect();
        assert_eq!(with_stamp.len(), 5, "{q}");
        for (n, &i) in with_stamp.iter().enumerate() {
            let e = &events[i];
            assert_eq!(
                &e.as_bytes()[stamp_offset - 8..stamp_offset],
                format!("#{n:06}@").as_bytes()
            );
            assert_eq!(&e.as_bytes()[stamp_offset..stamp_offset + 16], PLACEHOLDER);
        }
    }
    assert_eq!(delta_overhead(&meta), {
        let Reply::Stream { events, .. } = reply(&s, &meta, Quirks::default(), false, None) else {
            panic!()
        };
        events[1].len() - 40
    });
}
