//! Spend per UTC calendar day and per UTC calendar month, in micro-USD, for one client key.
//!
//! Operators cap what each team may spend so that one runaway script cannot burn the month; the
//! caps follow the calendar (a day renews at 00:00 UTC, a month on the 1st at 00:00 UTC), as
//! Anthropic's own spend limits do. Every worker adds to the same counters, so each counter is one
//! [`AtomicU64`] that carries its period with its sum: the period number in the top
//! [`PERIOD_BITS`] bits (the day since 1970-01-01, or `year × 12 + month − 1`), the micro-USD spent
//! in it below. The first addition in a new period replaces the old sum in the same
//! compare-and-swap, so there is no reset to schedule and no moment where a stale sum is seen.
//!
//! The sum saturates at [`SPENT_MAX`] micro-USD (about $70 million a day or a month per key). A
//! clock that steps back does not forget: spend seen in a later period than `now` still counts.
//! Spend is counted whether or not a budget is set, so the admin view shows it and a budget set by
//! a reload applies at once.
//!
//! A budget is exhausted once the spend *reaches* it. Spend is known only when an answer ends,
//! so the request that crosses the line is served in full: the overshoot is at most what the
//! requests in flight at that moment cost.
//!
//! Time is Unix seconds passed in; nothing here reads a clock.

use std::sync::atomic::{AtomicU64, Ordering::*};

pub const PERIOD_BITS: u32 = 18;
const SPENT_BITS: u32 = 64 - PERIOD_BITS;
/// The largest sum a counter holds, in micro-USD.
pub const SPENT_MAX: u64 = (1 << SPENT_BITS) - 1;
const PERIOD_MAX: u32 = (1 << PERIOD_BITS) - 1;
/// Stored as the limit when there is none.
const NO_LIMIT: u64 = u64::MAX;
const DAY_SECS: u64 = 86_400;

/// Which budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Day,
    Month,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "daily",
            Period::Month => "monthly",
        }
    }
}

/// A budget that is spent: no request of the key is admitted before `renews_at_unix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exhausted {
    pub which: Period,
    pub limit_micro_usd: u64,
    pub spent_micro_usd: u64,
    /// The start of the next day or month, Unix seconds (UTC).
    pub renews_at_unix: u64,
}

/// Spend in the current day and month.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spent {
    pub day: u64,
    pub month: u64,
}

/// The counters as they are, for saving; [`Budget::restore`] takes them back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub day_spent: u64,
    pub day_period: u32,
    pub month_spent: u64,
    pub month_period: u32,
}

/// One key's budgets and spend.
#[derive(Debug)]
pub struct Budget {
    day_limit: AtomicU64,
    month_limit: AtomicU64,
    day: Counter,
    month: Counter,
}

impl Budget {
    /// Limits in micro-USD; `None`: no budget for that period (spend is counted all the same).
    pub fn new(daily: Option<u64>, monthly: Option<u64>) -> Budget {
        Budget {
            day_limit: AtomicU64::new(daily.unwrap_or(NO_LIMIT)),
            month_limit: AtomicU64::new(monthly.unwrap_or(NO_LIMIT)),
            day: Counter(AtomicU64::new(0)),
            month: Counter(AtomicU64::new(0)),
        }
    }

    /// A reload: the spend stays, the new limits apply to the next check.
    pub fn set_limits(&self, daily: Option<u64>, monthly: Option<u64>) {
        self.day_limit.store(daily.unwrap_or(NO_LIMIT), Relaxed);
        self.month_limit.store(monthly.unwrap_or(NO_LIMIT), Relaxed);
    }

    pub fn limits(&self) -> (Option<u64>, Option<u64>) {
        let get = |a: &AtomicU64| Some(a.load(Relaxed)).filter(|&l| l != NO_LIMIT);
        (get(&self.day_limit), get(&self.month_limit))
    }

    /// Whether a request may be admitted at `now_unix`. When both budgets are spent the month is
    /// named: it renews last.
    pub fn check(&self, now_unix: u64) -> Result<(), Exhausted> {
        let spent = self.spent(now_unix);
        let month_limit = self.month_limit.load(Relaxed);
        if month_limit != NO_LIMIT && spent.month >= month_limit {
            return Err(Exhausted {
                which: Period::Month,
                limit_micro_usd: month_limit,
                spent_micro_usd: spent.month,
                renews_at_unix: month_start(month_of(now_unix) + 1),
            });
        }
        let day_limit = self.day_limit.load(Relaxed);
        if day_limit != NO_LIMIT && spent.day >= day_limit {
            return Err(Exhausted {
                which: Period::Day,
                limit_micro_usd: day_limit,
                spent_micro_usd: spent.day,
                renews_at_unix: (u64::from(day_of(now_unix)) + 1) * DAY_SECS,
            });
        }
        Ok(())
    }

