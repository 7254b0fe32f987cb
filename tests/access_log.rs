//! The access log of the `ringgate` binary: one line per request on stderr, in JSON or text,
//! filtered by `log.level` (and `RUST_LOG`, which wins), never with a key in it.

mod support;

use std::time::{Duration, Instant};

use simd_json::prelude::*;
use simd_json::OwnedValue;
use support::process::Process;
use support::*;

const BODY: &str = r#"{"model":"x","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#;
const STREAM_BODY: &str = r#"{"model":"claude-x","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

fn config(upstream: std::net::SocketAddr, log: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 2\n[log]\n{log}\n{}",
        two_credentials(upstream)
    )
}

/// The access lines of the log, once there are `n` of them.
fn access_lines(gw: &Process, marker: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<String> = gw
            .log()
            .lines()
            .filter(|l| l.contains(marker))
            .map(str::to_string)
            .collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} lines:\n{}",
            lines.len(),
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn parse(line: &str) -> OwnedValue {
    simd_json::from_slice(&mut line.as_bytes().to_vec())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

fn by_status(lines: &[OwnedValue], status: u64) -> &OwnedValue {
    let mut found = lines
        .iter()
        .filter(|l| l["status"].as_u64() == Some(status));
    let one = found.next().unwrap_or_else(|| panic!("no {status} line"));
    assert!(found.next().is_none(), "two {status} lines");
    one
}

#[test]
fn json_lines_say_what_became_of_each_request() {
    let up = rate_limiting_upstream();
    let gw = Process::start(&config(up.addr, "format = \"json\""));
    let post = |body: &str, key: &str, path: &str| {
        let raw = with_key(messages_request(body, ""), key);
        let raw = String::from_utf8(raw)
            .unwrap()
            .replacen("/v1/messages", path, 1);
        request(gw.addr, raw.as_bytes())
    };
    assert_eq!(
        post(BODY, "client-key", "/v1/messages?beta=true").status,
        200
    );
    assert_eq!(
        post(STREAM_BODY, "other-client-key", "/v1/messages").status,
        200
    );
    assert_eq!(post(BODY, "not-a-key", "/v1/messages").status, 401);
    assert_eq!(
        request(gw.addr, b"GET /nowhere HTTP/1.1\r\nHost: g\r\n\r\n").status,
        404
    );
    assert_eq!(request(gw.addr, b"BAD\r\n\r\n").status, 400);

    let lines: Vec<OwnedValue> = access_lines(&gw, "\"type\":\"access\"", 5)
        .iter()
        .map(|l| parse(l))
        .collect();
    assert_eq!(lines.len(), 5);
    // Every line of the log is JSON, the gateway's own lines too.
    for line in gw.log().lines() {
        let v = parse(line);
        assert!(
            v["time"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{line}"
        );
    }

    let failover = lines
        .iter()
        .find(|l| l["status"].as_u64() == Some(200) && l["stream"].as_bool() == Some(false))
        .expect("the failed-over request's line");
    let s = |v: &OwnedValue, k: &str| v[k].as_str().map(str::to_string);
    let n = |v: &OwnedValue, k: &str| v[k].as_u64();
    assert_eq!(s(failover, "client").as_deref(), Some("team-a"));
    assert_eq!(s(failover, "method").as_deref(), Some("POST"));
    assert_eq!(
        s(failover, "path").as_deref(),
        Some("/v1/messages"),
        "no query string"
    );
    assert_eq!(s(failover, "route").as_deref(), Some("messages"));
    assert_eq!(
        s(failover, "model").as_deref(),
        Some("claude-x"),
        "the alias resolved"
    );
    assert_eq!(s(failover, "upstream").as_deref(), Some("up"));
    assert_eq!(s(failover, "credential").as_deref(), Some("b"));
    assert_eq!(n(failover, "attempts"), Some(2));
    assert_eq!(
        [n(failover, "input_tokens"), n(failover, "output_tokens")],
        [Some(11), Some(7)]
    );
    assert_eq!(
        [
            n(failover, "cache_creation_input_tokens"),
            n(failover, "cache_read_input_tokens")
        ],
        [Some(2), Some(5)]
    );
    assert_eq!(n(failover, "body_bytes_in"), Some(BODY.len() as u64));
    assert_eq!(s(failover, "outcome").as_deref(), Some("complete"));
    let (ttfb, total) = (
        failover["ttfb_ms"].as_f64().unwrap(),
        failover["duration_ms"].as_f64().unwrap(),
    );
    let overhead = failover["overhead_ms"].as_f64().unwrap();
    assert!(
        0.0 < ttfb && ttfb <= total && overhead <= total,
        "{ttfb} {total} {overhead}"
    );
    assert!(s(failover, "request_id").unwrap().starts_with("req_"));

    let stream = lines
        .iter()
        .find(|l| l["stream"].as_bool() == Some(true))
        .unwrap();
    assert_eq!(s(stream, "client").as_deref(), Some("team-b"));
    assert_eq!(n(stream, "attempts"), Some(1), "a was cooling by then");
    assert_eq!(
        [n(stream, "input_tokens"), n(stream, "output_tokens")],
        [Some(3), Some(9)]
    );
    assert_eq!(n(stream, "events"), Some(9));
    assert!(n(stream, "client_writes").is_some_and(|w| (1..=9).contains(&w)));

    let refused = by_status(&lines, 401);
    assert!(refused["client"].is_null() && refused["upstream"].is_null());
    assert_eq!(n(refused, "attempts"), Some(0));
    assert_eq!(
        s(by_status(&lines, 404), "route").as_deref(),
        Some("unknown")
    );
    let malformed = by_status(&lines, 400);
    assert_eq!(s(malformed, "method").as_deref(), Some("-"));

    let log = gw.log();
    for secret in [LIMITED_KEY, SERVED_KEY, "client-key", "not-a-key"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[test]
fn text_lines_and_the_level_filter() {
    let up = rate_limiting_upstream();
    // The default format; RUST_LOG unset, so log.level decides: access lines off.
    let quiet = "level = \"info,ringgate::access=off\"";
    let gw = Process::start_with(&config(up.addr, quiet), &[("RUST_LOG", None)]);
    assert_eq!(request(gw.addr, &messages_request(BODY, "")).status, 200);
    assert_eq!(
        request(gw.addr, b"GET /healthz HTTP/1.1\r\nHost: g\r\n\r\n").status,
        200
    );
    // Lines are handed over every 250 ms: give them more than that.
    std::thread::sleep(Duration::from_millis(700));
    assert!(!gw.log().contains(" access req_"), "{}", gw.log());
    drop(gw);

    // RUST_LOG wins over log.level.
    let gw = Process::start_with(&config(up.addr, quiet), &[("RUST_LOG", Some("info"))]);
    assert_eq!(request(gw.addr, &messages_request(BODY, "")).status, 200);
    let line = access_lines(&gw, " access req_", 1).remove(0);
    for part in [
        " POST /v1/messages 200 client=team-a model=claude-x stream=false upstream=up/b attempts=2 ",
        " tokens_in=11 tokens_out=7 cache_write=2 cache_read=5 ",
        " outcome=complete",
    ] {
        assert!(line.contains(part), "{part:?} not in {line}");
    }
    assert!(line.contains("Z access req_"), "{line}");
}

#[test]
fn lines_still_buffered_are_written_before_exit() {
    let up = rate_limiting_upstream();
    let mut gw = Process::start(&config(up.addr, ""));
    assert_eq!(request(gw.addr, &messages_request(BODY, "")).status, 200);
    gw.signal(libc::SIGTERM);
    assert!(gw
        .wait_exit(Duration::from_secs(10))
        .is_some_and(|s| s.success()));
    // The reader thread may still be taking in the last lines.
    assert!(
        gw.wait_log(" access req_", 1, Duration::from_secs(2)),
        "{}",
        gw.log()
    );
}

#[test]
fn a_reload_changes_the_format_at_once() {
    let up = rate_limiting_upstream();
    let gw = Process::start(&config(up.addr, "format = \"text\""));
    assert_eq!(request(gw.addr, &messages_request(BODY, "")).status, 200);
    access_lines(&gw, " access req_", 1);
    gw.write_config(&config(up.addr, "format = \"json\""));
    gw.signal(libc::SIGHUP);
    assert!(
        gw.wait_log("generation 2 serving", 1, Duration::from_secs(10)),
        "{}",
        gw.log()
    );
    assert_eq!(request(gw.addr, &messages_request(BODY, "")).status, 200);
    let line = access_lines(&gw, "\"type\":\"access\"", 1).remove(0);
    assert_eq!(parse(&line)["credential"].as_str(), Some("b"));
}
