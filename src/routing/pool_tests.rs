//! Unit tests of the credential pool: selection, tiers, model groups, cooldowns and the
//! all-cooling answers, with a hand-driven clock.

use super::*;
use crate::routing::health::Outcome::*;

fn pool(toml: &str) -> Pool {
    Pool::new(&Config::parse(toml, "test.toml", &|_| None).expect("valid config"))
}

/// Credential names of `n` picks at `now`, each reported as a success.
fn picks(p: &Pool, ask: &Ask<'_>, now: u64, n: usize) -> Vec<String> {
    (0..n).map(|_| name(p, p.pick(ask, now))).collect()
}

fn name(p: &Pool, pick: Pick) -> String {
    match pick {
        Pick::Use { credential, .. } => p.credential(credential).name.clone(),
        other => panic!("no credential: {other:?}"),
    }
}

fn index(p: &Pool, name: &str) -> usize {
    (0..p.credentials.len())
        .find(|&i| p.credential(i).name == name)
        .unwrap()
}

const MODEL: Ask<'static> = Ask {
    model: Some("claude-sonnet-4-5"),
    affinity: None,
    tried: &[],
    only: None,
};

fn limited(ms: u64) -> Outcome {
    RateLimited {
        retry_after_ms: Some(ms),
    }
}

const TWO: &str = r#"
[[upstreams]]
name = "main"
kind = "anthropic"
base_url = "http://127.0.0.1:9"
[[upstreams.credentials]]
name = "a"
api_key = "ka"
weight = 3
[[upstreams.credentials]]
name = "b"
api_key = "kb"
"#;

#[test]
fn round_robin_follows_weights_smoothly() {
    let p = pool(TWO);
    let got = picks(&p, &MODEL, 0, 8);
    assert_eq!(got, ["a", "a", "b", "a", "a", "a", "b", "a"]);
    let got = picks(&p, &MODEL, 0, 400);
    assert_eq!(got.iter().filter(|n| *n == "a").count(), 300);
}

#[test]
fn keys_travel_with_credentials_and_the_mock_gets_one_without() {
    let p = pool(TWO);
    let key = |c: &Credential| match &c.auth {
        crate::credentials::Auth::Key(k) => Some(k.clone()),
        _ => None,
    };
    assert_eq!(key(p.credential(index(&p, "b"))).as_deref(), Some("kb"));
    let m = pool("[[upstreams]]\nname = \"demo\"\nkind = \"mock\"\n");
    assert_eq!(m.credential(0).name, KEYLESS);
    assert!(matches!(
        m.credential(0).auth,
        crate::credentials::Auth::None
    ));
    assert_eq!(m.upstream_name(0), "demo");
}

#[test]
fn tried_credentials_are_skipped_and_then_nothing_is_left() {
    let p = pool(TWO);
    let a = index(&p, "a");
    let b = index(&p, "b");
    let ask = Ask {
        tried: &[a],
        only: None,
        ..MODEL
    };
    assert_eq!(picks(&p, &ask, 0, 3), ["b", "b", "b"]);
    let ask = Ask {
        tried: &[a, b],
        only: None,
        ..MODEL
    };
    let Pick::Unavailable(u) = p.pick(&ask, 0) else {
        panic!("picked a tried credential")
    };
    assert_eq!((u.tried, u.retry_after_ms), (2, None));
}

#[test]
fn tried_credentials_count_by_their_cooldown_but_are_never_failed_open_to() {
    let p = pool(TWO);
    let (a, b) = (index(&p, "a"), index(&p, "b"));
    p.report(a, MODEL.model, limited(20_000), 0);
    p.report(b, MODEL.model, AuthFailed, 0);
    let ask = Ask {
        tried: &[a, b],
        only: None,
        ..MODEL
    };
    let Pick::Unavailable(u) = p.pick(&ask, 100) else {
        panic!("nothing is left")
    };
    assert_eq!(
        (u.rate_limited, u.disabled, u.retry_after_ms),
        (1, 1, Some(19_900))
    );
    assert!(u.all_limited());
    // Failing open skips what this request tried, even when that failed longest ago.
    let p = pool(TWO);
    p.report(a, MODEL.model, Transient, 0);
    p.report(b, MODEL.model, Transient, 10);
    let ask = Ask {
        tried: &[a],
        only: None,
        ..MODEL
    };
    let pick = p.pick(&ask, 20);
    assert!(matches!(pick, Pick::Use { credential, fail_open: true, .. } if credential == b));
    let ask = Ask {
        tried: &[a, b],
        only: None,
        ..MODEL
    };
    let Pick::Unavailable(u) = p.pick(&ask, 20) else {
        panic!("both tried")
    };
    assert_eq!((u.transient, u.all_limited()), (2, false));
}

