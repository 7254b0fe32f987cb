//! Unit tests of [`Pool::succeeding`]: what a reloaded pool keeps of its predecessor's health.

use super::*;
use crate::routing::health::Outcome;

fn config(toml: &str) -> Config {
    Config::parse(toml, "test.toml", &|_| None).expect("valid config")
}

fn index(p: &Pool, upstream: &str, name: &str) -> usize {
    (0..p.credentials.len())
        .find(|&i| {
            p.credential(i).name == name && p.upstream_name(p.credential(i).upstream) == upstream
        })
        .unwrap()
}

fn upstream(name: &str, base: &str, creds: &[(&str, &str)]) -> String {
    let mut s =
        format!("[[upstreams]]\nname = \"{name}\"\nkind = \"anthropic\"\nbase_url = \"{base}\"\n");
    for (c, key) in creds {
        s += &format!("[[upstreams.credentials]]\nname = \"{c}\"\napi_key = \"{key}\"\n");
    }
    s
}

const MODEL: Ask<'static> = Ask {
    model: Some("claude-sonnet-4-5"),
    affinity: None,
    tried: &[],
    only: None,
};

fn cooling(p: &Pool, upstream: &str, name: &str) -> bool {
    let s = p.snapshot();
    let c = s
        .iter()
        .find(|c| c.upstream == upstream && c.credential == name)
        .unwrap();
    c.models.iter().any(|m| m.cooling) || c.disabled_until_unix_ms.is_some()
}

#[test]
fn a_cooling_credential_is_still_cooling_in_the_next_pool() {
    let before = config(&upstream(
        "main",
        "http://127.0.0.1:9",
        &[("a", "ka"), ("b", "kb")],
    ));
    let old = Pool::new(&before);
    let now = old.now_ms();
    let a = index(&old, "main", "a");
    old.report(
        a,
        MODEL.model,
        Outcome::RateLimited {
            retry_after_ms: Some(60_000),
        },
        now,
    );
    assert!(cooling(&old, "main", "a"));

    // Reordered, one credential added, another upstream added in front.
    let after = config(&format!(
        "{}{}",
        upstream("other", "http://127.0.0.1:10", &[("a", "ka")]),
        upstream(
            "main",
            "http://127.0.0.1:9",
            &[("c", "kc"), ("b", "kb"), ("a", "ka")]
        )
    ));
    let new = Pool::succeeding(&after, &old);
    assert!(cooling(&new, "main", "a"));
    assert!(!cooling(&new, "other", "a"), "same name, another upstream");
    assert!(!cooling(&new, "main", "b") && !cooling(&new, "main", "c"));
    // Picking honours it: main/a is never chosen while it cools.
    for _ in 0..10 {
        match new.pick(&MODEL, new.now_ms()) {
            Pick::Use { credential, .. } => assert_ne!(credential, index(&new, "main", "a")),
            other => panic!("{other:?}"),
        }
    }
    // And the deadline is the same instant, not restarted by the reload.
    let deadline = |p: &Pool| {
        let s = p.snapshot();
        let c = s
            .iter()
            .find(|c| c.upstream == "main" && c.credential == "a")
            .unwrap();
        c.models[0].cooling_until_unix_ms
    };
    assert_eq!(deadline(&old), deadline(&new));
}

#[test]
fn what_the_old_pool_learns_after_the_reload_reaches_the_new_one() {
    let c = config(&upstream("main", "http://127.0.0.1:9", &[("a", "ka")]));
    let old = Pool::new(&c);
    let new = Pool::succeeding(&c, &old);
    // A request that started before the reload reports to the pool it started with.
    old.report(0, MODEL.model, Outcome::AuthFailed, old.now_ms());
    assert!(cooling(&new, "main", "a"));
    assert!(matches!(
        new.pick(&MODEL, new.now_ms()),
        Pick::Unavailable(_)
    ));
}

#[test]
fn a_replaced_key_and_a_moved_upstream_start_afresh() {
    let before = config(&upstream("main", "http://127.0.0.1:9", &[("a", "ka")]));
    let old = Pool::new(&before);
    old.report(0, MODEL.model, Outcome::AuthFailed, old.now_ms());
    old.report(0, MODEL.model, Outcome::Unreachable, old.now_ms());
    let unreachable = |p: &Pool| p.snapshot()[0].upstream_unreachable_until_unix_ms.is_some();
    assert!(cooling(&old, "main", "a") && unreachable(&old));

    let rotated = config(&upstream("main", "http://127.0.0.1:9", &[("a", "ka-new")]));
    let new = Pool::succeeding(&rotated, &old);
    assert!(!cooling(&new, "main", "a"), "a new key gets its chance");
    assert!(unreachable(&new), "the same address is still down");

    let moved = config(&upstream("main", "http://127.0.0.1:10", &[("a", "ka")]));
    let new = Pool::succeeding(&moved, &old);
    assert!(cooling(&new, "main", "a"), "the key is the same");
    assert!(!unreachable(&new), "a new address is not known to be down");
}

#[test]
fn model_names_stay_readable_in_the_snapshot() {
    let c = config(&upstream("main", "http://127.0.0.1:9", &[("a", "ka")]));
    let old = Pool::new(&c);
    old.report(0, MODEL.model, Outcome::Transient, old.now_ms());
    let new = Pool::succeeding(&c, &old);
    assert_eq!(new.snapshot()[0].models[0].model, "claude-sonnet-4-5");
}
