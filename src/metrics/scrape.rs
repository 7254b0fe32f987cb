//! A scrape: every worker's shard summed, plus what is read from shared state at that moment
//! (credential states), written out in the Prometheus text format.
//!
//! Runs on the admin thread; it only loads atomics and `ArcSwap`ed lists, so no worker ever
//! waits for it.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::cell::{
    Counter, Gauge, Histogram, HistogramSnapshot, OVERHEAD_SECONDS, REQUEST_SECONDS,
};
use super::family::Published;
use super::text::Exposition;
use super::{Shard, Tokens};
use crate::limits::registry::KeyStatus;
use crate::routing::pool::CredentialStatus;
use crate::upstream::pool::PoolStats;

/// What one scrape reads.
pub struct Scrape<'a> {
    pub shards: &'a [Arc<Shard>],
    pub credentials: &'a [CredentialStatus],
    /// Limited client keys.
    pub keys: &'a [KeyStatus],
    /// The configuration generation being served (1 at start, +1 per reload).
    pub generation: u64,
    pub access_log_dropped: u64,
}

type Labelled = fn(&Shard) -> &Published<Counter>;
type Timed = fn(&Shard) -> &[Histogram; 2];

/// The labelled counters: name, help, label names, and where each shard keeps them.
const LABELLED: [(&str, &str, &[&str], Labelled); 3] = [
    (
        "ringgate_requests_total",
        "Requests answered, by endpoint, status and model (499: the client left first).",
        &["route", "status", "model"],
        |s| &s.requests,
    ),
    (
        "ringgate_upstream_attempts_total",
        "Attempts at an upstream, by upstream, credential name and outcome.",
        &["upstream", "credential", "outcome"],
        |s| &s.attempts,
    ),
    (
        "ringgate_failovers_total",
        "Requests moved on to another credential, by the upstream and credential they left.",
        &["upstream", "credential"],
        |s| &s.failovers,
    ),
];

const HISTOGRAMS: [(&str, &str, &[f64], Timed); 3] = [
    (
        "ringgate_time_to_first_byte_seconds",
        "From the whole request received to the first byte written to the client.",
        REQUEST_SECONDS,
        |s| &s.first_byte,
    ),
    (
        "ringgate_request_duration_seconds",
        "From the whole request received to the end of the response.",
        REQUEST_SECONDS,
        |s| &s.duration,
    ),
    (
        "ringgate_gateway_overhead_seconds",
        "The gateway's own time per request: the duration less the time spent on upstreams.",
        OVERHEAD_SECONDS,
        |s| &s.overhead,
    ),
];

pub fn render(s: &Scrape<'_>, out: &mut String) {
    let mut e = Exposition::new(out);
    let shards = s.shards;
    for (name, help, names, family) in LABELLED {
        e.family(name, "counter", help);
        let sums = merge(shards, family, |c: &Counter, n: &mut u64| *n += c.get());
        for (values, n) in sums {
            let labels: Vec<(&str, &str)> = names
                .iter()
                .copied()
                .zip(values.iter().map(|v| &**v))
                .collect();
            e.sample(name, &labels, n);
        }
    }
    credentials(&mut e, s.credentials);
    keys(&mut e, s.keys);
    let gauge = |f: fn(&Shard) -> &Gauge| shards.iter().map(|s| f(s).get()).sum::<i64>();
    for (name, help, v) in [
        (
            "ringgate_active_connections",
            "Client connections open.",
            gauge(|s| &s.connections),
        ),
        (
            "ringgate_active_streams",
            "Event streams being relayed.",
            gauge(|s| &s.streams),
        ),
    ] {
        e.family(name, "gauge", help);
        e.sample(name, &[], v);
    }
    for (name, help, bounds, pick) in HISTOGRAMS {
        e.family(name, "histogram", help);
        for (i, stream) in ["false", "true"].into_iter().enumerate() {
            let mut h = HistogramSnapshot::default();
            for shard in shards {
                h.merge(&pick(shard)[i].snapshot());
            }
            e.histogram(name, &[("stream", stream)], bounds, &h);
        }
    }
    for (name, help, v) in totals(s) {
        e.family(name, "counter", help);
        e.sample(name, &[], v);
    }
    tokens(&mut e, shards);
    e.family(
        "ringgate_config_generation",
        "gauge",
        "The configuration generation served: 1 at start, one more per reload.",
    );
    e.sample("ringgate_config_generation", &[], s.generation);
    e.family("ringgate_build_info", "gauge", "The running version.");
    let version = [("version", env!("CARGO_PKG_VERSION"))];
    e.sample("ringgate_build_info", &version, 1);
}

