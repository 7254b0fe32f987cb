//! Unit tests of one key's admission and settlement, with an injected clock.

use std::time::Duration;

use super::*;
use crate::http::ErrorType;

const S: Duration = Duration::from_secs(1);
/// 2025-06-14T12:00:00Z.
const NOON_MS: u64 = 1_749_902_400_000;

fn at(t0: Instant, after: Duration) -> Now {
    Now {
        mono: t0 + after,
        unix_ms: NOON_MS + after.as_millis() as u64,
    }
}

fn used(input: u64, output: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        ..Usage::default()
    }
}

#[test]
fn sixty_a_minute_admits_sixty_of_a_hundred() {
    let t0 = Instant::now();
    let k = KeyLimits::new(
        &LimitSettings {
            requests_per_minute: Some(60),
            ..Default::default()
        },
        t0,
    );
    let now = at(t0, Duration::ZERO);
    let mut ok = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..100 {
        match k.admit(Estimate::from_body_len(400), now) {
            Ok(a) => ok.push(a),
            Err(e) => refused.push(e),
        }
    }
    assert_eq!((ok.len(), refused.len()), (60, 40));
    let e = &refused[0];
    assert_eq!(
        (e.status, e.kind, e.retry_after),
        (429, ErrorType::RateLimit, Some(1))
    );
    assert!(
        e.message.contains("60 requests per minute"),
        "{}",
        e.message
    );
    for a in ok {
        k.settle(a, &used(100, 10), 0, now);
    }
    assert!(k.admit(Estimate::default(), at(t0, S)).is_ok());
}

#[test]
fn a_refusal_takes_nothing_from_the_other_limits() {
    let t0 = Instant::now();
    let k = KeyLimits::new(
        &LimitSettings {
            requests_per_minute: Some(10),
            input_tokens_per_minute: Some(1_000),
            max_concurrent: Some(5),
            ..Default::default()
        },
        t0,
    );
    let now = at(t0, Duration::ZERO);
    let first = k.admit(Estimate { input_tokens: 900 }, now).unwrap();
    // Too many input tokens: refused, and neither a request nor a slot is used for it.
    let e = k.admit(Estimate { input_tokens: 200 }, now).unwrap_err();
    assert!(
        e.message.contains("1000 input tokens per minute"),
        "{}",
        e.message
    );
    assert!(e.message.contains("estimated at 200"), "{}", e.message);
    // 100 tokens over: they refill in 6 s.
    assert_eq!(e.retry_after, Some(6));
    assert_eq!(k.requests().remaining(now.mono), 9);
    assert_eq!(k.input_tokens().remaining(now.mono), 100);
    assert_eq!(k.concurrency().current(), 1);
    k.settle(first, &used(900, 0), 0, now);
    assert_eq!(k.concurrency().current(), 0);
}

#[test]
fn settlement_corrects_the_estimate_and_charges_output() {
    let t0 = Instant::now();
    let k = KeyLimits::new(
        &LimitSettings {
            input_tokens_per_minute: Some(10_000),
            output_tokens_per_minute: Some(1_000),
            ..Default::default()
        },
        t0,
    );
    let now = at(t0, Duration::ZERO);
    let a = k
        .admit(
            Estimate {
                input_tokens: 4_000,
            },
            now,
        )
        .unwrap();
    assert_eq!(a.input_estimate(), 4_000);
    assert_eq!(k.input_tokens().remaining(now.mono), 6_000);
    // 1 000 uncached + 500 cache writes count; the 2 000 cache reads do not.
    let usage = Usage {
        input_tokens: 1_000,
        output_tokens: 1_500,
        cache_creation_input_tokens: 500,
        cache_read_input_tokens: 2_000,
    };
    k.settle(a, &usage, 0, now);
    assert_eq!(k.input_tokens().remaining(now.mono), 8_500);
    // 1 500 output tokens of 1 000 a minute: 500 in debt, 30 s to drain; then admitted again.
    let e = k.admit(Estimate::default(), now).unwrap_err();
    assert!(
        e.message.contains("1000 output tokens per minute"),
        "{}",
        e.message
    );
    assert_eq!(e.retry_after, Some(30));
    assert!(k.admit(Estimate::default(), at(t0, 30 * S)).is_ok());
    // An estimate too low is charged at settlement.
    let k = KeyLimits::new(
        &LimitSettings {
            input_tokens_per_minute: Some(10_000),
            ..Default::default()
        },
        t0,
    );
    let a = k
        .admit(
            Estimate {
                input_tokens: 1_000,
            },
            now,
        )
        .unwrap();
    k.settle(a, &used(7_000, 0), 0, now);
    assert_eq!(k.input_tokens().remaining(now.mono), 3_000);
    // A failed request gives its estimate back.
    let a = k
        .admit(
            Estimate {
                input_tokens: 2_000,
            },
            now,
        )
        .unwrap();
    k.settle(a, &Usage::default(), 0, now);
    assert_eq!(k.input_tokens().remaining(now.mono), 3_000);
}

