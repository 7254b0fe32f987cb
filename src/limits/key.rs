//! One client key's limits together: what the request path asks on admission and tells when the
//! answer ends.
//!
//! [`KeyLimits::admit`] runs before a request is routed: it checks the budget, the three
//! per-minute limits and the concurrency cap, and takes a request, the estimated input tokens and
//! a concurrency slot, or nothing. [`KeyLimits::settle`] runs when the answer ends (for a stream,
//! once its last `message_delta` gave the usage): the input estimate is corrected with the real
//! count, the output tokens are charged, the cost is added to the budget, and the slot is freed.
//!
//! Admission checks everything before it takes anything, so a request refused by any limit
//! consumes nothing of the others. The checks and the takes are separate atomic steps, so two
//! requests racing for the last unit can both pass the checks; the one whose take then fails gives
//! back what it already took and is refused. What remains is a window of nanoseconds in which a
//! third request may see units that are about to be given back and be refused (with an honest
//! `retry-after`, as it would be a moment earlier); never is more admitted than the limits allow.
//! A lock would close that window at the price of every request; it is not worth it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::budget::{usd_to_micro, Budget};
use super::concurrency::{Concurrency, Guard};
use super::headers::{budget_exhausted, concurrency_limited, rate_limited};
use super::rate::RateLimiter;
use super::Now;
use crate::http::ApiError;
use crate::stream::tally::Usage;

/// One key's limits as configured (`[[api_keys]]` over `[limits]`); `None` is no limit. The
/// configuration's own model of them, so that nothing copies one into the other.
pub type LimitSettings = crate::config::KeyLimitsConfig;

impl LimitSettings {
    /// What the configuration must refuse: zero rates and caps (no request could pass; leave the
    /// key out instead) and amounts that are not a non-negative number of USD. A budget of 0 is
    /// allowed: it blocks the key's spending.
    pub fn validate(&self) -> Result<(), String> {
        let zero = |name: &str| {
            Err(format!(
                "{name} must be at least 1 (leave it out for no limit)"
            ))
        };
        if self.requests_per_minute == Some(0) {
            return zero("requests_per_minute");
        }
        if self.input_tokens_per_minute == Some(0) {
            return zero("input_tokens_per_minute");
        }
        if self.output_tokens_per_minute == Some(0) {
            return zero("output_tokens_per_minute");
        }
        if self.max_concurrent == Some(0) {
            return zero("max_concurrent");
        }
        for (name, usd) in [
            ("daily_usd", self.daily_usd),
            ("monthly_usd", self.monthly_usd),
        ] {
            if usd.is_some_and(|usd| usd_to_micro(usd).is_none()) {
                return Err(format!("{name} must be a non-negative amount of USD"));
            }
        }
        Ok(())
    }

    /// Whether any limit or budget is set.
    pub fn any(&self) -> bool {
        *self != LimitSettings::default()
    }

    fn budgets(&self) -> (Option<u64>, Option<u64>) {
        // An amount `validate` refuses counts as a budget of 0: refused, never unlimited.
        let micro = |usd: Option<f64>| usd.map(|usd| usd_to_micro(usd).unwrap_or(0));
        (micro(self.daily_usd), micro(self.monthly_usd))
    }
}

/// What admission knows of a request's size before it is sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Estimate {
    pub input_tokens: u64,
}

impl Estimate {
    /// From the length of the request body: one token per 4 bytes, rounded up. That is the usual
    /// rough ratio for English text and JSON; it counts the JSON syntax too, and images are far
    /// off. It only has to be in the right range: settlement corrects it with the real count.
    pub fn from_body_len(bytes: usize) -> Estimate {
        Estimate {
            input_tokens: (bytes as u64).div_ceil(4),
        }
    }
}

/// An admitted request: holds its concurrency slot and what it took, until
/// [`KeyLimits::settle`]. Dropping it unsettled frees the slot and keeps the estimate counted.
#[derive(Debug)]
#[must_use = "settle it when the answer ends"]
pub struct Admitted {
    guard: Guard,
    input_tokens: u64,
}

impl Admitted {
    /// The input tokens taken on the estimate.
    pub fn input_estimate(&self) -> u64 {
        self.input_tokens
    }

    /// Requests of the key in flight, this one included.
    pub fn in_flight(&self) -> u32 {
        self.guard.of().current()
    }
}

/// Which limit refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Requests,
    InputTokens,
    OutputTokens,
}

/// The limiters of one key, shared by every worker.
#[derive(Debug)]
pub struct KeyLimits {
    requests: RateLimiter,
    input_tokens: RateLimiter,
    output_tokens: RateLimiter,
    concurrency: Arc<Concurrency>,
    budget: Budget,
}