/// Credentials by upstream and state, as the pool sees them now.
/// Each limited key's limits, what is left of them, requests in flight and spend.
fn keys(e: &mut Exposition<'_>, all: &[KeyStatus]) {
    e.family(
        "ringgate_key_limit",
        "gauge",
        "A client key's limit, by key name and limit (per minute, or requests in flight).",
    );
    for k in all {
        for (limit, value) in key_limits(k) {
            if value.0 > 0 {
                e.sample(
                    "ringgate_key_limit",
                    &[("key", &k.name), ("limit", limit)],
                    value.0,
                );
            }
        }
    }
    e.family(
        "ringgate_key_remaining",
        "gauge",
        "What is left of a client key's limit now (requests in flight: in use).",
    );
    for k in all {
        for (limit, value) in key_limits(k) {
            if value.0 > 0 {
                let labels = [("key", k.name.as_str()), ("limit", limit)];
                e.sample("ringgate_key_remaining", &labels, value.1);
            }
        }
    }
    e.family(
        "ringgate_key_spend_usd",
        "gauge",
        "A client key's spend in the current UTC day or month, priced by [prices].",
    );
    for k in all {
        for (period, micro) in [("day", k.spent_day), ("month", k.spent_month)] {
            let usd = micro as f64 / 1e6;
            e.sample(
                "ringgate_key_spend_usd",
                &[("key", &k.name), ("period", period)],
                usd,
            );
        }
    }
    e.family(
        "ringgate_key_budget_usd",
        "gauge",
        "A client key's budget per UTC day or month.",
    );
    for k in all {
        for (period, micro) in [("day", k.daily), ("month", k.monthly)] {
            if let Some(micro) = micro {
                let usd = micro as f64 / 1e6;
                e.sample(
                    "ringgate_key_budget_usd",
                    &[("key", &k.name), ("period", period)],
                    usd,
                );
            }
        }
    }
}