#[test]
fn a_rate_limited_credential_cools_then_one_probe_restores_it() {
    let p = pool(TWO);
    let a = index(&p, "a");
    assert_eq!(p.report(a, MODEL.model, limited(5_000), 100), Some(5_000));
    let again = p.report(a, MODEL.model, limited(5_000), 200);
    assert_eq!(again, None, "already cooling");
    assert_eq!(picks(&p, &MODEL, 1_000, 4), ["b", "b", "b", "b"]);
    // The cooldown is over at 5_200: one request probes, the others wait for its answer.
    let probe = (0..4).map(|_| p.pick(&MODEL, 5_200)).collect::<Vec<_>>();
    let probes: Vec<_> = probe
        .iter()
        .filter(|x| matches!(x, Pick::Use { probe: true, .. }))
        .collect();
    assert_eq!(probes.len(), 1, "{probe:?}");
    assert_eq!(name(&p, probes[0].clone()), "a");
    assert_eq!(p.report(a, MODEL.model, Success, 5_300), None);
    let got = picks(&p, &MODEL, 5_300, 8);
    assert_eq!(
        got.iter().filter(|n| *n == "a").count(),
        6,
        "full weight: {got:?}"
    );
}

#[test]
fn one_models_rate_limit_leaves_the_others_alone() {
    let p = pool(TWO);
    let a = index(&p, "a");
    p.report(a, Some("claude-opus-4-1"), limited(60_000), 0);
    let other = Ask {
        model: Some("claude-opus-4-1"),
        ..MODEL
    };
    assert_eq!(picks(&p, &other, 10, 3), ["b", "b", "b"]);
    assert!(picks(&p, &MODEL, 10, 4).contains(&"a".to_string()));
}

#[test]
fn all_rate_limited_or_disabled_answers_with_the_soonest_recovery() {
    let p = pool(TWO);
    let (a, b) = (index(&p, "a"), index(&p, "b"));
    p.report(a, MODEL.model, limited(30_000), 1_000);
    p.report(b, MODEL.model, AuthFailed, 2_000);
    let Pick::Unavailable(u) = p.pick(&MODEL, 11_000) else {
        panic!("nothing should be available")
    };
    assert_eq!(
        u,
        Unavailable {
            rate_limited: 1,
            disabled: 1,
            transient: 0,
            tried: 0,
            retry_after_ms: Some(20_000),
        }
    );
}

#[test]
fn all_cooling_with_a_transient_one_fails_open_to_the_oldest_failure() {
    let p = pool(TWO);
    let (a, b) = (index(&p, "a"), index(&p, "b"));
    p.report(b, MODEL.model, Transient, 1_000);
    p.report(a, MODEL.model, Transient, 2_000);
    let pick = p.pick(&MODEL, 3_000);
    assert_eq!(
        pick,
        Pick::Use {
            credential: b,
            probe: false,
            fail_open: true
        }
    );
    // Failing open never reaches a credential cooling for a rate limit or auth.
    p.report(b, MODEL.model, limited(60_000), 3_000);
    let pick = p.pick(&MODEL, 3_100);
    assert!(matches!(pick, Pick::Use { credential, fail_open: true, .. } if credential == a));
    p.report(a, MODEL.model, AuthFailed, 3_200);
    assert!(matches!(p.pick(&MODEL, 3_300), Pick::Unavailable(_)));
}

const TIERS: &str = r#"
[[upstreams]]
name = "backup"
kind = "anthropic"
base_url = "http://127.0.0.1:9"
priority = 0
[[upstreams.credentials]]
name = "spare"
api_key = "ks"

[[upstreams]]
name = "primary"
kind = "anthropic"
base_url = "http://127.0.0.1:9"
priority = 10
models = ["claude-sonnet-*"]
[[upstreams.credentials]]
name = "p1"
api_key = "k1"
[[upstreams.credentials]]
name = "p2"
api_key = "k2"

