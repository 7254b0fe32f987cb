//! The JSON documents the admin endpoints answer with.
//!
//! Times are given twice, as RFC 3339 for people and as UNIX milliseconds for scripts. The
//! configuration goes through its own `Serialize`, which writes `<redacted>` for every secret.

use serde::Serialize;

use crate::config::Config;
use crate::routing::health::Reason;
use crate::routing::pool::CredentialStatus;

#[derive(Serialize)]
struct Credential<'a> {
    upstream: &'a str,
    credential: &'a str,
    state: &'static str,
    weight: u32,
    disabled_until: Option<Time>,
    upstream_unreachable_until: Option<Time>,
    /// Models that failed with this credential since its last success.
    models: Vec<Model<'a>>,
}

#[derive(Serialize)]
struct Model<'a> {
    model: &'a str,
    cooling: bool,
    cooling_until: Option<Time>,
    reason: Option<&'static str>,
    consecutive_rate_limits: u32,
    probing: bool,
}

#[derive(Serialize)]
struct Time {
    unix_ms: u64,
    rfc3339: String,
}

fn time(unix_ms: Option<u64>) -> Option<Time> {
    unix_ms.map(|ms| Time {
        unix_ms: ms,
        rfc3339: humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
        )
        .to_string(),
    })
}

fn reason(r: Reason) -> &'static str {
    match r {
        Reason::RateLimit => "rate_limited",
        Reason::Transient => "upstream_error",
        Reason::Auth => "key_refused",
        Reason::Unreachable => "unreachable",
    }
}

/// `GET /admin/credentials`.
pub fn credentials(all: &[CredentialStatus]) -> String {
    #[derive(Serialize)]
    struct Doc<'a> {
        credentials: Vec<Credential<'a>>,
    }
    let credentials = all
        .iter()
        .map(|c| Credential {
            upstream: &c.upstream,
            credential: &c.credential,
            state: c.state(),
            weight: c.weight,
            disabled_until: time(c.disabled_until_unix_ms),
            upstream_unreachable_until: time(c.upstream_unreachable_until_unix_ms),
            models: c
                .models
                .iter()
                .map(|m| Model {
                    model: &m.model,
                    cooling: m.cooling,
                    cooling_until: time(m.cooling_until_unix_ms),
                    reason: m.reason.map(reason),
                    consecutive_rate_limits: m.consecutive_rate_limits,
                    probing: m.probing,
                })
                .collect(),
        })
        .collect();
    to_json(&Doc { credentials })
}

/// `POST /admin/credentials/{upstream}/{credential}/reset`.
pub fn reset(upstream: &str, credential: &str) -> String {
    #[derive(Serialize)]
    struct Doc<'a> {
        reset: bool,
        upstream: &'a str,
        credential: &'a str,
    }
    to_json(&Doc {
        reset: true,
        upstream,
        credential,
    })
}

/// `GET /admin/config`.
pub fn config(config: &Config) -> String {
    to_json(config)
}

/// `POST /admin/reload`.
pub fn reloaded(summary: &str) -> String {
    #[derive(Serialize)]
    struct Doc<'a> {
        reloaded: bool,
        summary: &'a str,
    }
    to_json(&Doc {
        reloaded: true,
        summary,
    })
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    // These documents are maps of strings and numbers: serializing them cannot fail.
    simd_json::to_string(value).unwrap_or_else(|e| {
        log::error!("admin: cannot write a JSON answer: {e}");
        String::from("{}")
    })
}

/// Each limited client key: its limits, what is left of them, requests in flight, and spend.
pub fn keys(all: &[crate::limits::registry::KeyStatus]) -> String {
    #[derive(Serialize)]
    struct Rate {
        per_minute: u64,
        remaining: u64,
    }
    #[derive(Serialize)]
    struct Key<'a> {
        name: &'a str,
        requests: Option<Rate>,
        input_tokens: Option<Rate>,
        output_tokens: Option<Rate>,
        in_flight: u32,
        max_concurrent: Option<u32>,
        spent_today_usd: f64,
        spent_this_month_usd: f64,
        daily_usd: Option<f64>,
        monthly_usd: Option<f64>,
    }
    #[derive(Serialize)]
    struct Doc<'a> {
        keys: Vec<Key<'a>>,
    }
    let rate = |l: crate::limits::registry::Level| {
        (l.limit > 0).then_some(Rate {
            per_minute: l.limit,
            remaining: l.remaining,
        })
    };
    let usd = |micro: u64| micro as f64 / 1e6;
    let keys = all
        .iter()
        .map(|k| Key {
            name: &k.name,
            requests: rate(k.requests),
            input_tokens: rate(k.input_tokens),
            output_tokens: rate(k.output_tokens),
            in_flight: k.in_flight,
            max_concurrent: (k.max_concurrent > 0).then_some(k.max_concurrent),
            spent_today_usd: usd(k.spent_day),
            spent_this_month_usd: usd(k.spent_month),
            daily_usd: k.daily.map(usd),
            monthly_usd: k.monthly.map(usd),
        })
        .collect();
    to_json(&Doc { keys })
}

