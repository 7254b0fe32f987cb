//! Unit tests of the budgets and of the calendar, with an injected clock.

use super::*;

/// Unix seconds at a UTC date and time.
fn at(y: i64, mo: u32, d: u32, h: u64, mi: u64, s: u64) -> u64 {
    days_from_civil(y, mo, d) as u64 * DAY_SECS + h * 3600 + mi * 60 + s
}

const USD: u64 = 1_000_000;

#[test]
fn calendar_round_trips_and_matches_known_dates() {
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    // 2025-07-01T00:00:00Z is 1751328000.
    assert_eq!(at(2025, 7, 1, 0, 0, 0), 1_751_328_000);
    // Every day from 1900 to 2200 maps back to itself, one day after the previous.
    let mut prev = civil_from_days(days_from_civil(1900, 1, 1) - 1);
    for d in days_from_civil(1900, 1, 1)..days_from_civil(2200, 1, 1) {
        let (y, m, day) = civil_from_days(d);
        assert_eq!(days_from_civil(y, m, day), d);
        assert!((1..=12).contains(&m) && (1..=31).contains(&day));
        assert!((y, m, day) > prev);
        prev = (y, m, day);
    }
    // The same as humantime says for a few instants.
    for t in [0, 951_782_400, 1_709_164_800, 1_735_689_599, 4_102_444_800] {
        let (y, m, d) = civil_from_days((t / DAY_SECS) as i64);
        let shown = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(t),
        )
        .to_string();
        assert!(
            shown.starts_with(&format!("{y:04}-{m:02}-{d:02}T")),
            "{shown}"
        );
    }
}

#[test]
fn months_and_their_starts() {
    assert_eq!(month_of(at(2025, 1, 31, 23, 59, 59)), 2025 * 12);
    assert_eq!(month_of(at(2025, 12, 1, 0, 0, 0)), 2025 * 12 + 11);
    assert_eq!(month_start(2025 * 12 + 12), at(2026, 1, 1, 0, 0, 0));
    assert_eq!(month_start(2024 * 12 + 2), at(2024, 3, 1, 0, 0, 0));
}

#[test]
fn a_day_budget_renews_at_midnight_utc() {
    let b = Budget::new(Some(10 * USD), None);
    let evening = at(2025, 6, 14, 23, 0, 0);
    assert_eq!(b.check(evening), Ok(()));
    b.add(6 * USD, evening);
    assert_eq!(b.check(evening), Ok(()));
    b.add(4 * USD, evening + 3599);
    let midnight = at(2025, 6, 15, 0, 0, 0);
    assert_eq!(
        b.check(evening + 3599),
        Err(Exhausted {
            which: Period::Day,
            limit_micro_usd: 10 * USD,
            spent_micro_usd: 10 * USD,
            renews_at_unix: midnight,
        })
    );
    // A new day: the counter starts again, the month keeps counting.
    assert_eq!(b.check(midnight), Ok(()));
    assert_eq!(
        b.spent(midnight),
        Spent {
            day: 0,
            month: 10 * USD
        }
    );
    b.add(USD, midnight);
    assert_eq!(
        b.spent(midnight + 1),
        Spent {
            day: USD,
            month: 11 * USD
        }
    );
}

#[test]
fn a_month_budget_renews_on_the_first_including_december_to_january() {
    let b = Budget::new(Some(100 * USD), Some(50 * USD));
    let late = at(2025, 12, 31, 23, 59, 59);
    b.add(50 * USD, late);
    let e = b.check(late).unwrap_err();
    assert_eq!(e.which, Period::Month);
    assert_eq!(e.renews_at_unix, at(2026, 1, 1, 0, 0, 0));
    assert_eq!(b.check(late + 1), Ok(()));
    assert_eq!(b.spent(late + 1), Spent::default());
}

#[test]
fn february_of_a_leap_year() {
    let b = Budget::new(None, Some(5 * USD));
    b.add(5 * USD, at(2024, 2, 28, 12, 0, 0));
    // 2024-02-29 exists: still February, still spent; it renews on March 1st.
    let leap_day = at(2024, 2, 29, 8, 0, 0);
    let e = b.check(leap_day).unwrap_err();
    assert_eq!(
        (e.which, e.renews_at_unix),
        (Period::Month, at(2024, 3, 1, 0, 0, 0))
    );
    assert_eq!(b.check(at(2024, 3, 1, 0, 0, 0)), Ok(()));
    // 2025 has no leap day: the day after the 28th is March.
    let b = Budget::new(None, Some(5 * USD));
    b.add(5 * USD, at(2025, 2, 28, 23, 0, 0));
    assert_eq!(
        b.check(at(2025, 2, 28, 23, 59, 59))
            .unwrap_err()
            .renews_at_unix,
        at(2025, 3, 1, 0, 0, 0)
    );
    assert_eq!(b.check(at(2025, 2, 28, 23, 59, 59) + 1), Ok(()));
}