[[upstreams]]
name = "haiku-only"
kind = "anthropic"
base_url = "http://127.0.0.1:9"
priority = 10
models = ["claude-haiku-4-5"]
[[upstreams.credentials]]
name = "h"
api_key = "kh"
"#;

#[test]
fn the_highest_tier_serving_the_model_is_used_until_it_has_nothing_available() {
    let p = pool(TIERS);
    assert_eq!(picks(&p, &MODEL, 0, 4), ["p1", "p2", "p1", "p2"]);
    p.report(index(&p, "p1"), MODEL.model, limited(1_000), 0);
    p.report(index(&p, "p2"), MODEL.model, AuthFailed, 0);
    assert_eq!(picks(&p, &MODEL, 10, 2), ["spare", "spare"]);
    let haiku = Ask {
        model: Some("claude-haiku-4-5"),
        ..MODEL
    };
    assert_eq!(picks(&p, &haiku, 10, 2), ["h", "h"]);
    let opus = Ask {
        model: Some("claude-opus-4-1"),
        ..MODEL
    };
    assert_eq!(picks(&p, &opus, 10, 2), ["spare", "spare"]);
}

#[test]
fn a_group_is_fair_among_its_own_members_whatever_else_the_tier_holds() {
    let toml = TIERS.replace("models = [\"claude-haiku-4-5\"]", "models = [\"claude-*\"]");
    let p = pool(&toml);
    let sonnet = picks(&p, &MODEL, 0, 6);
    assert_eq!(sonnet, ["p1", "p2", "h", "p1", "p2", "h"]);
    let haiku = Ask {
        model: Some("claude-haiku-4-5"),
        ..MODEL
    };
    assert_eq!(picks(&p, &haiku, 0, 3), ["h", "h", "h"]);
}

#[test]
fn a_model_no_upstream_serves_is_not_served() {
    let p = pool(&TIERS.replace("priority = 0\n", "priority = 0\nmodels = [\"x\"]\n"));
    let other = Ask {
        model: Some("gpt-4"),
        ..MODEL
    };
    assert_eq!(p.pick(&other, 0), Pick::NotServed);
    assert!(!p.serves("gpt-4"));
    assert!(p.serves("claude-sonnet-4-5"));
    let any = Ask {
        model: None,
        ..MODEL
    };
    assert!(
        matches!(p.pick(&any, 0), Pick::Use { .. }),
        "no model: any upstream"
    );
}

#[test]
fn fill_first_uses_the_first_available_in_order() {
    let p = pool(&format!("[routing]\nstrategy = \"fill-first\"\n{TWO}"));
    assert_eq!(picks(&p, &MODEL, 0, 3), ["a", "a", "a"]);
    p.report(index(&p, "a"), MODEL.model, Transient, 0);
    assert_eq!(picks(&p, &MODEL, 1, 2), ["b", "b"]);
}

