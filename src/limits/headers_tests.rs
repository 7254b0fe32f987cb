//! Unit tests of the rate-limit headers and of the refusals.

use std::time::Instant;

use super::*;
use crate::limits::key::LimitSettings;

/// 2025-06-14T12:00:00Z.
const NOON_MS: u64 = 1_749_902_400_000;

#[test]
fn headers_describe_the_limits_a_key_has() {
    let t0 = Instant::now();
    let k = KeyLimits::new(
        &LimitSettings {
            requests_per_minute: Some(60),
            input_tokens_per_minute: Some(10_000),
            ..Default::default()
        },
        t0,
    );
    let now = Now {
        mono: t0,
        unix_ms: NOON_MS + 250,
    };
    let fresh = RateHeaders::of(&k, now).to_vec();
    assert_eq!(
        fresh,
        vec![
            ("anthropic-ratelimit-requests-limit", "60".to_owned()),
            ("anthropic-ratelimit-requests-remaining", "60".to_owned()),
            (
                "anthropic-ratelimit-requests-reset",
                "2025-06-14T12:00:01Z".to_owned()
            ),
            ("anthropic-ratelimit-input-tokens-limit", "10000".to_owned()),
            (
                "anthropic-ratelimit-input-tokens-remaining",
                "10000".to_owned()
            ),
            (
                "anthropic-ratelimit-input-tokens-reset",
                "2025-06-14T12:00:01Z".to_owned()
            ),
        ]
    );
    let _a = k
        .admit(
            Estimate {
                input_tokens: 2_500,
            },
            now,
        )
        .unwrap();
    let h = RateHeaders::of(&k, now);
    assert_eq!(
        h.requests,
        Some(LimitState {
            limit: 60,
            remaining: 59,
            // One request refills in 1 s: 12:00:01.25, rounded up.
            reset_unix: NOON_MS / 1000 + 2,
        })
    );
    assert_eq!(h.input_tokens.unwrap().remaining, 7_500);
    assert_eq!(h.input_tokens.unwrap().reset_unix, NOON_MS / 1000 + 16);
    assert_eq!(h.output_tokens, None);
    let none = KeyLimits::new(&LimitSettings::default(), t0);
    assert!(RateHeaders::of(&none, now).is_empty());
}

#[test]
fn retry_after_is_whole_seconds_rounded_up_at_least_one() {
    assert_eq!(retry_after_secs(Duration::ZERO), 1);
    assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
    assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
    assert_eq!(retry_after_secs(Duration::from_millis(2_001)), 3);
}

#[test]
fn refusals_in_anthropic_shape() {
    let e = rate_limited(
        Limit::Requests,
        60,
        Duration::from_millis(1_200),
        Estimate::default(),
    );
    let resp = String::from_utf8(e.to_response("req_1", true)).unwrap();
    assert!(resp.starts_with("HTTP/1.1 429 "));
    assert!(resp.contains("\r\nretry-after: 2\r\n"));
    assert!(resp.contains("\"type\":\"rate_limit_error\""));
    assert!(resp.contains("60 requests per minute; retry after 2 s"));

    let e = budget_exhausted(&Exhausted {
        which: crate::limits::budget::Period::Month,
        limit_micro_usd: 500_000_000,
        spent_micro_usd: 500_012_345,
        renews_at_unix: 1_751_328_000,
    });
    let resp = String::from_utf8(e.to_response("req_2", true)).unwrap();
    assert!(resp.starts_with("HTTP/1.1 400 "));
    assert!(!resp.contains("retry-after"));
    assert!(resp.contains("\"type\":\"invalid_request_error\""));
    assert!(
        resp.contains(
            "monthly gateway budget ($500.01 of $500.00); it renews at 2025-07-01T00:00:00Z"
        ),
        "{resp}"
    );
}

#[test]
fn reset_times_are_written_as_humantime_writes_them() {
    for unix in [
        0u64,
        86_399,
        86_400,
        951_782_400,
        1_709_164_800,
        1_767_225_599,
        4_102_444_800,
    ] {
        let want = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix),
        )
        .to_string();
        assert_eq!(super::rfc3339(unix), want, "{unix}");
    }
}