pub fn key_reset(name: &str) -> String {
    #[derive(Serialize)]
    struct Doc<'a> {
        reset: bool,
        key: &'a str,
    }
    to_json(&Doc {
        reset: true,
        key: name,
    })
}

/// Each owner's batches and files, ids only: `{"owners":[{"owner":…,"batches":[…],"files":[…]}]}`
/// (an owner `null` for objects made while the gateway had no client keys).
pub fn objects(owners: &crate::admin::ObjectsByOwner) -> String {
    use crate::objects::store::Kind;
    #[derive(Serialize)]
    struct Owner<'a> {
        owner: Option<&'a str>,
        batches: Vec<&'a str>,
        files: Vec<&'a str>,
    }
    #[derive(Serialize)]
    struct View<'a> {
        owners: Vec<Owner<'a>>,
    }
    let owners = owners
        .iter()
        .map(|(owner, objects)| {
            let of = |kind: Kind| {
                (objects.iter())
                    .filter(|(k, _)| *k == kind)
                    .map(|(_, id)| id.as_str())
                    .collect()
            };
            Owner {
                owner: (!owner.is_empty()).then_some(owner.as_str()),
                batches: of(Kind::Batch),
                files: of(Kind::File),
            }
        })
        .collect();
    serde_json::to_string_pretty(&View { owners }).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::pool::ModelStatus;

    fn status(models: Vec<ModelStatus>) -> CredentialStatus {
        CredentialStatus {
            upstream: "anthropic".into(),
            credential: "key-1".into(),
            weight: 2,
            disabled_until_unix_ms: None,
            upstream_unreachable_until_unix_ms: None,
            models,
        }
    }

    fn model(cooling: bool, until: Option<u64>, probing: bool) -> ModelStatus {
        ModelStatus {
            model: "claude-x".into(),
            cooling_until_unix_ms: until,
            cooling,
            reason: until.map(|_| Reason::RateLimit),
            consecutive_rate_limits: u32::from(until.is_some()),
            probing,
        }
    }

    #[test]
    fn states_in_order_of_severity() {
        assert_eq!(status(vec![]).state(), "available");
        assert_eq!(status(vec![model(false, None, false)]).state(), "available");
        assert_eq!(
            status(vec![model(true, Some(2_000), false)]).state(),
            "cooling"
        );
        assert_eq!(
            status(vec![model(false, Some(1_000), false)]).state(),
            "probe_pending"
        );
        assert_eq!(
            status(vec![model(false, Some(1_000), true)]).state(),
            "probe_pending"
        );
        let mut s = status(vec![model(true, Some(2_000), false)]);
        s.upstream_unreachable_until_unix_ms = Some(3_000);
        assert_eq!(s.state(), "unreachable");
        s.disabled_until_unix_ms = Some(4_000);
        assert_eq!(s.state(), "disabled");
    }

    #[test]
    fn credentials_document() {
        let json = credentials(&[status(vec![model(true, Some(1_795_000_000_000), false)])]);
        let v: simd_json::OwnedValue =
            simd_json::from_slice(&mut json.clone().into_bytes()).unwrap();
        use simd_json::prelude::*;
        let c = &v["credentials"][0];
        assert_eq!(c["state"].as_str(), Some("cooling"));
        assert_eq!(c["upstream"].as_str(), Some("anthropic"));
        let m = &c["models"][0];
        assert_eq!(m["reason"].as_str(), Some("rate_limited"));
        assert_eq!(
            m["cooling_until"]["unix_ms"].as_u64(),
            Some(1_795_000_000_000)
        );
        assert!(m["cooling_until"]["rfc3339"]
            .as_str()
            .unwrap()
            .starts_with("2026-"));
        assert!(c["disabled_until"].is_null());
    }
}
