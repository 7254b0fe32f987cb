//! What an upstream's refusal says about the credential, in each dialect's words.
//!
//! The status says most of it (429 a rate limit, 401/403 a refused key, 5xx a passing fault) and
//! `retry-after` when to come back, as for the Anthropic API. Two dialects say more: OpenAI's
//! servers give the time to a limit's reset in `x-ratelimit-reset-requests` / `-tokens` (Go
//! durations such as `6m0s`); Gemini puts it in the body (`RetryInfo.retryDelay`, `"17s"`), and
//! answers a wrong key with a 400 that says `API_KEY_INVALID`, which must disable the key like a
//! 401 rather than go back to the client as its own mistake. Vertex may say the delay the same
//! way; Bedrock says a model that timed out with a 408 (`ModelTimeoutException`), a passing
//! fault rather than the client's.

use super::Dialect;
use crate::routing::health::{outcome_of, Outcome};

/// The outcome of an answer's head (with the body bytes that came with it), as the credential's
/// health learns it.
pub fn outcome<'a, I: Iterator<Item = (&'a str, &'a [u8])>>(
    dialect: Dialect,
    status: u16,
    headers: impl Fn() -> I,
    body: &[u8],
    now_unix_ms: u64,
) -> Option<Outcome> {
    let general = outcome_of(status, headers(), now_unix_ms);
    match (dialect, general) {
        (Dialect::Gemini, None) if status == 400 && contains(body, b"API_KEY_INVALID") => {
            Some(Outcome::AuthFailed)
        }
        (
            Dialect::OpenAi,
            Some(Outcome::RateLimited {
                retry_after_ms: None,
            }),
        ) => Some(Outcome::RateLimited {
            retry_after_ms: openai_reset(headers()),
        }),
        // Bedrock's model did not answer in time: a passing fault, another credential may fare
        // better.
        (Dialect::Bedrock, None) if status == 408 => Some(Outcome::Transient),
        (
            Dialect::Gemini | Dialect::Vertex,
            Some(Outcome::RateLimited {
                retry_after_ms: None,
            }),
        ) => Some(Outcome::RateLimited {
            retry_after_ms: gemini_retry_delay(body),
        }),
        (_, general) => general,
    }
}

fn contains(body: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(body, needle).is_some()
}

/// The wait OpenAI's reset headers give: the longest among the limits that ran out, else the
/// shortest.
fn openai_reset<'a>(headers: impl Iterator<Item = (&'a str, &'a [u8])>) -> Option<u64> {
    let mut limits = [(None, None), (None, None)];
    for (name, value) in headers {
        let value = std::str::from_utf8(value).ok().map(str::trim);
        let lower = name.to_ascii_lowercase();
        let (slot, reset) = match lower.as_str() {
            "x-ratelimit-reset-requests" => (0, true),
            "x-ratelimit-reset-tokens" => (1, true),
            "x-ratelimit-remaining-requests" => (0, false),
            "x-ratelimit-remaining-tokens" => (1, false),
            _ => continue,
        };
        match reset {
            true => limits[slot].1 = value.and_then(go_duration_ms),
            false => limits[slot].0 = value.and_then(|v| v.parse::<u64>().ok()),
        }
    }
    let out: Option<u64> = (limits.iter())
        .filter(|(remaining, _)| *remaining == Some(0))
        .filter_map(|(_, reset)| *reset)
        .max();
    out.or_else(|| limits.iter().filter_map(|(_, reset)| *reset).min())
}

/// A Go duration (`1h2m3.5s`, `20ms`, `6m0s`) in milliseconds.
pub fn go_duration_ms(s: &str) -> Option<u64> {
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms = match &rest[..unit] {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1_000.0,
            "ms" => 1.0,
            "us" | "µs" => 0.001,
            "ns" => 0.000_001,
            _ => return None,
        };
        total += number * ms;
        rest = &rest[unit..];
    }
    Some(total.ceil() as u64)
}

/// Gemini's `"retryDelay": "17s"`, from a `RetryInfo` detail of the error body.
fn gemini_retry_delay(body: &[u8]) -> Option<u64> {
    let at = memchr::memmem::find(body, b"\"retryDelay\"")? + "\"retryDelay\"".len();
    let rest = std::str::from_utf8(&body[at..]).ok()?;
    let rest = rest
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    go_duration_ms(&rest[..rest.find('"')?])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static [u8])> {
        list.iter().map(|(n, v)| (*n, v.as_bytes())).collect()
    }

    #[test]
    fn go_durations() {
        for (text, ms) in [
            ("1s", 1000),
            ("6m0s", 360_000),
            ("20ms", 20),
            ("1h2m3.5s", 3_723_500),
            ("0.5s", 500),
        ] {
            assert_eq!(go_duration_ms(text), Some(ms), "{text}");
        }
        for bad in ["", "5", "1x", "s"] {
            assert_eq!(go_duration_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn openai_resets_say_when_to_come_back() {
        let h = headers(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "2s"),
            ("x-ratelimit-remaining-tokens", "1000"),
            ("x-ratelimit-reset-tokens", "50ms"),
        ]);
        let o = outcome(Dialect::OpenAi, 429, || h.iter().copied(), b"", 0);
        assert_eq!(
            o,
            Some(Outcome::RateLimited {
                retry_after_ms: Some(2000)
            })
        );
        // retry-after wins.
        let h = headers(&[("retry-after", "7"), ("x-ratelimit-reset-tokens", "1s")]);
        let o = outcome(Dialect::OpenAi, 429, || h.iter().copied(), b"", 0);
        assert_eq!(
            o,
            Some(Outcome::RateLimited {
                retry_after_ms: Some(7000)
            })
        );
        // None ran out: the soonest reset.
        let h = headers(&[
            ("x-ratelimit-reset-requests", "3s"),
            ("x-ratelimit-reset-tokens", "1s"),
        ]);
        let o = outcome(Dialect::OpenAi, 429, || h.iter().copied(), b"", 0);
        assert_eq!(
            o,
            Some(Outcome::RateLimited {
                retry_after_ms: Some(1000)
            })
        );
    }

    #[test]
    fn gemini_says_it_in_the_body() {
        let body = br#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay": "17s"}]}}"#;
        let o = outcome(Dialect::Gemini, 429, std::iter::empty, body, 0);
        assert_eq!(
            o,
            Some(Outcome::RateLimited {
                retry_after_ms: Some(17_000)
            })
        );
        let bad_key = br#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT","details":[{"reason":"API_KEY_INVALID"}]}}"#;
        assert_eq!(
            outcome(Dialect::Gemini, 400, std::iter::empty, bad_key, 0),
            Some(Outcome::AuthFailed)
        );
        assert_eq!(
            outcome(Dialect::Gemini, 400, std::iter::empty, b"{}", 0),
            None
        );
        assert_eq!(
            outcome(Dialect::OpenAi, 400, std::iter::empty, bad_key, 0),
            None
        );
        assert_eq!(
            outcome(Dialect::Gemini, 503, std::iter::empty, b"", 0),
            Some(Outcome::Transient)
        );
    }
}