#[test]
fn affinity_keeps_a_conversation_on_its_credential_while_it_is_healthy() {
    let p = pool(&format!("[routing]\nsession_affinity = true\n{TWO}"));
    let sessions: Vec<Ask> = (0..64u64)
        .map(|k| Ask {
            affinity: Some(k.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            ..MODEL
        })
        .collect();
    let first: Vec<String> = sessions.iter().map(|s| name(&p, p.pick(s, 0))).collect();
    assert!(first.contains(&"a".into()) && first.contains(&"b".into()));
    for (s, f) in sessions.iter().zip(&first) {
        assert_eq!(&picks(&p, s, 0, 3), &[f.clone(), f.clone(), f.clone()]);
    }
    // a cools: its conversations move to b, b's stay; after a's probe succeeds they come back.
    let a = index(&p, "a");
    p.report(a, MODEL.model, limited(1_000), 0);
    for s in &sessions {
        assert_eq!(name(&p, p.pick(s, 10)), "b");
    }
    let back = sessions
        .iter()
        .position(|s| name(&p, p.pick(s, 1_000)) == "a");
    assert!(back.is_some(), "a probe after the cooldown");
    p.report(a, MODEL.model, Success, 1_001);
    let again: Vec<String> = sessions
        .iter()
        .map(|s| name(&p, p.pick(s, 1_002)))
        .collect();
    assert_eq!(again, first);
    // Without the setting, the key is ignored.
    let plain = pool(TWO);
    let got: Vec<String> = (0..4)
        .map(|_| name(&plain, plain.pick(&sessions[0], 0)))
        .collect();
    assert_eq!(got, ["a", "a", "b", "a"]);
}

#[test]
fn snapshot_names_models_and_reset_clears_them() {
    let p = pool(TWO);
    let a = index(&p, "a");
    p.report(a, MODEL.model, limited(60_000), p.now_ms());
    p.report(index(&p, "b"), None, AuthFailed, p.now_ms());
    let s = p.snapshot();
    assert_eq!(
        (s[0].upstream.as_str(), s[0].credential.as_str()),
        ("main", "a")
    );
    assert_eq!(s[0].disabled_until_unix_ms, None);
    let m = &s[0].models[0];
    assert_eq!(m.model, "claude-sonnet-4-5");
    assert!(m.cooling && m.reason == Some(Reason::RateLimit) && m.consecutive_rate_limits == 1);
    assert!(s[1].disabled_until_unix_ms.is_some());
    assert!(p.reset("main", "a"));
    assert!(!p.reset("main", "nope"));
    let s = p.snapshot();
    assert!(!s[0].models[0].cooling && s[0].models[0].reason.is_none());
    assert!(matches!(p.pick(&MODEL, p.now_ms()), Pick::Use { .. }));
}

/// The issue's acceptance scenario at the pool level: `a` always rate-limited for 1 s, `b`
/// healthy; 100 requests 25 ms apart, each retried on `b`. `a` is asked once per window.
#[test]
fn always_limited_credential_is_tried_once_per_cooldown_window() {
    let p = pool(&TWO.replace("weight = 3", "weight = 1"));
    let (a, b) = (index(&p, "a"), index(&p, "b"));
    let mut a_times = Vec::new();
    for i in 0..100u64 {
        let now = i * 25;
        let mut tried = Vec::new();
        loop {
            let ask = Ask {
                tried: &tried,
                only: None,
                ..MODEL
            };
            let Pick::Use { credential, .. } = p.pick(&ask, now) else {
                panic!("request {i} found nothing")
            };
            tried.push(credential);
            if credential == a {
                a_times.push(now);
                p.report(a, MODEL.model, limited(1_000), now);
                continue;
            }
            assert_eq!(credential, b);
            p.report(b, MODEL.model, Success, now);
            break;
        }
    }
    // The first request after each window that lands on `a` probes it.
    assert_eq!(a_times.len(), 3, "{a_times:?}");
    for w in a_times.windows(2) {
        assert!((1_000..1_050).contains(&(w[1] - w[0])), "{a_times:?}");
    }
}

/// The cursor is one for all cores: two threads picking at once get the two positions.
#[test]
fn concurrent_picks_share_one_cursor() {
    for _ in 0..20 {
        let p = std::sync::Arc::new(pool(&TWO.replace("weight = 3", "weight = 1")));
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (p, barrier) = (p.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    name(&p, p.pick(&MODEL, 0))
                })
            })
            .collect();
        let mut got: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        got.sort();
        assert_eq!(got, ["a", "b"]);
    }
}

const TWO_UPSTREAMS: &str = r#"
[[upstreams]]
name = "near"
kind = "anthropic"
base_url = "http://127.0.0.1:9"
priority = 1
[[upstreams.credentials]]
name = "n1"
api_key = "k1"
[[upstreams.credentials]]
name = "n2"
api_key = "k2"
[[upstreams]]
name = "far"
kind = "anthropic"
base_url = "http://127.0.0.1:10"
[[upstreams.credentials]]
name = "f"
api_key = "kf"
"#;