#[test]
fn both_spent_names_the_month() {
    let b = Budget::new(Some(USD), Some(USD));
    let t = at(2025, 3, 10, 0, 0, 0);
    b.add(USD, t);
    assert_eq!(b.check(t).unwrap_err().which, Period::Month);
}

#[test]
fn without_budgets_spend_is_counted_and_a_reload_applies_at_once() {
    let b = Budget::new(None, None);
    let t = at(2025, 3, 10, 9, 0, 0);
    b.add(3 * USD, t);
    assert_eq!(b.check(t), Ok(()));
    b.set_limits(Some(2 * USD), None);
    assert_eq!(b.limits(), (Some(2 * USD), None));
    assert_eq!(b.check(t).unwrap_err().which, Period::Day);
    // A zero budget refuses everything.
    let b = Budget::new(Some(0), None);
    assert!(b.check(t).is_err());
}

#[test]
fn a_clock_stepping_back_does_not_forget() {
    let b = Budget::new(Some(USD), None);
    let t = at(2025, 3, 10, 0, 0, 5);
    b.add(USD, t);
    assert!(b.check(t - 10).is_err());
    b.add(USD, t - 10);
    assert_eq!(b.spent(t).day, 2 * USD);
}

#[test]
fn restore_merges_with_what_was_counted_since() {
    let t = at(2025, 5, 20, 10, 0, 0);
    let before = Budget::new(Some(10 * USD), Some(100 * USD));
    before.add(4 * USD, t - 86_400); // yesterday
    before.add(3 * USD, t);
    let saved = before.snapshot();
    assert_eq!(saved.day_period, day_of(t));
    assert_eq!(saved.month_period, 2025 * 12 + 4);
    assert_eq!((saved.day_spent, saved.month_spent), (3 * USD, 7 * USD));

    // After a restart, one request was counted before the saved values came back.
    let after = Budget::new(Some(10 * USD), Some(100 * USD));
    after.add(USD, t + 60);
    after.restore(
        saved.day_spent,
        saved.day_period,
        saved.month_spent,
        saved.month_period,
    );
    assert_eq!(
        after.spent(t + 60),
        Spent {
            day: 4 * USD,
            month: 8 * USD
        }
    );
    // Values from an older period are ignored; from a newer one they replace.
    after.restore(50 * USD, day_of(t) - 1, 50 * USD, saved.month_period - 1);
    assert_eq!(after.spent(t + 60).day, 4 * USD);
    let fresh = Budget::new(None, None);
    fresh.add(USD, t - 86_400);
    fresh.restore(2 * USD, day_of(t), 0, 0);
    assert_eq!(fresh.spent(t).day, 2 * USD);
}

#[test]
fn sums_saturate() {
    let b = Budget::new(None, None);
    let t = at(2025, 5, 20, 10, 0, 0);
    b.add(SPENT_MAX, t);
    b.add(SPENT_MAX, t);
    assert_eq!(b.spent(t).day, SPENT_MAX);
    assert_eq!(b.snapshot().day_period, day_of(t));
}

#[test]
fn usd_amounts() {
    assert_eq!(usd_to_micro(25.5), Some(25_500_000));
    assert_eq!(usd_to_micro(0.0000004), Some(0));
    assert_eq!(usd_to_micro(0.1 + 0.2), Some(300_000));
    assert_eq!(usd_to_micro(-1.0), None);
    assert_eq!(usd_to_micro(f64::NAN), None);
    assert_eq!(usd_to_micro(1e12), None);
}

#[test]
fn threads_add_up() {
    let b = std::sync::Arc::new(Budget::new(None, None));
    let t = at(2025, 5, 20, 10, 0, 0);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || (0..10_000).for_each(|_| b.add(7, t)))
        })
        .collect();
    threads.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(
        b.spent(t),
        Spent {
            day: 560_000,
            month: 560_000
        }
    );
}
