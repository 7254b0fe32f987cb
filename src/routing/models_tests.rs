//! Unit tests of model patterns and the model catalog.

use super::*;
use proptest::prelude::*;

/// The obvious recursive definition, to check the linear matcher against.
fn reference(p: &[u8], m: &[u8]) -> bool {
    match p.split_first() {
        None => m.is_empty(),
        Some((b'*', rest)) => (0..=m.len()).any(|k| reference(rest, &m[k..])),
        Some((c, rest)) => m.first() == Some(c) && reference(rest, &m[1..]),
    }
}

#[test]
fn stars_match_any_run_and_the_rest_matches_itself() {
    let yes = [
        ("*", ""),
        ("*", "claude-sonnet-4-5"),
        ("claude-*", "claude-sonnet-4-5"),
        ("claude-*-4-5", "claude-sonnet-4-5"),
        ("*haiku*", "claude-haiku-4-5"),
        ("a*b*c", "abxbc"),
        ("a*b", "ab"),
        ("**", "x"),
        ("", ""),
        ("exact", "exact"),
    ];
    for (p, m) in yes {
        assert!(matches(p, m), "{p:?} should match {m:?}");
    }
    let no = [
        ("", "x"),
        ("a*b", "a"),
        ("a*b", "abc"),
        ("claude-*", "Claude-x"),
        ("longer-than", "long"),
        ("x*", ""),
        ("*-4-5", "claude-sonnet-4-6"),
    ];
    for (p, m) in no {
        assert!(!matches(p, m), "{p:?} should not match {m:?}");
    }
    assert!(is_literal("claude-sonnet-4-5") && !is_literal("claude-*"));
}

proptest! {
    #[test]
    fn agrees_with_the_recursive_definition(p in "[ab*]{0,8}", m in "[ab]{0,10}") {
        prop_assert_eq!(matches(&p, &m), reference(p.as_bytes(), m.as_bytes()));
    }
}

fn catalog(toml: &str) -> Option<Catalog> {
    let config = crate::config::Config::parse(toml, "test.toml", &|_| None).unwrap();
    Catalog::new(&config, "2026-01-01T00:00:00Z")
}

const NAMED: &str = r#"
[[upstreams]]
name = "m"
kind = "mock"
models = ["claude-sonnet-4-5", "claude-haiku-*", "claude-opus-4-1"]
[[upstreams]]
name = "n"
kind = "mock"
models = ["claude-opus-4-1", "odd\"id"]
[models.aliases]
sonnet = "claude-sonnet-4-5"
fast = "claude-haiku-4-5"
"#;

fn ids(page: &str) -> Vec<String> {
    let mut bytes = page.as_bytes().to_vec();
    let v: simd_json::OwnedValue = simd_json::to_owned_value(&mut bytes).unwrap();
    use simd_json::prelude::*;
    let data = v.get("data").and_then(|d| d.as_array()).unwrap();
    data.iter()
        .map(|m| m.get("id").and_then(|i| i.as_str()).unwrap().to_string())
        .collect()
}

#[test]
fn nothing_named_means_no_catalog() {
    let star_only = "[[upstreams]]\nname = \"m\"\nkind = \"mock\"\n";
    assert!(catalog(star_only).is_none());
    // An alias alone names a model clients may ask for, so it must be listed.
    let c = catalog(&format!(
        "{star_only}[models.aliases]\nsonnet = \"claude-sonnet-4-5\"\n"
    ));
    assert_eq!(ids(&c.unwrap().list("").unwrap()), ["sonnet"]);
}

#[test]
fn lists_literal_ids_then_aliases_once_each_in_the_apis_shape() {
    let c = catalog(NAMED).unwrap();
    let all = c.list("").unwrap();
    assert_eq!(
        ids(&all),
        [
            "claude-sonnet-4-5",
            "claude-opus-4-1",
            "odd\"id",
            "fast",
            "sonnet"
        ]
    );
    assert!(all.starts_with(
        r#"{"data":[{"type":"model","id":"claude-sonnet-4-5","display_name":"claude-sonnet-4-5","created_at":"2026-01-01T00:00:00Z"},"#
    ));
    assert!(all.contains(r#""id":"odd\"id""#));
    assert!(all.contains(r#""display_name":"fast (alias of claude-haiku-4-5)""#));
    assert!(
        all.ends_with(r#"],"has_more":false,"first_id":"claude-sonnet-4-5","last_id":"sonnet"}"#)
    );
    assert_eq!(
        c.get("sonnet").unwrap(),
        r#"{"type":"model","id":"sonnet","display_name":"sonnet (alias of claude-sonnet-4-5)","created_at":"2026-01-01T00:00:00Z"}"#
    );
    assert_eq!(c.get("claude-haiku-*"), None);
    assert_eq!(c.get("nope"), None);
}

#[test]
fn pages_forwards_and_backwards() {
    let c = catalog(NAMED).unwrap();
    let p = c.list("limit=2").unwrap();
    assert_eq!(ids(&p), ["claude-sonnet-4-5", "claude-opus-4-1"]);
    assert!(
        p.contains(r#""has_more":true,"first_id":"claude-sonnet-4-5","last_id":"claude-opus-4-1""#)
    );
    let p = c
        .list("limit=2&after_id=claude-opus-4-1&beta=true")
        .unwrap();
    assert_eq!(ids(&p), ["odd\"id", "fast"]);
    assert!(p.contains(r#""has_more":true"#));
    let p = c.list("after_id=fast").unwrap();
    assert_eq!(ids(&p), ["sonnet"]);
    assert!(p.contains(r#""has_more":false"#));
    let p = c.list("limit=2&before_id=fast").unwrap();
    assert_eq!(ids(&p), ["claude-opus-4-1", "odd\"id"]);
    assert!(p.contains(r#""has_more":true"#));
    let p = c.list("before_id=claude-opus-4-1").unwrap();
    assert_eq!(ids(&p), ["claude-sonnet-4-5"]);
    assert!(p.contains(r#""has_more":false"#));
    let p = c.list("after_id=odd%22id").unwrap();
    assert_eq!(ids(&p), ["fast", "sonnet"], "cursor percent-decoded");
    let c2 = catalog("[[upstreams]]\nname = \"m\"\nkind = \"mock\"\nmodels = [\"a:1\", \"b\"]\n");
    assert_eq!(ids(&c2.unwrap().list("after_id=a%3A1").unwrap()), ["b"]);
    let p = c.list("after_id=unknown").unwrap();
    assert_eq!(
        p,
        r#"{"data":[],"has_more":false,"first_id":null,"last_id":null}"#
    );
}

#[test]
fn bad_queries_are_invalid_requests() {
    let c = catalog(NAMED).unwrap();
    for q in [
        "limit=0",
        "limit=1001",
        "limit=x",
        "limit=",
        "after_id=a&before_id=b",
    ] {
        let e = c.list(q).unwrap_err();
        assert_eq!(e.status, 400, "{q}");
        assert!(e.body("r").contains("\"invalid_request_error\""), "{q}");
    }
    assert_eq!(percent_decode("a%2Fb%zz+%4"), "a/b%zz+%4");
}
