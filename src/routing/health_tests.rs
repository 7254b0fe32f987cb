//! Unit tests of credential health, kept apart from the logic they check.

use super::{
    Admit::*,
    Outcome::*,
    Reason::{Auth, RateLimit},
    *,
};

const P: HealthPolicy = HealthPolicy {
    backoff_base_ms: 1_000,
    max_cooldown_ms: 1_800_000,
    transient_cooldown_ms: 10_000,
    auth_failure_cooldown_ms: 1_800_000,
    probe_timeout_ms: 60_000,
};
const M: u64 = 7;

fn no(until_ms: u64, reason: Reason, failed_at_ms: u64) -> Admit {
    No {
        until_ms,
        reason,
        failed_at_ms,
    }
}
fn limited(hint: Option<u64>) -> Outcome {
    RateLimited {
        retry_after_ms: hint,
    }
}
/// Records a 429 at `now` and returns its cooldown's deadline.
fn rate_limit(h: &CredentialHealth, hint: Option<u64>, now: u64) -> u64 {
    h.record(M, limited(hint), now, &P);
    match h.admit(M, now, &P) {
        No {
            until_ms,
            reason: RateLimit,
            failed_at_ms,
        } if failed_at_ms == now => until_ms,
        other => panic!("not cooling after a 429: {other:?}"),
    }
}