#[test]
fn an_unreachable_upstream_is_avoided_with_all_its_credentials_and_its_keys_are_not_blamed() {
    let p = pool(TWO_UPSTREAMS);
    let (n1, n2) = (index(&p, "n1"), index(&p, "n2"));
    let cooldown = HealthPolicy::default().transient_cooldown_ms;
    assert_eq!(p.report(n1, MODEL.model, Unreachable, 0), Some(cooldown));
    // Neither of the upstream's credentials is picked while it cools: the other upstream serves.
    assert_eq!(picks(&p, &MODEL, 1, 4), ["f", "f", "f", "f"]);
    // Another model's requests avoid it too: the fault is the upstream's, not a model's.
    let other = Ask {
        model: Some("claude-haiku-4-5"),
        ..MODEL
    };
    assert_eq!(name(&p, p.pick(&other, 1)), "f");
    let s = p.snapshot();
    let n2_status = s.iter().find(|c| c.credential == "n2").unwrap();
    assert_eq!(
        n2_status.upstream_unreachable_until_unix_ms,
        Some(p.epoch_unix_ms + cooldown)
    );
    assert!(
        s.iter().all(|c| c.models.is_empty()),
        "no credential blamed"
    );
    // After the cooldown one request probes the upstream; an answer restores it.
    let probe = p.pick(&MODEL, cooldown);
    assert!(matches!(probe, Pick::Use { probe: true, .. }), "{probe:?}");
    assert_eq!(
        name(&p, p.pick(&MODEL, cooldown)),
        "f",
        "one probe at a time"
    );
    let Pick::Use { credential, .. } = probe else {
        unreachable!()
    };
    assert!([n1, n2].contains(&credential));
    p.report(credential, MODEL.model, Success, cooldown + 1);
    let got = picks(&p, &MODEL, cooldown + 2, 4);
    assert!(got.iter().all(|n| n == "n1" || n == "n2"), "{got:?}");
}

#[test]
fn a_lone_unreachable_upstream_is_still_tried_when_nothing_else_serves() {
    let p = pool(TWO);
    let a = index(&p, "a");
    p.report(a, MODEL.model, Unreachable, 0);
    let pick = p.pick(&MODEL, 1);
    assert!(
        matches!(
            pick,
            Pick::Use {
                fail_open: true,
                ..
            }
        ),
        "failing open beats refusing everyone: {pick:?}"
    );
    // Within one request, a credential already tried is not tried again, and the answer is not
    // a 429: an outage is not a rate limit.
    let b = index(&p, "b");
    let ask = Ask {
        tried: &[a, b],
        only: None,
        ..MODEL
    };
    match p.pick(&ask, 1) {
        Pick::Unavailable(u) => assert!(!u.all_limited() && u.transient == 2, "{u:?}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_credential_probe_refused_by_its_upstreams_probe_is_given_back() {
    let p = pool(TWO);
    let (a, b) = (index(&p, "a"), index(&p, "b"));
    p.report(b, MODEL.model, limited(100), 0);
    p.report(a, MODEL.model, Unreachable, 0);
    let cooldown = HealthPolicy::default().transient_cooldown_ms;
    // The first pick after the upstream's cooldown is its probe.
    let first = p.pick(&MODEL, cooldown);
    assert_eq!(
        first,
        Pick::Use {
            credential: a,
            probe: true,
            fail_open: false
        }
    );
    // The next finds the upstream probing: b's own probe, claimed on the way, must be given back
    // (it fails open to the oldest failure instead, as nothing else is available).
    let second = p.pick(&MODEL, cooldown);
    assert!(
        matches!(
            second,
            Pick::Use {
                fail_open: true,
                ..
            }
        ),
        "{second:?}"
    );
    p.report(a, MODEL.model, Success, cooldown + 1);
    let ask = Ask {
        tried: &[a],
        only: None,
        ..MODEL
    };
    assert_eq!(
        p.pick(&ask, cooldown + 2),
        Pick::Use {
            credential: b,
            probe: true,
            fail_open: false
        },
        "b's probe is free"
    );
}

#[test]
fn a_credentials_own_cooldown_counts_even_while_its_upstream_is_avoided() {
    let p = pool(TWO);
    let (a, b) = (index(&p, "a"), index(&p, "b"));
    p.report(a, MODEL.model, limited(60_000), 0);
    p.report(b, MODEL.model, AuthFailed, 0);
    p.report(a, MODEL.model, Unreachable, 1);
    // Every key is rate-limited or refused: the gateway answers 429 itself rather than fail
    // open to a key that is known not to work.
    match p.pick(&MODEL, 2) {
        Pick::Unavailable(u) => {
            assert!(u.all_limited(), "{u:?}");
            assert_eq!((u.rate_limited, u.disabled, u.transient), (1, 1, 0));
        }
        other => panic!("{other:?}"),
    }
}