/// A key's limits as (name, (limit, remaining or in use)).
fn key_limits(k: &KeyStatus) -> [(&'static str, (u64, u64)); 4] {
    [
        (
            "requests_per_minute",
            (k.requests.limit, k.requests.remaining),
        ),
        (
            "input_tokens_per_minute",
            (k.input_tokens.limit, k.input_tokens.remaining),
        ),
        (
            "output_tokens_per_minute",
            (k.output_tokens.limit, k.output_tokens.remaining),
        ),
        (
            "max_concurrent",
            (u64::from(k.max_concurrent), u64::from(k.in_flight)),
        ),
    ]
}

fn credentials(e: &mut Exposition<'_>, all: &[CredentialStatus]) {
    e.family(
        "ringgate_credentials",
        "gauge",
        "Credentials by upstream and state (available, cooling, probe_pending, unreachable, disabled).",
    );
    let mut states: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for c in all {
        *states.entry((&c.upstream, c.state())).or_default() += 1;
    }
    for ((upstream, state), n) in states {
        e.sample(
            "ringgate_credentials",
            &[("upstream", upstream), ("state", state)],
            n,
        );
    }
}

/// The unlabelled counters, summed over the shards.
fn totals(s: &Scrape<'_>) -> [(&'static str, &'static str, u64); 9] {
    let shards = s.shards;
    let total = |f: fn(&Shard) -> &Counter| shards.iter().map(|s| f(s).get()).sum::<u64>();
    let pool: PoolStats = (shards.iter())
        .map(|s| s.pool.read())
        .fold(PoolStats::default(), |a, b| a + b);
    [
        (
            "ringgate_request_body_bytes_total",
            "Request body bytes received from clients.",
            total(|s| &s.body_in),
        ),
        (
            "ringgate_response_body_bytes_total",
            "Response body bytes sent to clients.",
            total(|s| &s.body_out),
        ),
        (
            "ringgate_stream_events_total",
            "Events relayed in event streams.",
            total(|s| &s.stream_events),
        ),
        (
            "ringgate_stream_client_writes_total",
            "Writes to clients in event streams (divided by events: the coalescing ratio).",
            total(|s| &s.stream_writes),
        ),
        (
            "ringgate_upstream_pool_hits_total",
            "Upstream requests sent on a pooled (kept-alive) connection.",
            pool.reused,
        ),
        (
            "ringgate_upstream_pool_misses_total",
            "Upstream connections opened because none was idle.",
            pool.opened,
        ),
        (
            "ringgate_upstream_pool_stale_retries_total",
            "Requests sent again on a new connection after a pooled one turned out closed.",
            pool.stale_retries,
        ),
        (
            "ringgate_upstream_pool_idle_dropped_total",
            "Idle upstream connections closed (timed out, closed by the upstream, over the limit).",
            pool.dropped_idle,
        ),
        (
            "ringgate_access_log_dropped_lines_total",
            "Access log lines dropped because stderr did not keep up.",
            s.access_log_dropped,
        ),
    ]
}

fn tokens(e: &mut Exposition<'_>, shards: &[Arc<Shard>]) {
    e.family(
        "ringgate_tokens_total",
        "counter",
        "Tokens the upstreams reported, by client key name, model and kind.",
    );
    let sums = merge(
        shards,
        |s| &s.tokens,
        |t: &Tokens, sum: &mut [u64; 4]| {
            sum[0] += t.input.get();
            sum[1] += t.output.get();
            sum[2] += t.cache_creation.get();
            sum[3] += t.cache_read.get();
        },
    );
    const KINDS: [&str; 4] = ["input", "output", "cache_creation", "cache_read"];
    for (l, counts) in sums {
        for (kind, n) in KINDS.into_iter().zip(counts) {
            let labels = [("client", &*l[0]), ("model", &l[1]), ("kind", kind)];
            e.sample("ringgate_tokens_total", &labels, n);
        }
    }
}

/// A family summed over the shards, one value per label set, in label order.
fn merge<V, T: Default>(
    shards: &[Arc<Shard>],
    family: fn(&Shard) -> &Published<V>,
    add: impl Fn(&V, &mut T),
) -> BTreeMap<Vec<String>, T> {
    let mut all: BTreeMap<Vec<String>, T> = BTreeMap::new();
    for shard in shards {
        for entry in family(shard).load().iter() {
            let labels = entry.labels.iter().map(|l| l.to_string()).collect();
            add(&entry.value, all.entry(labels).or_default());
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{Ending, Facts, Summary};
    use crate::metrics::Recorder;
    use crate::stream::tally::Usage;
    use std::time::Duration;

    fn summary(model: &'static str, status: u16, stream: bool) -> Summary<'static> {
        Summary {
            id: "req_1",
            method: "POST",
            path: "/v1/messages",
            route: "messages",
            client: Some("team"),
            model: Some(model),
            stream,
            upstream: Some("up"),
            credential: Some("a"),
            body_in: 100,
            facts: Facts {
                status,
                ending: Ending::Complete,
                attempts: 1,
                first_byte: Some(Duration::from_millis(3)),
                duration: Duration::from_millis(10),
                upstream_time: Duration::from_millis(9),
                usage: Usage {
                    input_tokens: 7,
                    output_tokens: 5,
                    ..Usage::default()
                },
                body_out: 50,
                client_writes: 4,
                events: 16,
                event_stream: stream,
            },
        }
    }

    #[test]
    fn shards_are_summed_by_label_set() {
        let shards: Vec<Arc<Shard>> = (0..2).map(|_| Arc::default()).collect();
        for shard in &shards {
            let r = Recorder::new(shard.clone());
            r.request(&summary("m\"1", 200, true));
            r.request(&summary("m2", 429, false));
            r.attempt("up", "a", "success");
        }
        let mut out = String::new();
        let s = Scrape {
            shards: &shards,
            credentials: &[],
            keys: &[],
            generation: 3,
            access_log_dropped: 0,
        };
        render(&s, &mut out);
        for line in [
            "ringgate_requests_total{route=\"messages\",status=\"200\",model=\"m\\\"1\"} 2",
            "ringgate_requests_total{route=\"messages\",status=\"429\",model=\"m2\"} 2",
            "ringgate_upstream_attempts_total{upstream=\"up\",credential=\"a\",outcome=\"success\"} 2",
            "ringgate_tokens_total{client=\"team\",model=\"m2\",kind=\"output\"} 10",
            "ringgate_stream_events_total 32",
            "ringgate_stream_client_writes_total 8",
            "ringgate_request_body_bytes_total 400",
            "ringgate_gateway_overhead_seconds_bucket{stream=\"true\",le=\"0.001\"} 2",
            "ringgate_gateway_overhead_seconds_count{stream=\"false\"} 2",
            "ringgate_config_generation 3",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} not in\n{out}");
        }
        // Each sample once: no label set repeated across shards.
        let samples: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
        let mut keys: Vec<&str> = samples
            .iter()
            .map(|l| l.rsplit_once(' ').unwrap().0)
            .collect();
        keys.sort();
        let before = keys.len();
        keys.dedup();
        assert_eq!(before, keys.len());
    }
}