#[test]
fn defaults_and_model_key() {
    let d = HealthPolicy::default();
    let fields = [
        d.backoff_base_ms,
        d.max_cooldown_ms,
        d.transient_cooldown_ms,
    ];
    assert_eq!(fields, [1_000, 1_800_000, 10_000]);
    assert_eq!(
        [d.auth_failure_cooldown_ms, d.probe_timeout_ms],
        [1_800_000, 5_000]
    );
    assert_eq!(model_key(""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(model_key("a"), 0xaf63_dc4c_8601_ec8c);
}

#[test]
fn backoff_doubles_from_one_second_and_is_capped() {
    let (h, mut now, mut delays) = (CredentialHealth::new(), 5, vec![]);
    for i in 0..100 {
        assert_eq!(h.admit(M, now, &P), if i == 0 { Yes } else { Probe });
        let until = rate_limit(&h, None, now);
        delays.push(until - now);
        now = until;
    }
    assert_eq!(delays[..6], [1_000, 2_000, 4_000, 8_000, 16_000, 32_000]);
    assert_eq!(delays[10], 1_024_000);
    assert!(delays[11..].iter().all(|&d| d == 1_800_000));
    assert_eq!(h.snapshot(now).models[0].consecutive_rate_limits, 100);
}

#[test]
fn retry_after_hint_is_used_and_capped() {
    let h = CredentialHealth::new();
    assert_eq!(rate_limit(&h, Some(5_000), 100), 5_100);
    assert_eq!(h.admit(M, 5_100, &P), Probe);
    assert_eq!(rate_limit(&h, Some(u64::MAX), 5_100), 1_805_100);
    assert_eq!(rate_limit(&h, Some(u64::MAX), u64::MAX - 1), u64::MAX);
}

#[test]
fn transient_cooldown_leaves_the_rate_limit_counter_alone() {
    let h = CredentialHealth::new();
    rate_limit(&h, None, 0);
    assert_eq!(h.admit(M, 1_000, &P), Probe);
    h.record(M, Transient, 1_000, &P);
    assert_eq!(h.admit(M, 10_999, &P), no(11_000, Reason::Transient, 1_000));
    assert_eq!(h.snapshot(0).models[0].consecutive_rate_limits, 1);
    assert_eq!(h.admit(M, 11_000, &P), Probe);
    assert_eq!(rate_limit(&h, None, 11_000), 13_000);
    // A transient fault reported late does not shorten a longer rate-limit cooldown.
    assert_eq!(rate_limit(&h, Some(60_000), 13_000), 73_000);
    h.record(M, Transient, 13_001, &P);
    assert_eq!(h.admit(M, 30_000, &P), no(73_000, RateLimit, 13_001));
}

#[test]
fn auth_failure_disables_every_model_of_the_credential_only() {
    let (h, other) = (CredentialHealth::new(), CredentialHealth::new());
    h.record(1, AuthFailed, 50, &P);
    for model in [1, 2, 3] {
        assert_eq!(h.admit(model, 1_000, &P), no(1_800_050, Auth, 50));
        assert_eq!(other.admit(model, 1_000, &P), Yes);
    }
    // After the cooldown one request probes the credential, whatever its model; one refused
    // for its own model's cooldown does not hold that probe.
    h.record(4, Transient, 1_800_000, &P);
    let refused = no(1_810_000, Reason::Transient, 1_800_000);
    assert_eq!(h.admit(4, 1_800_050, &P), refused);
    assert_eq!(h.admit(2, 1_800_050, &P), Probe);
    assert_eq!(h.admit(3, 1_800_051, &P), no(1_860_050, Auth, 50));
    h.record(2, Success, 1_800_060, &P);
    assert_eq!(h.admit(3, 1_800_061, &P), Yes);
}

#[test]
fn one_models_trouble_does_not_block_another() {
    let h = CredentialHealth::new();
    h.record(1, limited(None), 0, &P);
    h.record(2, Transient, 0, &P);
    assert!(matches!(
        h.admit(1, 10, &P),
        No {
            reason: RateLimit,
            ..
        }
    ));
    assert!(matches!(
        h.admit(2, 10, &P),
        No {
            reason: Reason::Transient,
            ..
        }
    ));
    assert_eq!(h.admit(3, 10, &P), Yes);
}

#[test]
fn exactly_one_probe_after_a_cooldown_until_it_reports() {
    let h = CredentialHealth::new();
    rate_limit(&h, None, 0);
    assert_eq!(h.admit(M, 1_000, &P), Probe);
    for now in [1_000, 1_001, 60_999] {
        assert_eq!(h.admit(M, now, &P), no(61_000, RateLimit, 0));
    }
    // The probe failed: a new cooldown, then a new probe.
    assert_eq!(rate_limit(&h, None, 2_000), 4_000);
    assert_eq!(h.admit(M, 4_000, &P), Probe);
    assert_eq!(h.admit(M, 4_000, &P), no(64_000, RateLimit, 2_000));
}

#[test]
fn a_lost_probe_times_out() {
    let h = CredentialHealth::new();
    h.record(M, Transient, 0, &P);
    assert_eq!(h.admit(M, 10_000, &P), Probe);
    assert_eq!(h.admit(M, 69_999, &P), no(70_000, Reason::Transient, 0));
    assert_eq!(h.admit(M, 70_000, &P), Probe);
    assert_eq!(h.admit(M, 70_001, &P), no(130_000, Reason::Transient, 0));
}

#[test]
fn success_after_a_probe_restores_yes_and_resets_the_backoff() {
    let (h, mut now) = (CredentialHealth::new(), 0);
    for _ in 0..3 {
        now = rate_limit(&h, None, now);
        assert_eq!(h.admit(M, now, &P), Probe);
    }
    h.record(M, Success, now, &P);
    assert_eq!([h.admit(M, now, &P), h.admit(M, now, &P)], [Yes, Yes]);
    assert_eq!(rate_limit(&h, None, now), now + 1_000);
}

#[test]
fn reset_clears_cooldowns_backoff_and_probes() {
    let h = CredentialHealth::new();
    h.record(1, limited(None), 0, &P);
    h.record(1, limited(None), 0, &P);
    h.record(2, Transient, 0, &P);
    assert_eq!(h.admit(2, 10_000, &P), Probe);
    h.record(3, AuthFailed, 0, &P);
    h.reset();
    assert!([1, 2, 3].iter().all(|&m| h.admit(m, 10_000, &P) == Yes));
    let snap = h.snapshot(10_000);
    assert_eq!((snap.disabled_until_ms, snap.models.len()), (None, 2));
    assert!(snap.models.iter().all(|m| m.reason.is_none() && !m.probing));
    assert!(snap.models.iter().all(|m| m.consecutive_rate_limits == 0));
    h.record(1, limited(None), 10_000, &P);
    assert_eq!(h.admit(1, 10_000, &P), no(11_000, RateLimit, 10_000));
}

#[test]
fn snapshot_reports_auth_and_every_model_slot_in_use() {
    let h = CredentialHealth::new();
    assert_eq!(
        h.snapshot(0),
        Snapshot {
            disabled_until_ms: None,
            models: vec![]
        }
    );
    h.record(10, limited(Some(500)), 100, &P);
    h.record(20, Transient, 100, &P);
    h.record(30, Success, 100, &P); // successes take no slot
    assert_eq!(h.admit(10, 600, &P), Probe);
    h.record(40, AuthFailed, 700, &P);
    let state = |model, cooling_until_ms, reason, consecutive_rate_limits, probing| {
        let n = consecutive_rate_limits;
        ModelState {
            model,
            cooling_until_ms,
            reason,
            consecutive_rate_limits: n,
            probing,
        }
    };
    let models = vec![
        state(10, Some(600), Some(RateLimit), 1, true),
        state(20, Some(10_100), Some(Reason::Transient), 0, false),
    ];
    let expected = Snapshot {
        disabled_until_ms: Some(1_800_700),
        models,
    };
    assert_eq!(h.snapshot(800), expected);
    h.record(10, Success, 900, &P);
    let snap = h.snapshot(900);
    assert_eq!(snap.disabled_until_ms, None);
    assert_eq!(snap.models[0], state(10, None, None, 0, false));
}

#[test]
fn seventeen_models_on_one_credential_all_work() {
    let h = CredentialHealth::new();
    let models: Vec<u64> = (0..17).map(|i| model_key(&format!("model-{i}"))).collect();
    for (i, &model) in models.iter().enumerate() {
        h.record(model, limited(Some(1_000)), i as u64, &P);
        assert!(matches!(h.admit(model, i as u64, &P), No { .. }));
    }
    let keys: Vec<u64> = h.snapshot(0).models.iter().map(|m| m.model).collect();
    assert_eq!(keys, models[..16]);
    // The 17th shares the last slot with the 16th: its success clears both, and only them.
    h.record(models[16], Success, 100, &P);
    assert_eq!(
        [h.admit(models[15], 100, &P), h.admit(models[16], 100, &P)],
        [Yes, Yes]
    );
    assert_eq!(h.admit(models[0], 100, &P), no(1_000, RateLimit, 0));
    // Model 0 is taken as key 1, like model_key does.
    h.record(0, Transient, 0, &P);
    assert!(matches!(CredentialHealth::new().admit(0, 0, &P), Yes));
}

#[test]
fn eight_threads_racing_on_a_cooled_slot_get_exactly_one_probe() {
    for round in 0..20 {
        let h = CredentialHealth::new();
        h.record(M, Transient, 0, &P);
        let barrier = std::sync::Barrier::new(8);
        let probes = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    barrier.wait();
                    for _ in 0..1_000 {
                        if h.admit(M, 10_000, &P) == Probe {
                            probes.fetch_add(1, Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(probes.into_inner(), 1, "round {round}");
    }
}

fn hint(headers: &[(&str, &str)], now_unix_ms: u64) -> Option<u64> {
    retry_after_ms(headers.iter().map(|&(n, v)| (n, v.as_bytes())), now_unix_ms)
}

const OCT_21: u64 = 1_445_412_480_000; // 2015-10-21T07:28:00Z

#[test]
fn retry_after_in_seconds_or_as_an_http_date() {
    assert_eq!(hint(&[("Retry-After", "30")], 0), Some(30_000));
    assert_eq!(hint(&[("retry-after", " 0 ")], 0), Some(0));
    assert_eq!(
        hint(&[("retry-after", "99999999999999999999999")], 0),
        Some(u64::MAX)
    );
    let date = [("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")];
    assert_eq!(hint(&date, OCT_21 - 120_000), Some(120_000));
    assert_eq!(hint(&date, OCT_21 + 5_000), Some(0));
}

#[test]
fn reset_headers_earliest_wins_and_past_gives_zero() {
    let headers = [
        ("anthropic-ratelimit-requests-reset", "2015-10-21T07:29:00Z"),
        ("Anthropic-RateLimit-Tokens-Reset", "2015-10-21T07:28:10.5Z"),
        (
            "anthropic-ratelimit-output-tokens-reset",
            "2015-10-21T07:30:00Z",
        ),
        (
            "anthropic-ratelimit-tokens-remaining",
            "2015-10-21T07:28:01Z",
        ),
    ];
    assert_eq!(hint(&headers, OCT_21), Some(10_500));
    let past = [
        (
            "anthropic-ratelimit-input-tokens-reset",
            "2015-10-21T07:27:00Z",
        ),
        ("anthropic-ratelimit-requests-reset", "2015-10-21T07:29:00Z"),
    ];
    assert_eq!(hint(&past, OCT_21), Some(0));
    let other = [(
        "anthropic-ratelimit-priority-input-tokens-reset",
        "2015-10-21T07:28:02Z",
    )];
    assert_eq!(hint(&other, OCT_21), Some(2_000));
}

#[test]
fn garbage_is_ignored_and_retry_after_is_preferred() {
    assert_eq!(hint(&[], OCT_21), None);
    let garbage = [
        ("retry-after", "soon"),
        ("retry-after", "-5"),
        ("retry-after", "1.5"),
        ("retry-after", ""),
        ("anthropic-ratelimit-requests-reset", "tomorrow"),
        ("anthropic-ratelimit-tokens-reset", "2015-13-45T99:00:00Z"),
        ("anthropic-ratelimit-reset", "2015-10-21T07:28:05Z"),
        ("x-anthropic-ratelimit-tokens-reset", "2015-10-21T07:28:05Z"),
        ("anthropic-ratelimit-é-reset", "2015-10-21T07:28:0é"),
    ];
    assert_eq!(hint(&garbage, OCT_21), None);
    let bytes: [(&str, &[u8]); 2] = [
        ("retry-after", b"\xff\xfe"),
        ("anthropic-ratelimit-tokens-reset", b"2015-10-21T07:28:07Z"),
    ];
    assert_eq!(retry_after_ms(bytes, OCT_21), Some(7_000));
    let both = [
        ("anthropic-ratelimit-requests-reset", "2015-10-21T07:28:01Z"),
        ("retry-after", "42"),
    ];
    assert_eq!(hint(&both, OCT_21), Some(42_000));
}

#[test]
fn record_says_when_a_cooldown_starts() {
    let h = CredentialHealth::new();
    assert_eq!(
        h.record(M, Transient, 1_000, &P),
        Some(11_000),
        "the first starts one"
    );
    assert_eq!(
        h.record(M, Transient, 2_000, &P),
        None,
        "one within it does not"
    );
    assert_eq!(
        h.record(M, Transient, 12_001, &P),
        Some(22_001),
        "after it, a new one"
    );
    assert_eq!(h.record(M, Success, 12_500, &P), None);
    assert_eq!(h.record(M, AuthFailed, 13_000, &P), Some(1_813_000));
    assert_eq!(h.record(M, AuthFailed, 13_001, &P), None);
}

#[test]
fn outcome_of_classifies_statuses() {
    let none: [(&str, &[u8]); 0] = [];
    for status in [200, 201, 400, 404, 408, 413, 422] {
        assert_eq!(outcome_of(status, none, 0), None, "{status}");
    }
    for status in [500, 502, 503, 504, 529] {
        assert_eq!(outcome_of(status, none, 0), Some(Transient), "{status}");
    }
    assert_eq!(outcome_of(401, none, 0), Some(AuthFailed));
    assert_eq!(outcome_of(403, none, 0), Some(AuthFailed));
    let hinted = [("Retry-After", &b"7"[..])];
    assert_eq!(outcome_of(429, hinted, 0), Some(limited(Some(7_000))));
    assert_eq!(outcome_of(429, none, 0), Some(limited(None)));
}

#[test]
fn a_burst_of_429s_in_flight_counts_once() {
    let h = CredentialHealth::new();
    for t in 0..10 {
        h.record(M, limited(None), 1_000 + t, &P);
    }
    assert_eq!(h.admit(M, 1_999, &P), no(2_000, RateLimit, 1_000));
    assert_eq!(h.snapshot(1_999).models[0].consecutive_rate_limits, 1);
    // A hint met during the cooldown still counts: the upstream knows best.
    h.record(M, limited(Some(5_000)), 1_500, &P);
    assert_eq!(h.admit(M, 1_999, &P), no(6_500, RateLimit, 1_500));
}

#[test]
fn refusal_reads_without_claiming_and_abandon_gives_the_probe_back() {
    let h = CredentialHealth::new();
    assert_eq!(h.refusal(M, 0), None);
    h.record(M, limited(Some(1_000)), 0, &P);
    assert_eq!(h.refusal(M, 500), Some(no(1_000, RateLimit, 0)));
    assert_eq!(h.refusal(M, 1_000), None, "over: the next request probes");
    assert_eq!(h.admit(M, 1_000, &P), Probe);
    assert!(
        matches!(h.admit(M, 1_001, &P), No { .. }),
        "one probe at a time"
    );
    h.abandon(M);
    assert_eq!(h.admit(M, 1_002, &P), Probe, "given back");
    h.record(1, AuthFailed, 2_000, &P);
    assert_eq!(h.refusal(M, 2_001), Some(no(1_802_000, Auth, 2_000)));
}
