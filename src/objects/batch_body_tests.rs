use proptest::prelude::*;
use serde_json::{Map, Value};

use super::*;

type Result3 = (Vec<u8>, Vec<String>, Result<(), BatchError>);

/// Runs `body` through a fresh [`BatchBody`] in pieces cut at `cuts` (ascending), then
/// `finish`: the output, the models `rename` was called with, and the first error.
fn run_cut(
    body: &[u8],
    cuts: &[usize],
    rename: impl Fn(&str) -> Result<Option<String>, String>,
) -> Result3 {
    let mut parser = BatchBody::new();
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let mut result = Ok(());
    {
        let mut callback = |m: &str| {
            seen.push(m.to_string());
            rename(m)
        };
        let mut start = 0;
        for &cut in cuts.iter().chain([body.len()].iter()) {
            result = parser.feed(&body[start..cut], &mut out, &mut callback);
            if result.is_err() {
                // Errors stick.
                assert_eq!(parser.feed(b"", &mut out, &mut callback), result);
                break;
            }
            start = cut;
        }
    }
    let result = result.and_then(|()| parser.finish());
    assert_eq!(parser.models_seen(), seen.len());
    assert!(parser.stack.capacity() <= MAX_DEPTH);
    assert!(parser.model.capacity() <= 2 * MAX_MODEL);
    (out, seen, result)
}

fn run(body: &str, rename: impl Fn(&str) -> Result<Option<String>, String>) -> Result3 {
    run_cut(body.as_bytes(), &[], rename)
}

fn keep(_: &str) -> Result<Option<String>, String> {
    Ok(None)
}

/// Renames every model to itself followed by `!`.
fn bang(m: &str) -> Result<Option<String>, String> {
    Ok(Some(format!("{m}!")))
}

fn string(out: Vec<u8>) -> String {
    String::from_utf8(out).unwrap()
}

const COMPACT: &str = r#"{"requests":[{"custom_id":"a","params":{"model":"sonnet","max_tokens":1024,"messages":[{"role":"user","content":"Say \"model\": \"x\""}]}},{"custom_id":"b","params":{"max_tokens":5,"model":"haiku","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}}]}"#;

const PRETTY: &str = "{\r\n  \"requests\" : [\n\t{\n    \"custom_id\": \"a\",\n    \"params\": {\n      \"model\" :\n  \"sonnet\" ,\n      \"max_tokens\": -1.5e+3,\n      \"stream\": true,\n      \"stop_sequences\": null,\n      \"messages\": [ { \"role\": \"user\", \"content\": \"hi\" } ]\n    }\n  } ,\n  { \"params\" : { \"model\" : \"haiku\" } }\n  ]\n}\n\n";

const DECOYS: &str = r#"{"model":"top","metadata":{"model":"meta"},"requests":[
 {"custom_id":"a","model":"request-level","params":{"model":"real-1","metadata":{"model":"nested"},"messages":[{"role":"user","content":[{"type":"tool_use","input":{"model":"tool"}}]}],"tools":[{"model":"t"}]}},
 [{"params":{"model":"array-element"}}],
 "str", 12, null,
 {"custom_id":"c","params":[{"model":"params-array"}]},
 {"custom_id":"d","params":{"model":null}},
 {"custom_id":"e","params":{"model":{"model":"object-model"}}},
 {"custom_id":"e","params":{"model":["array-model"]}},
 {"custom_id":"f","params":{"modelx":"x","Model":"x","model ":"x","model":"real-2"}},
 {"custom_id":"g","params":"{\"model\":\"in-a-string\"}"}
],"other":{"requests":[{"params":{"model":"not-top"}}]}}"#;

const ESCAPED: &str = r#"{"r\u0065quests":[{"p\u0061r\u0061ms":{"mod\u0065l":"sonnet"}},{"params":{"\u006d\u006F\u0064\u0065\u006c":"haiku","m\u006fdel\u0000":"x"}}]}"#;

const UNICODE: &str =
    r#"{"requests":[{"params":{"model":"claude-\u00e9-\ud83d\ude00-ü-😀\/\"\\\n"}}]}"#;

const DUPLICATES: &str = r#"{"requests":[{"params":{"model":"a","model":"b"},"params":{"model":"c"}}],"requests":[{"params":{"model":"d"}}]}"#;

const BODIES: [&str; 6] = [COMPACT, PRETTY, DECOYS, ESCAPED, UNICODE, DUPLICATES];

