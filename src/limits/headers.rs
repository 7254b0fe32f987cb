//! What a limited key's client sees: Anthropic's own rate-limit headers, describing the gateway's
//! limits, and the errors of a refused request.
//!
//! Clients and SDKs that pace themselves by `anthropic-ratelimit-*` keep working behind the
//! gateway only if it sends them in Anthropic's form: `-limit` (N per minute), `-remaining` (what
//! a request could take now) and `-reset` (RFC 3339 UTC, whole seconds, when the bucket is full
//! again). Only the limits a key has are described.
//!
//! Refusals. A rate or concurrency limit is a `429 rate_limit_error` with `retry-after` in whole
//! seconds, rounded up, at least 1; the SDKs retry it after that delay. A spent budget is a
//! `400 invalid_request_error`: it is what Anthropic itself answers when an organization's or a
//! workspace's spend limit is reached ("You have reached your specified API usage limits. You
//! will regain access on …"), the SDKs do not retry it (they retry 408, 409, 429 and ≥ 500, see
//! `_should_retry` in the Python SDK), and a ringgate chained in front of another one does not
//! take it for a broken credential, as it would a 401 or 403 (which cool a credential for half an
//! hour). The message says which budget and when it renews.

use std::borrow::Cow;
use std::time::Duration;

use super::budget::Exhausted;
use super::key::{Estimate, KeyLimits, Limit};
use super::rate::RateLimiter;
use super::Now;
use crate::http::{ApiError, ErrorType};

/// The state of one per-minute limit, for its three headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitState {
    pub limit: u64,
    pub remaining: u64,
    /// Unix seconds, rounded up.
    pub reset_unix: u64,
}

/// The rate-limit headers of one response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateHeaders {
    pub requests: Option<LimitState>,
    pub input_tokens: Option<LimitState>,
    pub output_tokens: Option<LimitState>,
}

fn state(r: &RateLimiter, now: Now) -> Option<LimitState> {
    if !r.is_on() {
        return None;
    }
    let until = r.reset_at(now.mono).saturating_duration_since(now.mono);
    let reset_ms = now.unix_ms.saturating_add(until.as_millis() as u64);
    Some(LimitState {
        limit: r.limit(),
        remaining: r.remaining(now.mono),
        reset_unix: reset_ms.div_ceil(1000),
    })
}

impl RateHeaders {
    /// The headers of a key at `now`: after admission, they count the request being answered.
    pub fn of(limits: &KeyLimits, now: Now) -> RateHeaders {
        RateHeaders {
            requests: state(limits.requests(), now),
            input_tokens: state(limits.input_tokens(), now),
            output_tokens: state(limits.output_tokens(), now),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == RateHeaders::default()
    }

    /// Each header as a name and a value, in a stable order.
    pub fn for_each(&self, mut f: impl FnMut(&'static str, &str)) {
        let families = [
            (
                self.requests,
                [
                    "anthropic-ratelimit-requests-limit",
                    "anthropic-ratelimit-requests-remaining",
                    "anthropic-ratelimit-requests-reset",
                ],
            ),
            (
                self.input_tokens,
                [
                    "anthropic-ratelimit-input-tokens-limit",
                    "anthropic-ratelimit-input-tokens-remaining",
                    "anthropic-ratelimit-input-tokens-reset",
                ],
            ),
            (
                self.output_tokens,
                [
                    "anthropic-ratelimit-output-tokens-limit",
                    "anthropic-ratelimit-output-tokens-remaining",
                    "anthropic-ratelimit-output-tokens-reset",
                ],
            ),
        ];
        let mut n = itoa::Buffer::new();
        for (s, [limit, remaining, reset]) in families {
            let Some(s) = s else { continue };
            f(limit, n.format(s.limit));
            f(remaining, n.format(s.remaining));
            f(reset, &rfc3339(s.reset_unix));
        }
    }

    pub fn to_vec(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::with_capacity(9);
        self.for_each(|name, value| v.push((name, value.to_owned())));
        v
    }

    /// The headers as the lines of a response head (`name: value\r\n` each), in one string:
    /// what every answer to a limited key carries, written once per request.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(512);
        self.for_each(|name, value| {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push_str("\r\n");
        });
        out
    }
}

/// `2025-07-01T00:00:00Z`, written by hand: it is on every answer to a limited key.
pub fn rfc3339(unix: u64) -> String {
    let (year, month, day) = super::budget::civil_from_days((unix / 86_400) as i64);
    let secs = unix % 86_400;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

/// Whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

fn too_many(message: String, wait: Duration) -> ApiError {
    ApiError {
        retry_after: Some(retry_after_secs(wait)),
        ..ApiError::new(429, ErrorType::RateLimit, Cow::Owned(message))
    }
}

/// A per-minute limit refused the request.
pub fn rate_limited(limit: Limit, per_minute: u64, wait: Duration, estimate: Estimate) -> ApiError {
    let secs = retry_after_secs(wait);
    let what = match limit {
        Limit::Requests => format!("{per_minute} requests per minute"),
        Limit::InputTokens => format!(
            "{per_minute} input tokens per minute (this request is estimated at {})",
            estimate.input_tokens
        ),
        Limit::OutputTokens => format!("{per_minute} output tokens per minute"),
    };
    too_many(
        format!("this API key has reached its gateway limit of {what}; retry after {secs} s"),
        wait,
    )
}

/// The concurrency cap refused the request. When a slot frees is unknown: retry in a second.
pub fn concurrency_limited(max: u32) -> ApiError {
    too_many(
        format!(
            "this API key has reached its gateway limit of {max} concurrent requests; \
             retry when one of them has ended"
        ),
        Duration::from_secs(1),
    )
}

/// A spent budget refused the request (see the module for the status).
pub fn budget_exhausted(e: &Exhausted) -> ApiError {
    let which = e.which.as_str();
    ApiError::new(
        400,
        ErrorType::InvalidRequest,
        format!(
            "this API key has spent its {which} gateway budget (${} of ${}); \
             it renews at {}",
            usd(e.spent_micro_usd),
            usd(e.limit_micro_usd),
            rfc3339(e.renews_at_unix),
        )
        .into(),
    )
}

/// Micro-USD as dollars and cents, cents rounded down.
fn usd(micro: u64) -> String {
    let cents = micro / 10_000;
    format!("{}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;
