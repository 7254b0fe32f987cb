//! Unit tests of the per-minute limiter, with an injected clock.

use std::sync::atomic::AtomicU64 as Counter;
use std::sync::Arc;

use super::*;

const S: Duration = Duration::from_secs(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn burst_of_n_then_one_per_second() {
    let t0 = Instant::now();
    let r = RateLimiter::new(60, t0);
    let admitted = (0..100).filter(|_| r.try_take(1, t0).is_ok()).count();
    assert_eq!(admitted, 60);
    assert_eq!(
        r.try_take(1, t0),
        Err(Refused { retry_after: S }),
        "the 61st waits one emission interval"
    );
    assert_eq!(r.remaining(t0), 0);
    assert_eq!(r.reset_at(t0), t0 + 60 * S);
    // One unit refills per second, not before.
    assert!(r.try_take(1, t0 + ms(999)).is_err());
    assert!(r.try_take(1, t0 + S).is_ok());
    assert!(r.try_take(1, t0 + S).is_err());
    assert_eq!(
        r.try_take(1, t0 + ms(1500)),
        Err(Refused {
            retry_after: ms(500)
        })
    );
    // After a quiet minute the bucket is full again, and no fuller.
    let later = t0 + 200 * S;
    assert_eq!(r.remaining(later), 60);
    assert_eq!(r.reset_at(later), later);
    assert_eq!(
        (0..100).filter(|_| r.try_take(1, later).is_ok()).count(),
        60
    );
}

#[test]
fn limits_that_do_not_divide_a_minute_admit_exactly_n() {
    let t0 = Instant::now();
    for n in [7, 13, 59, 61, 1000, 99_991] {
        let r = RateLimiter::new(n, t0);
        let admitted = (0..n + 10).filter(|_| r.try_take(1, t0).is_ok()).count() as u64;
        assert_eq!(admitted, n, "limit {n}");
    }
}

#[test]
fn costs_are_taken_whole_or_not_at_all() {
    let t0 = Instant::now();
    let r = RateLimiter::new(10_000, t0);
    assert_eq!(r.try_take(6_000, t0), Ok(Taken { units: 6_000 }));
    assert_eq!(r.remaining(t0), 4_000);
    // 5 000 do not fit: refused, and nothing counted. 1 000 more units refill in 6 s.
    assert_eq!(r.try_take(5_000, t0), Err(Refused { retry_after: 6 * S }));
    assert_eq!(r.remaining(t0), 4_000);
    assert!(r.try_take(4_000, t0).is_ok());
    assert_eq!(r.remaining(t0), 0);
    assert!(r.check(5_000, t0 + 6 * S).is_err());
    assert!(r.check(1_000, t0 + 6 * S).is_ok());
}

#[test]
fn zero_cost_checks_for_debt() {
    let t0 = Instant::now();
    let r = RateLimiter::new(1_000, t0);
    assert!(r.try_take(0, t0).is_ok());
    r.charge(1_000, t0);
    // Exactly full is not debt.
    assert_eq!(r.try_take(0, t0), Ok(Taken { units: 0 }));
    assert!(r.try_take(1, t0).is_err());
    r.charge(500, t0);
    // 500 units of debt take 30 s to drain.
    assert_eq!(
        r.try_take(0, t0),
        Err(Refused {
            retry_after: 30 * S
        })
    );
    assert_eq!(r.remaining(t0), 0);
    assert_eq!(r.reset_at(t0), t0 + 90 * S);
    assert!(r.try_take(0, t0 + 30 * S).is_ok());
    assert!(r.try_take(1, t0 + 30 * S).is_err());
    assert!(r.try_take(1, t0 + 30 * S + ms(60)).is_ok());
}

#[test]
fn settling_an_estimate() {
    let t0 = Instant::now();
    let r = RateLimiter::new(6_000, t0);
    r.try_take(3_000, t0).unwrap();
    // The answer used 1 000: 2 000 come back.
    r.give_back(2_000, t0);
    assert_eq!(r.remaining(t0), 5_000);
    // Another used 6 000 against an estimate of 4 000: charged 2 000 more, in debt by 1 000.
    r.try_take(4_000, t0).unwrap();
    r.charge(2_000, t0);
    assert_eq!(r.remaining(t0), 0);
    assert_eq!(
        r.check(0, t0),
        Err(Refused {
            retry_after: 10 * S
        })
    );
    // Giving back never makes the bucket fuller than full.
    let r = RateLimiter::new(60, t0);
    r.try_take(10, t0).unwrap();
    r.give_back(50, t0);
    assert_eq!(r.remaining(t0), 60);
    assert_eq!((0..100).filter(|_| r.try_take(1, t0).is_ok()).count(), 60);
    // What drained is not given back twice.
    let r = RateLimiter::new(60, t0);
    r.try_take(10, t0).unwrap();
    r.give_back(10, t0 + 5 * S);
    assert_eq!(r.remaining(t0 + 5 * S), 60);
}

#[test]
fn a_cost_over_capacity_needs_a_full_bucket_and_leaves_debt() {
    let t0 = Instant::now();
    let r = RateLimiter::new(10_000, t0);
    r.try_take(1, t0).unwrap();
    // Not full: wait until it is (1 unit drains in 6 ms).
    assert_eq!(r.try_take(15_000, t0), Err(Refused { retry_after: ms(6) }));
    let t1 = t0 + ms(6);
    assert!(r.try_take(15_000, t1).is_ok());
    // 15 000 units are 90 s; the bucket admits again once 30 s of debt drained.
    assert_eq!(
        r.check(0, t1),
        Err(Refused {
            retry_after: 30 * S
        })
    );
    assert_eq!(r.reset_at(t1), t1 + 90 * S);
}

#[test]
fn off_admits_everything_and_counts_nothing() {
    let t0 = Instant::now();
    let r = RateLimiter::new(0, t0);
    assert!(!r.is_on());
    for _ in 0..1000 {
        assert!(r.try_take(1_000_000, t0).is_ok());
    }
    r.charge(u64::MAX, t0);
    assert_eq!(r.remaining(t0), u64::MAX);
    assert_eq!(r.reset_at(t0), t0);
}

#[test]
fn reload_keeps_the_units_taken() {
    let t0 = Instant::now();
    let r = RateLimiter::new(60, t0);
    for _ in 0..50 {
        r.try_take(1, t0).unwrap();
    }
    r.set_limit(100, t0);
    assert_eq!(r.limit(), 100);
    assert_eq!(r.remaining(t0), 50);
    // Down to 30: 50 taken is 20 in debt, drained at the new rate (2 s a unit).
    r.set_limit(30, t0);
    assert_eq!(r.remaining(t0), 0);
    assert_eq!(
        r.check(0, t0),
        Err(Refused {
            retry_after: 40 * S
        })
    );
    assert!(r.try_take(1, t0 + 42 * S).is_ok());
    // Off forgets; on again starts full.
    r.set_limit(0, t0);
    r.set_limit(60, t0);
    assert_eq!(r.remaining(t0), 60);
    // The same limit again changes nothing.
    r.try_take(10, t0).unwrap();
    r.set_limit(60, t0 + S);
    assert_eq!(r.remaining(t0 + S), 51);
}

#[test]
fn before_the_epoch_counts_as_the_epoch() {
    let t0 = Instant::now();
    let r = RateLimiter::new(60, t0 + S);
    assert!(r.try_take(60, t0).is_ok());
    assert!(r.try_take(1, t0).is_err());
    assert!(r.try_take(1, t0 + 2 * S).is_ok());
}

#[test]
fn threads_share_one_limit_exactly() {
    const N: u64 = 10_000;
    let t0 = Instant::now();
    let r = Arc::new(RateLimiter::new(N, t0));
    let admitted = Arc::new(Counter::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (r, admitted) = (r.clone(), admitted.clone());
            std::thread::spawn(move || {
                for _ in 0..2 * N {
                    if r.try_take(1, t0).is_ok() {
                        admitted.fetch_add(1, Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(admitted.load(Relaxed), N);
    assert_eq!(r.remaining(t0), 0);
}