#[test]
fn identity_keeps_every_byte() {
    for body in BODIES {
        let (out, _, result) = run(body, keep);
        assert_eq!(result, Ok(()), "{body}");
        assert_eq!(string(out), body);
    }
}

#[test]
fn renames_compact_and_pretty_bodies() {
    let (out, seen, result) = run(COMPACT, bang);
    assert_eq!(result, Ok(()));
    assert_eq!(seen, ["sonnet", "haiku"]);
    assert_eq!(
        string(out),
        COMPACT
            .replace(r#""sonnet""#, r#""sonnet!""#)
            .replace(r#""haiku""#, r#""haiku!""#)
    );

    let (out, seen, result) = run(PRETTY, bang);
    assert_eq!(result, Ok(()));
    assert_eq!(seen, ["sonnet", "haiku"]);
    assert_eq!(
        string(out),
        PRETTY
            .replace(r#""sonnet""#, r#""sonnet!""#)
            .replace(r#""haiku""#, r#""haiku!""#)
    );
}

#[test]
fn renames_only_some() {
    let rename = |m: &str| Ok((m == "haiku").then(|| "claude-haiku-4-5".to_string()));
    let (out, seen, result) = run(COMPACT, rename);
    assert_eq!(result, Ok(()));
    assert_eq!(seen, ["sonnet", "haiku"]);
    assert_eq!(
        string(out),
        COMPACT.replace(r#""haiku""#, r#""claude-haiku-4-5""#)
    );
}

#[test]
fn leaves_decoys_alone() {
    let (out, seen, result) = run(DECOYS, bang);
    assert_eq!(result, Ok(()));
    assert_eq!(seen, ["real-1", "real-2"]);
    let expected = DECOYS
        .replace(r#""real-1""#, r#""real-1!""#)
        .replace(r#""real-2""#, r#""real-2!""#);
    assert_eq!(string(out), expected);

    for body in [
        r#"{"requests":{"params":{"model":"x"}}}"#,
        r#"{"requests":"x","a":[{"requests":[{"params":{"model":"deep"}}]}]}"#,
        r#"{"requests":[[{"params":{"model":"x"}}]]}"#,
        r#"{"a":{"requests":[{"params":{"model":"x"}}]}}"#,
        r#"{"requests":[{"request":{"params":{"model":"x"}}}]}"#,
        r#"{"requests":[{"params":{"params":{"model":"x"}}}]}"#,
        r#"{"model":"x","params":{"model":"x"},"requests":[]}"#,
        r#"{"requests":[{"params":{}},{},{"params":{"max_tokens":1}}]}"#,
    ] {
        let (out, seen, result) = run(body, bang);
        assert_eq!(result, Ok(()), "{body}");
        assert!(seen.is_empty(), "{body}");
        assert_eq!(string(out), body);
    }
}

#[test]
fn decodes_escaped_keys() {
    let (out, seen, result) = run(ESCAPED, bang);
    assert_eq!(result, Ok(()));
    assert_eq!(seen, ["sonnet", "haiku"]);
    let expected = ESCAPED
        .replace(r#""sonnet""#, r#""sonnet!""#)
        .replace(r#""haiku""#, r#""haiku!""#);
    assert_eq!(string(out), expected);
}

#[test]
fn decodes_unicode_models_and_escapes_replacements() {
    let (_, seen, result) = run(UNICODE, keep);
    assert_eq!(result, Ok(()));
    assert_eq!(seen, ["claude-é-😀-ü-😀/\"\\\n"]);

    let new = "a\"b\\c\nd\u{1}é😀\u{7f}";
    let (out, _, result) = run(UNICODE, |_| Ok(Some(new.to_string())));
    assert_eq!(result, Ok(()));
    let out = string(out);
    assert_eq!(
        out,
        r#"{"requests":[{"params":{"model":"a\"b\\c\nd\u0001é😀"#.to_string() + "\u{7f}\"}}]}"
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["requests"][0]["params"]["model"], new);
}

#[test]
fn handles_every_repeated_key_where_it_is() {
    let (out, seen, result) = run(DUPLICATES, bang);
    assert_eq!(result, Ok(()));
    assert_eq!(seen, ["a", "b", "c", "d"]);
    assert_eq!(
        string(out),
        r#"{"requests":[{"params":{"model":"a!","model":"b!"},"params":{"model":"c!"}}],"requests":[{"params":{"model":"d!"}}]}"#
    );
}

#[test]
fn every_split_gives_the_same_output_and_calls() {
    for body in BODIES {
        let bytes = body.as_bytes();
        let whole = run_cut(bytes, &[], bang);
        assert_eq!(whole.2, Ok(()));
        let each: Vec<usize> = (1..bytes.len()).collect();
        assert_eq!(run_cut(bytes, &each, bang), whole, "byte by byte: {body}");
        for cut in 0..=bytes.len() {
            assert_eq!(run_cut(bytes, &[cut], bang), whole, "cut at {cut}: {body}");
        }
    }
}

#[test]
fn a_body_cut_short_does_not_finish() {
    for body in [COMPACT, DECOYS] {
        for end in 0..body.len() {
            let (out, _, result) = run_cut(&body.as_bytes()[..end], &[], keep);
            assert_eq!(result, Err(BatchError::Truncated { at: end as u64 }));
            assert!(body.as_bytes().starts_with(&out));
        }
    }
    // Whitespace after the object is fine; the object's end is what counts.
    assert_eq!(run("{\"a\":1}\n", keep).2, Ok(()));
    assert_eq!(
        run("{\"a\":1", keep).2,
        Err(BatchError::Truncated { at: 6 })
    );
}

fn syntax(at: u64, expected: &'static str) -> Result<(), BatchError> {
    Err(BatchError::Syntax { at, expected })
}

#[test]
fn refuses_broken_structure() {
    let cases: [(&str, Result<(), BatchError>); 14] = [
        (r#"{"requests":[}"#, syntax(13, "a value")),
        (r#"{"a":1]"#, syntax(6, "',' or '}'")),
        (r#"{"a":[1}"#, syntax(7, "',' or ']'")),
        (
            r#"{"a":1} x"#,
            syntax(8, "nothing after the top-level object"),
        ),
        (
            r#"{"a":1}{}"#,
            syntax(7, "nothing after the top-level object"),
        ),
        (r#"[{"a":1}]"#, syntax(0, "the body to be a JSON object")),
        (r#" "x""#, syntax(1, "the body to be a JSON object")),
        (r#"{"a":1,}"#, syntax(7, "a key")),
        (r#"{"a":[1,]}"#, syntax(8, "a value")),
        (r#"{"a" 1}"#, syntax(5, "':'")),
        (r#"{"a":}"#, syntax(5, "a value")),
        (r#"{,}"#, syntax(1, "a key")),
        (r#"{"a":1 "b":2}"#, syntax(7, "',' or '}'")),
        (r#"{"a":1"b"}"#, syntax(6, "',' or '}'")),
    ];
    for (body, expected) in cases {
        let (out, seen, result) = run(body, bang);
        assert_eq!(result, expected, "{body}");
        assert!(seen.is_empty());
        assert!(body.as_bytes().starts_with(&out), "{body}");
        assert!(result
            .unwrap_err()
            .to_string()
            .starts_with("invalid JSON at byte"));
    }
}

#[test]
fn caps_the_depth() {
    let nested = |n: usize| format!("{{\"a\":{}{}}}", "[".repeat(n), "]".repeat(n));
    assert_eq!(run(&nested(MAX_DEPTH - 1), keep).2, Ok(()));
    assert_eq!(
        run(&nested(MAX_DEPTH), keep).2,
        Err(BatchError::TooDeep {
            at: 5 + MAX_DEPTH as u64 - 1
        })
    );
    // Unclosed, fed forever: the error comes as soon as the cap is passed.
    let mut parser = BatchBody::new();
    let mut out = Vec::new();
    parser.feed(b"{\"a\":", &mut out, &mut keep).unwrap();
    let mut result = Ok(());
    for _ in 0..1000 {
        result = result.and_then(|()| parser.feed(b"[", &mut out, &mut keep));
    }
    assert!(matches!(result, Err(BatchError::TooDeep { .. })));
    assert!(parser.stack.len() <= MAX_DEPTH);
}

#[test]
fn caps_the_model() {
    let body = |model: &str| format!(r#"{{"requests":[{{"params":{{"model":"{model}"}}}}]}}"#);
    let longest = "x".repeat(MAX_MODEL);
    assert_eq!(run(&body(&longest), bang).1, [longest.as_str()]);
    let (_, seen, result) = run(&body(&(longest + "x")), bang);
    assert!(seen.is_empty());
    assert_eq!(result, Err(BatchError::ModelTooLong { request: 0 }));
    assert_eq!(
        result.unwrap_err().to_string(),
        "requests[0].params.model is longer than 1024 bytes"
    );
    // Escapes count as written.
    let escaped = r"\u0078".repeat(MAX_MODEL / 6 + 1);
    assert!(matches!(
        run(&body(&escaped), bang).2,
        Err(BatchError::ModelTooLong { .. })
    ));
}

#[test]
fn refuses_models_that_are_not_valid_strings() {
    let two = |model: &[u8]| {
        let mut body = br#"{"requests":[{"params":{"model":"ok"}},{"params":{"model":""#.to_vec();
        body.extend_from_slice(model);
        body.extend_from_slice(br#""}}]}"#);
        body
    };
    for model in [
        &br"\x"[..],
        br"\ud83d",
        br"\ud83dx",
        br"\ude00",
        br"\u12",
        b"a\x01b",
        b"\xff",
        b"\xc3",
    ] {
        let (_, seen, result) = run_cut(&two(model), &[], bang);
        assert_eq!(seen, ["ok"]);
        assert_eq!(result, Err(BatchError::BadModel { request: 1 }));
    }
}

#[test]
fn a_refusal_stops_the_body() {
    let refuse = |m: &str| match m {
        "haiku" => Err(format!("model {m} is not served here")),
        _ => Ok(None),
    };
    let (out, seen, result) = run(COMPACT, refuse);
    assert_eq!(seen, ["sonnet", "haiku"]);
    assert_eq!(
        result,
        Err(BatchError::Refused("model haiku is not served here".into()))
    );
    assert!(COMPACT.as_bytes().starts_with(&out));
    assert!(!string(out).contains("haiku"));
}

#[test]
fn holds_back_only_the_model() {
    let mut parser = BatchBody::new();
    let mut out = Vec::new();
    let head = br#"{"requests":[{"params":{"model":"son"#;
    parser.feed(head, &mut out, &mut bang).unwrap();
    assert_eq!(out, br#"{"requests":[{"params":{"model":"#);
    parser.feed(b"net", &mut out, &mut bang).unwrap();
    assert_eq!(out.len(), head.len() - 4);
    parser.feed(br#"","#, &mut out, &mut bang).unwrap();
    assert!(out.ends_with(br#""sonnet!","#));
    // Long keys and strings elsewhere pass through without being held.
    let long = "k".repeat(100_000);
    parser.feed(b"\"", &mut out, &mut bang).unwrap();
    let before = out.len();
    parser.feed(long.as_bytes(), &mut out, &mut bang).unwrap();
    assert_eq!(out.len(), before + long.len());
    parser.feed(br#"":"v"}}]}"#, &mut out, &mut bang).unwrap();
    parser.finish().unwrap();
}

// Random bodies: generated as serde_json values, written with random whitespace and escapes,
// fed in random pieces, and checked against serde_json.

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("model".to_string()),
        Just("params".to_string()),
        Just("requests".to_string()),
        Just("custom_id".to_string()),
        "[a-z_]{1,8}",
        "\\PC{0,4}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._@/ -]{0,20}",
        prop::collection::vec(any::<char>(), 0..12).prop_map(String::from_iter),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-10_000i32..10_000).prop_map(|x| Value::from(f64::from(x) / 8.0)),
        text().prop_map(Value::String),
    ]
}

fn decoy() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn object(decoys: Value) -> Map<String, Value> {
    match decoys {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn request() -> impl Strategy<Value = Value> {
    let params = prop_oneof![
        4 => (text(), decoy(), decoy()).prop_map(|(model, messages, extra)| {
            let mut p = object(extra);
            p.insert("model".into(), Value::String(model));
            p.insert("messages".into(), messages);
            Value::Object(p)
        }),
        1 => (decoy(), decoy()).prop_map(|(model, extra)| {
            let mut p = object(extra);
            p.insert("model".into(), model);
            Value::Object(p)
        }),
        1 => decoy(),
    ];
    prop_oneof![
        8 => (text(), params, decoy()).prop_map(|(id, params, extra)| {
            let mut r = object(extra);
            r.insert("custom_id".into(), Value::String(id));
            r.insert("params".into(), params);
            Value::Object(r)
        }),
        1 => decoy(),
    ]
}

fn batch() -> impl Strategy<Value = Value> {
    let requests = prop_oneof![
        8 => prop::collection::vec(request(), 0..6).prop_map(Value::Array),
        1 => decoy(),
    ];
    (requests, decoy()).prop_map(|(requests, extra)| {
        let mut top = object(extra);
        top.insert("requests".into(), requests);
        Value::Object(top)
    })
}

/// Writes `v` as JSON with random whitespace, and random `\u` escapes in strings and keys.
fn write(v: &Value, rng: &mut fastrand::Rng, out: &mut String) {
    space(rng, out);
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, rng, out);
            }
            space(rng, out);
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                space(rng, out);
                write_str(k, rng, out);
                space(rng, out);
                out.push(':');
                write(item, rng, out);
            }
            space(rng, out);
            out.push('}');
        }
        Value::String(s) => write_str(s, rng, out),
        scalar => out.push_str(&scalar.to_string()),
    }
    space(rng, out);
}

fn space(rng: &mut fastrand::Rng, out: &mut String) {
    if rng.u8(..) < 80 {
        for _ in 0..rng.usize(1..4) {
            out.push([' ', '\t', '\n', '\r'][rng.usize(..4)]);
        }
    }
}

fn write_str(s: &str, rng: &mut fastrand::Rng, out: &mut String) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if rng.bool() => out.push_str("\\/"),
            c if c < ' ' || rng.u8(..) < 40 => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    match rng.bool() {
                        true => write!(out, "\\u{unit:04x}").unwrap(),
                        false => write!(out, "\\u{unit:04X}").unwrap(),
                    }
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The rename of the property tests: models of even length get a suffix that needs escapes.
fn suffix(m: &str) -> Result<Option<String>, String> {
    Ok((m.len() % 2 == 0).then(|| format!("{m}\"→\\\u{7}")))
}

/// What serde_json says: the request models in order, and `v` with `rename` applied to them.
fn oracle(mut v: Value) -> (Vec<String>, Value) {
    let mut models = Vec::new();
    if let Some(Value::Array(requests)) = v.get_mut("requests") {
        for request in requests {
            if let Some(Value::String(model)) = request.pointer_mut("/params/model") {
                models.push(model.clone());
                if let Some(new) = suffix(model).unwrap() {
                    *model = new;
                }
            }
        }
    }
    (models, v)
}

fn cuts(len: usize, picks: &[prop::sample::Index]) -> Vec<usize> {
    let mut cuts: Vec<usize> = picks.iter().map(|p| p.index(len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn agrees_with_serde_json(
        v in batch(),
        seed in any::<u64>(),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut body = String::new();
        write(&v, &mut fastrand::Rng::with_seed(seed), &mut body);
        let parsed: Value = serde_json::from_str(&body).unwrap();
        prop_assert_eq!(&parsed, &v);
        let cuts = cuts(body.len(), &picks);
        let (models, expected) = oracle(v);

        let (out, seen, result) = run_cut(body.as_bytes(), &cuts, suffix);
        prop_assert_eq!(result, Ok(()));
        prop_assert_eq!(&seen, &models);
        let renamed: Value = serde_json::from_slice(&out).unwrap();
        prop_assert_eq!(renamed, expected);

        let (out, seen, result) = run_cut(body.as_bytes(), &cuts, keep);
        prop_assert_eq!(result, Ok(()));
        prop_assert_eq!(&seen, &models);
        prop_assert_eq!(String::from_utf8(out).unwrap(), body);
    }

    #[test]
    fn survives_broken_bodies(
        v in batch(),
        seed in any::<u64>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut body = String::new();
        write(&v, &mut fastrand::Rng::with_seed(seed), &mut body);
        let mut body = body.into_bytes();
        for (at, byte, how) in edits {
            let at = at.index(body.len() + 1);
            match how {
                0 => body.insert(at, byte),
                1 if at < body.len() => { body.remove(at); }
                _ => body.truncate(at),
            }
        }
        let cuts = cuts(body.len(), &picks);
        // Never a panic; kept models leave the output a prefix of the input, whatever happens.
        let (out, _, _) = run_cut(&body, &cuts, keep);
        prop_assert!(body.starts_with(&out));
        let _ = run_cut(&body, &cuts, suffix);
    }

    #[test]
    fn survives_any_bytes(
        body in prop::collection::vec(any::<u8>(), 0..256),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let cuts = cuts(body.len(), &picks);
        let (out, _, _) = run_cut(&body, &cuts, keep);
        prop_assert!(body.starts_with(&out));
    }
}
