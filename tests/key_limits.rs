//! Limits and budgets per client key, one gateway process, over real sockets: requests per
//! minute exact across two workers, output tokens settled from a stream's own usage, requests
//! in flight with held streams, a spent budget, and Anthropic's rate-limit headers describing
//! the gateway's limits on every answer to a limited key.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use support::*;

const OK: &str = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":10,"output_tokens":5}}"#;
const BODY: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hello"}]}"#;

/// A gateway with two workers in front of `up`, and the client keys `limited` (with these
/// limit lines) and `free`.
fn gateway_with(up: SocketAddr, limits: &str, extra: &str) -> ringgate::GatewayHandle {
    gateway(&config(up, limits, extra, &state_dir("default")))
}

/// A state directory of the test's own (spend is kept there).
fn state_dir(name: &str) -> PathBuf {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "ringgate-key-limits-{name}-{}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn config(up: SocketAddr, limits: &str, extra: &str, dir: &Path) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 2\n[state]\ndir = {dir:?}\n{extra}\n\
         [[upstreams]]\nname = \"up\"\nkind = \"anthropic\"\nbase_url = \"http://{up}\"\n\
         [[upstreams.credentials]]\nname = \"a\"\napi_key = \"key-a\"\n\
         [[api_keys]]\nname = \"limited\"\nkey = \"ck-limited\"\n{limits}\n\
         [[api_keys]]\nname = \"free\"\nkey = \"ck-free\"\n"
    )
}