    /// Counts what an answer cost, in the day and month of `now_unix`.
    pub fn add(&self, micro_usd: u64, now_unix: u64) {
        if micro_usd == 0 {
            return;
        }
        self.day.add(micro_usd, day_of(now_unix));
        self.month.add(micro_usd, month_of(now_unix));
    }

    pub fn spent(&self, now_unix: u64) -> Spent {
        Spent {
            day: self.day.spent(day_of(now_unix)),
            month: self.month.spent(month_of(now_unix)),
        }
    }

    /// Forgets the spend of the current periods (an operator's reset of a key).
    pub fn reset(&self) {
        self.day.0.store(0, Release);
        self.month.0.store(0, Release);
    }

    pub fn snapshot(&self) -> Snapshot {
        let (day_period, day_spent) = unpack(self.day.0.load(Acquire));
        let (month_period, month_spent) = unpack(self.month.0.load(Acquire));
        Snapshot {
            day_spent,
            day_period,
            month_spent,
            month_period,
        }
    }

    /// Takes back spend saved before a restart, merged with what was counted since: a saved
    /// period newer than the counter's replaces it, the same period adds up, an older one is
    /// ignored. Calling it with the same values twice counts them twice.
    pub fn restore(&self, day_spent: u64, day_period: u32, month_spent: u64, month_period: u32) {
        self.day.restore(day_spent, day_period);
        self.month.restore(month_spent, month_period);
    }
}

/// A sum tagged with its period.
#[derive(Debug)]
struct Counter(AtomicU64);

impl Counter {
    fn spent(&self, period: u32) -> u64 {
        let (p, spent) = unpack(self.0.load(Acquire));
        if p >= period {
            spent
        } else {
            0
        }
    }

    fn add(&self, x: u64, period: u32) {
        let _ = self.0.fetch_update(AcqRel, Relaxed, |v| {
            let (p, spent) = unpack(v);
            Some(if p >= period {
                pack(p, spent.saturating_add(x))
            } else {
                pack(period, x)
            })
        });
    }

    fn restore(&self, x: u64, period: u32) {
        let period = period.min(PERIOD_MAX);
        let _ = self.0.fetch_update(AcqRel, Relaxed, |v| {
            let (p, spent) = unpack(v);
            match period.cmp(&p) {
                std::cmp::Ordering::Greater => Some(pack(period, x)),
                std::cmp::Ordering::Equal => Some(pack(p, spent.saturating_add(x))),
                std::cmp::Ordering::Less => None,
            }
        });
    }
}

fn pack(period: u32, spent: u64) -> u64 {
    (u64::from(period.min(PERIOD_MAX)) << SPENT_BITS) | spent.min(SPENT_MAX)
}

fn unpack(v: u64) -> (u32, u64) {
    ((v >> SPENT_BITS) as u32, v & SPENT_MAX)
}

/// USD as configured (`daily_usd = 25.5`) to micro-USD, rounded to the nearest; `None` for a
/// negative, infinite or NaN amount, or one too large to count.
pub fn usd_to_micro(usd: f64) -> Option<u64> {
    let micro = (usd * 1e6).round();
    (usd.is_finite() && usd >= 0.0 && micro <= SPENT_MAX as f64).then_some(micro as u64)
}

// ---- The UTC calendar -----------------------------------------------------------------------

/// The day number of a Unix time: days since 1970-01-01.
pub fn day_of(unix: u64) -> u32 {
    ((unix / DAY_SECS).min(u64::from(PERIOD_MAX))) as u32
}

/// The month number of a Unix time: `year × 12 + month − 1` (month 1 to 12).
pub fn month_of(unix: u64) -> u32 {
    let (y, m, _) = civil_from_days(i64::from(day_of(unix)));
    (y as u32 * 12 + m - 1).min(PERIOD_MAX)
}

/// The Unix time at which a month number begins.
pub fn month_start(month: u32) -> u64 {
    let (y, m) = (i64::from(month / 12), month % 12 + 1);
    (days_from_civil(y, m, 1).max(0) as u64) * DAY_SECS
}

/// The date of a day number (days since 1970-01-01): year, month 1 to 12, day 1 to 31.
///
/// The proleptic Gregorian calendar in 400-year eras (146 097 days each), with the year taken to
/// begin on March 1st so that the leap day falls at its end.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..146096
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year, 0..365
    let mp = (5 * doy + 2) / 153; // month from March, 0..11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day number (days since 1970-01-01) of a date; the inverse of [`civil_from_days`].
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12); // March is 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
#[path = "budget_tests.rs"]
mod tests;