impl KeyLimits {
    /// Limiters with full buckets and no spend. `epoch`: an instant not later than any `now` to
    /// come (the process start).
    pub fn new(settings: &LimitSettings, epoch: Instant) -> KeyLimits {
        let (daily, monthly) = settings.budgets();
        KeyLimits {
            requests: RateLimiter::new(settings.requests_per_minute.map_or(0, u64::from), epoch),
            input_tokens: RateLimiter::new(settings.input_tokens_per_minute.unwrap_or(0), epoch),
            output_tokens: RateLimiter::new(settings.output_tokens_per_minute.unwrap_or(0), epoch),
            concurrency: Concurrency::new(settings.max_concurrent.unwrap_or(0)),
            budget: Budget::new(daily, monthly),
        }
    }

    /// A reload: new limits at once, counts kept (see [`RateLimiter::set_limit`] for the rule).
    pub fn apply(&self, settings: &LimitSettings, now: Instant) {
        self.requests
            .set_limit(settings.requests_per_minute.map_or(0, u64::from), now);
        self.input_tokens
            .set_limit(settings.input_tokens_per_minute.unwrap_or(0), now);
        self.output_tokens
            .set_limit(settings.output_tokens_per_minute.unwrap_or(0), now);
        self.concurrency
            .set_limit(settings.max_concurrent.unwrap_or(0));
        let (daily, monthly) = settings.budgets();
        self.budget.set_limits(daily, monthly);
    }

    pub fn requests(&self) -> &RateLimiter {
        &self.requests
    }

    pub fn input_tokens(&self) -> &RateLimiter {
        &self.input_tokens
    }

    pub fn output_tokens(&self) -> &RateLimiter {
        &self.output_tokens
    }

    pub fn concurrency(&self) -> &Arc<Concurrency> {
        &self.concurrency
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Full buckets and no spend, as if the key were new; requests in flight stay counted
    /// (they are).
    pub fn reset(&self) {
        self.requests.reset();
        self.input_tokens.reset();
        self.output_tokens.reset();
        self.budget.reset();
    }

    fn rate(&self, limit: Limit) -> &RateLimiter {
        match limit {
            Limit::Requests => &self.requests,
            Limit::InputTokens => &self.input_tokens,
            Limit::OutputTokens => &self.output_tokens,
        }
    }

    /// Admits a request or says why not (a 429 for a limit, a 400 for a spent budget); a refused
    /// request takes nothing.
    pub fn admit(&self, estimate: Estimate, now: Now) -> Result<Admitted, ApiError> {
        self.budget
            .check(now.unix_secs())
            .map_err(|e| budget_exhausted(&e))?;
        let costs = [
            (Limit::Requests, 1),
            (Limit::InputTokens, estimate.input_tokens),
            // Output is unknown yet: refused only while earlier answers keep the bucket in debt.
            (Limit::OutputTokens, 0),
        ];
        // Check all first: the longest wait is the one to tell.
        let mut refused: Option<(Limit, Duration)> = None;
        for (limit, cost) in costs {
            if let Err(r) = self.rate(limit).check(cost, now.mono) {
                match refused {
                    Some((_, wait)) if wait >= r.retry_after => {}
                    _ => refused = Some((limit, r.retry_after)),
                }
            }
        }
        if let Some((limit, wait)) = refused {
            return Err(self.refusal(limit, wait, estimate));
        }
        let guard = self
            .concurrency
            .try_enter()
            .ok_or_else(|| concurrency_limited(self.concurrency.limit()))?;
        // Take in order; a take lost to a racing request undoes the ones before it.
        for (i, &(limit, cost)) in costs.iter().enumerate() {
            if let Err(r) = self.rate(limit).try_take(cost, now.mono) {
                for &(taken, cost) in &costs[..i] {
                    self.rate(taken).give_back(cost, now.mono);
                }
                return Err(self.refusal(limit, r.retry_after, estimate));
            }
        }
        Ok(Admitted {
            guard,
            input_tokens: estimate.input_tokens,
        })
    }

    fn refusal(&self, limit: Limit, wait: Duration, estimate: Estimate) -> ApiError {
        rate_limited(limit, self.rate(limit).limit(), wait, estimate)
    }

    /// The answer ended with `usage`, which cost `cost_micro_usd` (from the price table). Input
    /// tokens are what Anthropic counts against its own input limit: uncached input and cache
    /// writes (cache reads do not count). A request that failed before the upstream counted
    /// anything is settled with `Usage::default()` and 0: its estimate is given back.
    pub fn settle(&self, admitted: Admitted, usage: &Usage, cost_micro_usd: u64, now: Now) {
        let input = usage
            .input_tokens
            .saturating_add(usage.cache_creation_input_tokens);
        let estimate = admitted.input_tokens;
        if input < estimate {
            self.input_tokens.give_back(estimate - input, now.mono);
        } else {
            self.input_tokens.charge(input - estimate, now.mono);
        }
        self.output_tokens.charge(usage.output_tokens, now.mono);
        self.budget.add(cost_micro_usd, now.unix_secs());
        drop(admitted);
    }
}

#[cfg(test)]
#[path = "key_tests.rs"]
mod tests;