fn post(key: &str) -> Vec<u8> {
    format!(
        "POST /v1/messages HTTP/1.1\r\nHost: gw\r\nx-api-key: {key}\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    )
    .into_bytes()
}

fn ok_upstream() -> Upstream {
    Upstream::start(|_| {
        let limits = "anthropic-ratelimit-requests-limit: 4000\r\n";
        Action::Send(vec![json_response(200, OK, limits)], Duration::ZERO)
    })
}

#[test]
fn a_60_per_minute_key_gets_exactly_60_of_100_through_two_workers() {
    let up = ok_upstream();
    let gw = gateway_with(up.addr, "requests_per_minute = 60", "");
    let addr = gw.local_addr();
    let (ok, limited) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let (ok, limited) = (ok.clone(), limited.clone());
            thread::spawn(move || {
                for _ in 0..10 {
                    let r = request(addr, &post("ck-limited"));
                    match r.status {
                        200 => {
                            // The gateway's limits, not the upstream account's.
                            assert_eq!(
                                r.header("anthropic-ratelimit-requests-limit").as_deref(),
                                Some("60")
                            );
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        429 => {
                            let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
                            assert!((1..=2).contains(&wait), "retry-after {wait}");
                            assert!(r.text().contains("rate_limit_error"), "{}", r.text());
                            assert_eq!(
                                r.header("anthropic-ratelimit-requests-remaining")
                                    .as_deref(),
                                Some("0")
                            );
                            limited.fetch_add(1, Ordering::Relaxed);
                        }
                        s => panic!("status {s}: {}", r.text()),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // One token refills per second: a slow machine may see one more.
    let admitted = ok.load(Ordering::Relaxed);
    assert!((60..=61).contains(&admitted), "admitted {admitted}");
    assert_eq!(admitted + limited.load(Ordering::Relaxed), 100);
    assert_eq!(
        up.requests().len(),
        admitted,
        "nothing refused reached the upstream"
    );

    // A key without limits is not counted, and gets the upstream's headers as they are.
    let r = request(addr, &post("ck-free"));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("anthropic-ratelimit-requests-limit").as_deref(),
        Some("4000")
    );
    gw.shutdown();
}

/// A stream whose usage says `output` tokens.
fn stream_with_usage(output: u64) -> Vec<u8> {
    let mut events = sse_events(3);
    let n = events.len();
    events[n - 2] = format!(
        "event: message_delta\ndata: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"end_turn\"}},\"usage\":{{\"output_tokens\":{output}}}}}\n\n"
    );
    let mut raw = SSE_HEAD.to_vec();
    raw.extend_from_slice(&chunked_body(&events));
    raw
}

#[test]
fn output_tokens_are_settled_from_the_streams_own_usage() {
    let up = Upstream::start(|_| Action::Send(vec![stream_with_usage(150)], Duration::ZERO));
    let gw = gateway_with(up.addr, "output_tokens_per_minute = 100", "");
    let addr = gw.local_addr();
    let stream_req = |key: &str| {
        let body = BODY.replace("\"max_tokens\":16", "\"stream\":true,\"max_tokens\":16");
        format!(
            "POST /v1/messages HTTP/1.1\r\nHost: gw\r\nx-api-key: {key}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let r = request(addr, &stream_req("ck-limited"));
    assert_eq!(r.status, 200);
    assert!(r.text().contains("message_stop"));
    assert_eq!(
        r.header("anthropic-ratelimit-output-tokens-limit")
            .as_deref(),
        Some("100")
    );
    // 150 of 100 spent: the key waits until the debt has refilled (about 30 s).
    let r = request(addr, &stream_req("ck-limited"));
    assert_eq!(r.status, 429, "{}", r.text());
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((25..=31).contains(&wait), "retry-after {wait}");
    assert!(r.text().contains("output"), "{}", r.text());
    assert_eq!(request(addr, &stream_req("ck-free")).status, 200);
    gw.shutdown();
}

#[test]
fn requests_in_flight_are_capped_streams_included() {
    let release = Arc::new(AtomicUsize::new(0));
    let seen = release.clone();
    let up = Upstream::start(move |_| {
        // Hold each answer until the test lets it go.
        while seen.load(Ordering::Relaxed) == 0 {
            thread::sleep(Duration::from_millis(5));
        }
        Action::Send(vec![stream_with_usage(1)], Duration::ZERO)
    });
    let gw = gateway_with(up.addr, "max_concurrent = 2", "");
    let addr = gw.local_addr();
    let held: Vec<_> = (0..2)
        .map(|_| thread::spawn(move || request(addr, &post("ck-limited")).status))
        .collect();
    // Wait until both reached the upstream.
    for _ in 0..400 {
        if up.requests().len() == 2 {
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(up.requests().len(), 2);
    let r = request(addr, &post("ck-limited"));
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(
        r.text().contains("in flight") || r.text().contains("concurren"),
        "{}",
        r.text()
    );
    release.store(1, Ordering::Relaxed);
    for h in held {
        assert_eq!(h.join().unwrap(), 200);
    }
    assert_eq!(request(addr, &post("ck-limited")).status, 200);
    gw.shutdown();
}

#[test]
fn a_spent_budget_is_refused_with_a_status_the_sdks_do_not_retry() {
    let up = ok_upstream();
    // 10 input and 5 output tokens of Sonnet cost $0.000105: the first request spends it all.
    let gw = gateway_with(up.addr, "daily_usd = 0.0001", "");
    let addr = gw.local_addr();
    assert_eq!(request(addr, &post("ck-limited")).status, 200);
    let r = request(addr, &post("ck-limited"));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("daily"), "{}", r.text());
    assert!(r.text().contains("renews"), "{}", r.text());
    assert_eq!(up.requests().len(), 1);
    // A model the gateway has no price for cannot be spent on.
    let unknown = BODY.replace("claude-sonnet-4-5", "mystery-model");
    let raw = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: gw\r\nx-api-key: ck-free\r\nContent-Length: {}\r\n\r\n{unknown}",
        unknown.len()
    );
    assert_eq!(
        request(addr, raw.as_bytes()).status,
        200,
        "no budget, no price needed"
    );
    gw.shutdown();

    let gw = gateway_with(up.addr, "monthly_usd = 100", "");
    let raw = raw.replace("ck-free", "ck-limited");
    let r = request(gw.local_addr(), raw.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("mystery-model"), "{}", r.text());
    gw.shutdown();
}

#[test]
fn limits_come_from_the_limits_table_unless_a_key_sets_its_own() {
    let up = ok_upstream();
    let gw = gateway_with(up.addr, "", "[limits]\nrequests_per_minute = 2\n");
    let addr = gw.local_addr();
    for key in ["ck-limited", "ck-free"] {
        assert_eq!(request(addr, &post(key)).status, 200);
        assert_eq!(request(addr, &post(key)).status, 200);
        assert_eq!(request(addr, &post(key)).status, 429, "{key}");
    }
    gw.shutdown();
    let bad = ringgate::Config::parse(
        "[[upstreams]]\nname = \"m\"\nkind = \"mock\"\n[[api_keys]]\nname = \"k\"\nkey = \"kk\"\nmax_concurrent = 0\n",
        "t",
        &|_| None,
    );
    assert!(bad.unwrap_err().to_string().contains("max_concurrent"));
}

fn admin_get(addr: SocketAddr, path: &str) -> Response {
    request(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(),
    )
}

#[test]
fn spend_and_counts_survive_a_restart_and_a_reload_and_operators_see_and_reset_them() {
    let up = ok_upstream();
    let dir = state_dir("restart");
    let admin = "[admin]\nlisten = \"127.0.0.1:0\"\n";
    let limits = "requests_per_minute = 3\nmonthly_usd = 100";
    let gw = gateway(&config(up.addr, limits, admin, &dir));
    for _ in 0..2 {
        assert_eq!(request(gw.local_addr(), &post("ck-limited")).status, 200);
    }
    let a = gw.admin_addr().unwrap();
    let view: serde_json::Value =
        serde_json::from_slice(&admin_get(a, "/admin/keys").body).unwrap();
    let key = &view["keys"][0];
    assert_eq!(key["name"], "limited");
    assert_eq!(key["requests"]["per_minute"], 3);
    assert_eq!(key["requests"]["remaining"], 1);
    // Two answers of 10 input and 5 output Sonnet tokens: $0.00021.
    assert!(
        (key["spent_this_month_usd"].as_f64().unwrap() - 0.00021).abs() < 1e-9,
        "{key}"
    );
    let metrics = admin_get(a, "/metrics").text();
    for line in [
        "ringgate_key_limit{key=\"limited\",limit=\"requests_per_minute\"} 3",
        "ringgate_key_remaining{key=\"limited\",limit=\"requests_per_minute\"} 1",
        "ringgate_key_spend_usd{key=\"limited\",period=\"month\"} 0.00021",
        "ringgate_key_budget_usd{key=\"limited\",period=\"month\"} 100",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    gw.shutdown();
    let saved = std::fs::read_to_string(dir.join("spend.json")).unwrap();
    assert!(saved.contains("\"limited\""), "{saved}");

    // A restart: the spend is back (the minute's counts start afresh: they live in memory).
    let gw = gateway(&config(up.addr, limits, admin, &dir));
    let a = gw.admin_addr().unwrap();
    let view: serde_json::Value =
        serde_json::from_slice(&admin_get(a, "/admin/keys").body).unwrap();
    assert!((view["keys"][0]["spent_this_month_usd"].as_f64().unwrap() - 0.00021).abs() < 1e-9);
    for _ in 0..3 {
        assert_eq!(request(gw.local_addr(), &post("ck-limited")).status, 200);
    }
    assert_eq!(request(gw.local_addr(), &post("ck-limited")).status, 429);
    // A reload to 5 a minute keeps the 3 taken: 2 more pass, at once.
    let raised = config(
        up.addr,
        "requests_per_minute = 5\nmonthly_usd = 100",
        admin,
        &dir,
    );
    let raised = ringgate::Config::parse(&raised, "t", &|_| None).unwrap();
    gw.control().reload(raised).unwrap();
    let statuses: Vec<u16> = (0..3)
        .map(|_| request(gw.local_addr(), &post("ck-limited")).status)
        .collect();
    assert_eq!(statuses, [200, 200, 429]);
    // An operator's reset: full buckets, no spend.
    let r = request(
        a,
        b"POST /admin/keys/limited/reset HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let view: serde_json::Value =
        serde_json::from_slice(&admin_get(a, "/admin/keys").body).unwrap();
    assert_eq!(view["keys"][0]["requests"]["remaining"], 5);
    assert_eq!(view["keys"][0]["spent_this_month_usd"], 0.0);
    let r = request(
        a,
        b"POST /admin/keys/nobody/reset HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 404);
    gw.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
