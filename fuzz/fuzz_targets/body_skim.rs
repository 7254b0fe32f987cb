//! The request body skim (`json::skim::skim`), which reads a Messages request's `model`,
//! `stream` and `metadata.user_id` without parsing the body.
//! Asserts: never panics; on a body serde_json reads as an object whose top level has no
//! duplicated `model` or `stream` key, the skim succeeds and agrees with serde_json: `model`
//! is the top-level string (decoded), `stream` the top-level boolean, `user_id` the last
//! `metadata` object's string `user_id`; a duplicated `model` or `stream` is refused.
#![no_main]

use std::fmt;

use libfuzzer_sys::fuzz_target;
use ringgate::json::skim::{skim, unescape};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// A JSON object's top-level members in order, duplicates kept.
struct Members(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Members, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut out = Vec::new();
                while let Some(kv) = map.next_entry::<String, Value>()? {
                    out.push(kv);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

fuzz_target!(|data: &[u8]| {
    let got = skim(data);
    assert_eq!(got, skim(data));
    let Ok(Members(members)) = serde_json::from_slice::<Members>(data) else {
        return;
    };
    let count = |k: &str| members.iter().filter(|(n, _)| n == k).count();
    let last = |k: &str| members.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v);
    if count("model") > 1 || count("stream") > 1 {
        assert!(got.is_err(), "a duplicated model or stream was accepted");
        return;
    }
    let s = got.unwrap_or_else(|e| panic!("serde_json reads the object but the skim says {e:?}"));
    let model = s.model(data).map(|m| m.into_owned());
    assert_eq!(model.as_deref(), last("model").and_then(Value::as_str));
    assert_eq!(s.stream, last("stream").and_then(Value::as_bool));
    let user_id = s
        .user_id(data)
        .map(|raw| unescape(raw).expect("user_id escapes").into_owned());
    let want = last("metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str);
    assert_eq!(user_id.as_deref(), want);
});