#[test]
fn the_longest_wait_is_the_one_told() {
    let t0 = Instant::now();
    let k = KeyLimits::new(
        &LimitSettings {
            requests_per_minute: Some(1),
            input_tokens_per_minute: Some(600),
            ..Default::default()
        },
        t0,
    );
    let now = at(t0, Duration::ZERO);
    let a = k.admit(Estimate { input_tokens: 600 }, now).unwrap();
    k.settle(a, &used(600, 0), 0, now);
    // Requests: 60 s; 300 input tokens: 30 s. The request limit is named.
    let e = k.admit(Estimate { input_tokens: 300 }, now).unwrap_err();
    assert_eq!(e.retry_after, Some(60));
    assert!(e.message.contains("1 requests per minute"), "{}", e.message);
}

#[test]
fn concurrency_with_held_answers() {
    let t0 = Instant::now();
    let k = KeyLimits::new(
        &LimitSettings {
            max_concurrent: Some(2),
            ..Default::default()
        },
        t0,
    );
    let now = at(t0, Duration::ZERO);
    let a = k.admit(Estimate::default(), now).unwrap();
    let b = k.admit(Estimate::default(), now).unwrap();
    assert_eq!(b.in_flight(), 2);
    let e = k.admit(Estimate::default(), now).unwrap_err();
    assert_eq!((e.status, e.retry_after), (429, Some(1)));
    assert!(e.message.contains("2 concurrent requests"), "{}", e.message);
    // A stream held on another thread frees its slot when it ends there.
    std::thread::spawn(move || drop(a)).join().unwrap();
    let c = k.admit(Estimate::default(), now).unwrap();
    k.settle(b, &Usage::default(), 0, now);
    k.settle(c, &Usage::default(), 0, now);
    assert_eq!(k.concurrency().current(), 0);
}

#[test]
fn a_spent_budget_refuses_until_the_next_day() {
    let t0 = Instant::now();
    let k = KeyLimits::new(
        &LimitSettings {
            daily_usd: Some(1.5),
            ..Default::default()
        },
        t0,
    );
    let now = at(t0, Duration::ZERO);
    let a = k.admit(Estimate::default(), now).unwrap();
    k.settle(a, &Usage::default(), 1_500_000, now);
    let e = k.admit(Estimate::default(), now).unwrap_err();
    assert_eq!(
        (e.status, e.kind, e.retry_after),
        (400, ErrorType::InvalidRequest, None)
    );
    assert_eq!(
        e.message,
        "this API key has spent its daily gateway budget ($1.50 of $1.50); \
         it renews at 2025-06-15T00:00:00Z"
    );
    // Twelve hours later it is a new UTC day.
    assert!(k.admit(Estimate::default(), at(t0, 12 * 3600 * S)).is_ok());
}

#[test]
fn a_reload_changes_limits_and_keeps_counts() {
    let t0 = Instant::now();
    let mut s = LimitSettings {
        requests_per_minute: Some(10),
        ..Default::default()
    };
    let k = KeyLimits::new(&s, t0);
    let now = at(t0, Duration::ZERO);
    for _ in 0..10 {
        k.settle(
            k.admit(Estimate::default(), now).unwrap(),
            &used(1, 1),
            10,
            now,
        );
    }
    assert!(k.admit(Estimate::default(), now).is_err());
    s.requests_per_minute = Some(20);
    s.monthly_usd = Some(0.0001);
    k.apply(&s, now.mono);
    assert_eq!(k.requests().remaining(now.mono), 10);
    // The 100 micro-USD spent already reach the new monthly budget.
    let e = k.admit(Estimate::default(), now).unwrap_err();
    assert!(e.message.contains("monthly"), "{}", e.message);
    k.apply(&LimitSettings::default(), now.mono);
    assert!(k.admit(Estimate::default(), now).is_ok());
}

#[test]
fn settings() {
    assert!(LimitSettings::default().validate().is_ok());
    assert!(!LimitSettings::default().any());
    let bad = LimitSettings {
        requests_per_minute: Some(0),
        ..Default::default()
    };
    assert!(bad.validate().unwrap_err().contains("requests_per_minute"));
    let bad = LimitSettings {
        monthly_usd: Some(-3.0),
        ..Default::default()
    };
    assert!(bad.validate().unwrap_err().contains("monthly_usd"));
    let blocked = LimitSettings {
        daily_usd: Some(0.0),
        ..Default::default()
    };
    assert!(blocked.validate().is_ok() && blocked.any());
    assert_eq!(Estimate::from_body_len(0).input_tokens, 0);
    assert_eq!(Estimate::from_body_len(1).input_tokens, 1);
    assert_eq!(Estimate::from_body_len(4_001).input_tokens, 1_001);
}
