//! The credential pool over real sockets: failover before the first byte, what is never retried,
//! the all-cooling 429, probes, weights, affinity, aliases and model routing. The scripted
//! upstream answers by the `x-api-key` it receives, and its record of requests is what the
//! assertions count.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ringgate::routing::health::Reason;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use support::*;

const BODY: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"{\"model\": \"claude-fake\"}"}]}"#;
const OK: &str = r#"{"id":"msg_ok","type":"message"}"#;

/// A gateway config with one upstream holding these (name, key, weight) credentials.
fn pool_config(upstream: &str, routing: &str, credentials: &[(&str, &str, u32)]) -> String {
    let mut toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 2\n[routing]\n{routing}\n\
         [[upstreams]]\nname = \"up\"\nkind = \"anthropic\"\nbase_url = \"http://{upstream}\"\n\
         response_timeout_ms = 1000\n"
    );
    for (name, key, weight) in credentials {
        toml += &format!(
            "[[upstreams.credentials]]\nname = \"{name}\"\napi_key = \"{key}\"\nweight = {weight}\n"
        );
    }
    toml
}

const AB: &[(&str, &str, u32)] = &[("a", "key-a", 1), ("b", "key-b", 1)];

fn key_of(r: &Received) -> String {
    r.headers("x-api-key").concat()
}

fn keys(up: &Upstream) -> Vec<String> {
    up.requests().iter().map(key_of).collect()
}

fn send(raw: Vec<u8>) -> Action {
    Action::Send(vec![raw], Duration::ZERO)
}

/// An upstream answering `failing` (for key-a) and OK for everyone else.
fn a_fails_with(failing: Vec<u8>) -> Upstream {
    Upstream::start(move |r| {
        if key_of(r) == "key-a" {
            send(failing.clone())
        } else {
            send(json_response(200, OK, ""))
        }
    })
}

/// Fill-first makes `a` the first choice, so every test starts with it.
const A_FIRST: &str = "strategy = \"fill-first\"";

#[test]
fn fails_over_on_rate_limits_overload_server_errors_and_refused_keys() {
    for (status, extra) in [
        (429, "retry-after: 30\r\n"),
        (529, ""),
        (500, ""),
        (503, ""),
        (401, ""),
        (403, ""),
    ] {
        let up = a_fails_with(json_response(status, r#"{"type":"error"}"#, extra));
        let gw = gateway(&pool_config(&up.addr.to_string(), A_FIRST, AB));
        let resp = request(gw.local_addr(), &messages_request(BODY, ""));
        assert_eq!(
            (resp.status, resp.text()),
            (200, OK.into()),
            "after {status}"
        );
        let reqs = up.requests();
        assert_eq!(keys(&up), ["key-a", "key-b"], "after {status}");
        assert_eq!(reqs[1].body, BODY.as_bytes(), "replayed from the kept body");
        // The failed credential now cools: the next request goes straight to b.
        let resp = request(gw.local_addr(), &messages_request(BODY, ""));
        assert_eq!(resp.status, 200);
        assert_eq!(keys(&up).len(), 3, "after {status}: {:?}", keys(&up));
        assert_eq!(keys(&up)[2], "key-b", "after {status}");
    }
}

#[test]
fn fails_over_on_connection_refused_and_on_a_timeout() {
    let live = Upstream::start(|r| match key_of(r).as_str() {
        "key-slow" => Action::Stall,
        _ => send(json_response(200, OK, "")),
    });
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[routing]\n{A_FIRST}\n\
         [[upstreams]]\nname = \"dead\"\nkind = \"anthropic\"\nbase_url = \"http://{dead_addr}\"\npriority = 2\n\
         [[upstreams.credentials]]\nname = \"d\"\napi_key = \"key-dead\"\n\
         [[upstreams]]\nname = \"slow\"\nkind = \"anthropic\"\nbase_url = \"http://{}\"\npriority = 1\nresponse_timeout_ms = 300\n\
         [[upstreams.credentials]]\nname = \"s\"\napi_key = \"key-slow\"\n\
         [[upstreams]]\nname = \"good\"\nkind = \"anthropic\"\nbase_url = \"http://{}\"\n\
         [[upstreams.credentials]]\nname = \"g\"\napi_key = \"key-good\"\n",
        live.addr, live.addr
    );
    let gw = gateway(&toml);
    let resp = request(gw.local_addr(), &messages_request(BODY, ""));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(keys(&live), ["key-slow", "key-good"]);
    // Both were tried, not skipped. The dead upstream is avoided as a whole and its key is not
    // blamed; the slow one reached its upstream, so only that credential cools for the model.
    let snapshot = gw.pool().snapshot();
    let of = |name: &str| snapshot.iter().find(|c| c.credential == name).unwrap();
    let d = of("d");
    assert!(d.upstream_unreachable_until_unix_ms.is_some(), "{d:?}");
    assert!(d.models.is_empty(), "{:?}", d.models);
    let s = of("s");
    assert_eq!(s.upstream_unreachable_until_unix_ms, None);
    assert!(
        s.models[0].cooling && s.models[0].reason == Some(Reason::Transient),
        "{s:?}"
    );
    assert_eq!(of("g").upstream_unreachable_until_unix_ms, None);
}

#[test]
fn errors_the_request_causes_are_returned_at_once() {
    for status in [400, 404, 413, 422] {
        let up = a_fails_with(json_response(status, r#"{"type":"error","x":1}"#, ""));
        let gw = gateway(&pool_config(&up.addr.to_string(), A_FIRST, AB));
        let resp = request(gw.local_addr(), &messages_request(BODY, ""));
        assert_eq!(resp.status, status);
        assert_eq!(resp.text(), r#"{"type":"error","x":1}"#, "relayed as sent");
        assert_eq!(keys(&up), ["key-a"], "{status} is never retried");
    }
}

#[test]
fn attempts_stop_at_max_attempts_and_the_last_answer_is_relayed() {
    let up = Upstream::start(|_| send(json_response(500, r#"{"n":500}"#, "")));
    let three = &[("a", "key-a", 1), ("b", "key-b", 1), ("c", "key-c", 1)];
    let routing = format!("{A_FIRST}\nmax_attempts = 2");
    let gw = gateway(&pool_config(&up.addr.to_string(), &routing, three));
    let resp = request(gw.local_addr(), &messages_request(BODY, ""));
    assert_eq!((resp.status, resp.text()), (500, r#"{"n":500}"#.into()));
    assert_eq!(keys(&up), ["key-a", "key-b"]);
}

#[test]
fn when_all_are_rate_limited_or_disabled_the_gateway_answers_429_itself() {
    let in_20s = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(20));
    let up = Upstream::start(move |r| match key_of(r).as_str() {
        "key-a" => send(json_response(
            429,
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"up"}}"#,
            &format!("retry-after: {in_20s}\r\n"),
        )),
        _ => send(json_response(401, r#"{"type":"error"}"#, "")),
    });
    let gw = gateway(&pool_config(&up.addr.to_string(), A_FIRST, AB));
    // The first request tries both; then nothing is left: the gateway answers 429 itself, with
    // the soonest recovery (a's date, not b's 30 min), whatever order the failures came in.
    for (i, upstream_calls) in [(0, 2), (1, 2)] {
        let resp = request(gw.local_addr(), &messages_request(BODY, ""));
        assert_eq!(resp.status, 429, "request {i}: {}", resp.text());
        let retry: u64 = resp.header("retry-after").unwrap().parse().unwrap();
        assert!((18..=21).contains(&retry), "retry-after {retry}");
        let text = resp.text();
        assert!(
            text.contains("rate_limit_error") && text.contains("claude-sonnet-4-5"),
            "{text}"
        );
        assert!(text.contains("1 rate-limited, 1 disabled"), "{text}");
        assert!(!text.contains("key-"), "no key in the message: {text}");
        assert_eq!(
            keys(&up).len(),
            upstream_calls,
            "no more upstream quota spent"
        );
    }
}

#[test]
fn a_lone_rate_limited_credential_gets_the_gateways_429_with_the_upstreams_delay() {
    let up = Upstream::start(|_| {
        send(json_response(
            429,
            r#"{"from":"upstream"}"#,
            "retry-after: 7\r\n",
        ))
    });
    let gw = gateway(&pool_config(&up.addr.to_string(), "", &AB[..1]));
    for _ in 0..2 {
        let resp = request(gw.local_addr(), &messages_request(BODY, ""));
        assert_eq!(resp.status, 429);
        assert!(resp.text().contains("1 rate-limited"), "{}", resp.text());
        let retry: u64 = resp.header("retry-after").unwrap().parse().unwrap();
        assert!((6..=7).contains(&retry), "{retry}");
    }
    assert_eq!(up.requests().len(), 1);
}

#[test]
fn a_probe_whose_client_leaves_is_given_back() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let up = Upstream::start(move |_| match c.fetch_add(1, Ordering::SeqCst) {
        0 => send(json_response(429, "{}", "retry-after: 1\r\n")),
        1 => Action::Stall,
        _ => send(json_response(200, OK, "")),
    });
    let gw = gateway(&pool_config(&up.addr.to_string(), "", &AB[..1]));
    assert_eq!(
        request(gw.local_addr(), &messages_request(BODY, "")).status,
        429
    );
    std::thread::sleep(Duration::from_millis(1100));
    // The probe: its client leaves while the upstream is still thinking.
    let mut leaving = Client::connect(gw.local_addr());
    leaving.send(&messages_request(BODY, ""));
    std::thread::sleep(Duration::from_millis(200));
    drop(leaving);
    std::thread::sleep(Duration::from_millis(100));
    // Without the probe given back, this would be the gateway's 429 until the probe timeout.
    let resp = request(gw.local_addr(), &messages_request(BODY, ""));
    assert_eq!(
        (resp.status, up.requests().len()),
        (200, 3),
        "{}",
        resp.text()
    );
}

#[test]
fn a_probe_after_the_cooldown_brings_the_credential_back() {
    let limited_once = Arc::new(AtomicBool::new(true));
    let flag = limited_once.clone();
    let up = Upstream::start(move |r| {
        if key_of(r) == "key-a" && flag.swap(false, Ordering::SeqCst) {
            send(json_response(429, "{}", "retry-after: 1\r\n"))
        } else {
            send(json_response(200, OK, ""))
        }
    });
    let gw = gateway(&pool_config(&up.addr.to_string(), A_FIRST, AB));
    let go = || {
        assert_eq!(
            request(gw.local_addr(), &messages_request(BODY, "")).status,
            200
        )
    };
    go();
    go();
    std::thread::sleep(Duration::from_millis(1100));
    go();
    go();
    assert_eq!(keys(&up), ["key-a", "key-b", "key-b", "key-a", "key-a"]);
}

#[test]
fn a_stream_that_fails_before_its_first_event_fails_over_and_one_that_started_does_not() {
    let events = sse_events(3);
    let whole = sse_pieces(&events);
    let head_only = vec![SSE_HEAD.to_vec()];
    let started = vec![SSE_HEAD.to_vec(), chunk(events[0].as_bytes())];
    let (w, h, s) = (whole.clone(), head_only, started);
    let up = Upstream::start(move |r| match key_of(r).as_str() {
        "key-a" => Action::SendAndClose(h.clone(), Duration::ZERO),
        "key-c" => Action::SendAndClose(s.clone(), Duration::ZERO),
        _ => Action::Send(w.clone(), Duration::ZERO),
    });
    let stream_body = BODY.replace("\"max_tokens\"", "\"stream\":true,\"max_tokens\"");
    let gw = gateway(&pool_config(&up.addr.to_string(), A_FIRST, AB));
    let resp = request(gw.local_addr(), &messages_request(&stream_body, ""));
    assert_eq!(resp.status, 200);
    assert!(resp.complete);
    assert_eq!(resp.text(), events.concat(), "b's stream, whole");
    assert_eq!(keys(&up), ["key-a", "key-b"]);

    let cb = &[("c", "key-c", 1), ("b", "key-b", 1)];
    let up2 = {
        let (w, s) = (whole, vec![SSE_HEAD.to_vec(), chunk(events[0].as_bytes())]);
        Upstream::start(move |r| match key_of(r).as_str() {
            "key-c" => Action::SendAndClose(s.clone(), Duration::ZERO),
            _ => Action::Send(w.clone(), Duration::ZERO),
        })
    };
    let gw2 = gateway(&pool_config(&up2.addr.to_string(), A_FIRST, cb));
    let resp = request(gw2.local_addr(), &messages_request(&stream_body, ""));
    assert_eq!(resp.status, 200);
    let text = resp.text();
    assert!(
        text.starts_with(&events[0]) && text.contains("event: error"),
        "{text}"
    );
    assert_eq!(keys(&up2), ["key-c"], "a started stream is never replayed");
}

#[test]
fn weights_are_respected_and_picks_stay_fair_across_two_workers() {
    let up = Upstream::start(|_| send(json_response(200, OK, "")));
    let weighted = &[("a", "key-a", 3), ("b", "key-b", 1)];
    let gw = gateway(&pool_config(&up.addr.to_string(), "", weighted));
    for _ in 0..40 {
        assert_eq!(
            request(gw.local_addr(), &messages_request(BODY, "")).status,
            200
        );
    }
    let k = keys(&up);
    assert_eq!(k.iter().filter(|k| *k == "key-a").count(), 30, "{k:?}");

    // Concurrent clients on many connections (spread over both workers): one shared order.
    let up = Upstream::start(|_| send(json_response(200, OK, "")));
    let gw = gateway(&pool_config(&up.addr.to_string(), "", AB));
    assert_eq!(gw.workers(), 2);
    let addr = gw.local_addr();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let resp = request(addr, &messages_request(BODY, ""));
                    assert_eq!(resp.status, 200);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let k = keys(&up);
    let a = k.iter().filter(|k| *k == "key-a").count();
    assert_eq!((a, k.len() - a), (100, 100), "equal weights, equal share");
}

#[test]
fn session_affinity_keeps_a_conversation_on_its_credential_and_moves_it_when_that_fails() {
    let failing = Arc::new(std::sync::Mutex::new(String::new()));
    let f = failing.clone();
    let up = Upstream::start(move |r| {
        if key_of(r) == *f.lock().unwrap() {
            send(json_response(529, "{}", ""))
        } else {
            send(json_response(200, OK, ""))
        }
    });
    let gw = gateway(&pool_config(
        &up.addr.to_string(),
        "session_affinity = true",
        AB,
    ));
    let by_user = |user: &str| {
        BODY.replace(
            "\"max_tokens\"",
            &format!("\"metadata\":{{\"user_id\":\"{user}\"}},\"max_tokens\""),
        )
    };
    let mut homes = std::collections::HashSet::new();
    for session in 0..8 {
        let header = format!("x-session-id: s{session}\r\n");
        let before = up.requests().len();
        for _ in 0..4 {
            let resp = request(gw.local_addr(), &messages_request(BODY, &header));
            assert_eq!(resp.status, 200);
        }
        let used: std::collections::HashSet<_> = keys(&up)[before..].iter().cloned().collect();
        assert_eq!(used.len(), 1, "session s{session} moved: {used:?}");
        homes.extend(used);
    }
    assert_eq!(homes.len(), 2, "sessions spread over both credentials");

    let before = up.requests().len();
    for _ in 0..3 {
        request(gw.local_addr(), &messages_request(&by_user("u-7"), ""));
    }
    let home = keys(&up)[before].clone();
    assert!(
        keys(&up)[before..].iter().all(|k| *k == home),
        "metadata.user_id sticks"
    );

    // Its credential fails: the conversation moves to the other one and stays there.
    *failing.lock().unwrap() = home.clone();
    let before = up.requests().len();
    for _ in 0..3 {
        let resp = request(gw.local_addr(), &messages_request(&by_user("u-7"), ""));
        assert_eq!(resp.status, 200);
    }
    let k = &keys(&up)[before..];
    assert_eq!(k[0], home, "tried home first");
    assert!(k[1..].iter().all(|x| *x != home), "then moved: {k:?}");
}

#[test]
fn aliases_are_resolved_for_routing_and_rewritten_in_the_body() {
    let sonnet = Upstream::start(|_| send(json_response(200, r#"{"by":"sonnet"}"#, "")));
    let haiku = Upstream::start(|_| send(json_response(200, r#"{"by":"haiku"}"#, "")));
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[models.aliases]\nfast = \"claude-haiku-4-5\"\n\
         [[upstreams]]\nname = \"s\"\nkind = \"anthropic\"\nbase_url = \"http://{}\"\nmodels = [\"claude-sonnet-*\"]\n\
         [[upstreams.credentials]]\nname = \"s\"\napi_key = \"key-s\"\n\
         [[upstreams]]\nname = \"h\"\nkind = \"anthropic\"\nbase_url = \"http://{}\"\nmodels = [\"claude-haiku-*\"]\n\
         [[upstreams.credentials]]\nname = \"h\"\napi_key = \"key-h\"\n",
        sonnet.addr, haiku.addr
    );
    let gw = gateway(&toml);
    let resp = request(gw.local_addr(), &messages_request(BODY, ""));
    assert_eq!(
        resp.text(),
        r#"{"by":"sonnet"}"#,
        "routed by the real model, not the fake one"
    );
    let fast = BODY.replace("\"model\":\"claude-sonnet-4-5\"", "\"model\":\"fast\"");
    let resp = request(gw.local_addr(), &messages_request(&fast, ""));
    assert_eq!(resp.text(), r#"{"by":"haiku"}"#);
    let sent = haiku.requests()[0].body.clone();
    let want = BODY.replace("claude-sonnet-4-5", "claude-haiku-4-5");
    assert_eq!(
        String::from_utf8(sent).unwrap(),
        want,
        "only the top-level model changed"
    );
    assert_eq!(
        haiku.requests()[0].headers("content-length"),
        [want.len().to_string()]
    );

    let other = BODY.replace("claude-sonnet-4-5", "gpt-4");
    let resp = request(gw.local_addr(), &messages_request(&other, ""));
    assert_eq!(resp.status, 404);
    assert!(resp.text().contains("not_found_error") && resp.text().contains("gpt-4"));
    assert_eq!(sonnet.requests().len() + haiku.requests().len(), 2);
}

#[test]
fn count_tokens_goes_through_the_same_selection_and_failover() {
    let up = a_fails_with(json_response(429, "{}", "retry-after: 5\r\n"));
    let gw = gateway(&pool_config(&up.addr.to_string(), A_FIRST, AB));
    let body = r#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}"#;
    let raw = format!(
        "POST /v1/messages/count_tokens HTTP/1.1\r\nHost: g\r\nx-api-key: client-key\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let resp = request(gw.local_addr(), raw.as_bytes());
    assert_eq!(resp.status, 200);
    let reqs = up.requests();
    assert_eq!(keys(&up), ["key-a", "key-b"]);
    assert!(reqs[1]
        .request_line()
        .starts_with("POST /v1/messages/count_tokens "));
}

#[test]
fn the_pool_is_visible_and_resettable_through_the_handle() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let up = Upstream::start(move |r| {
        c.fetch_add(1, Ordering::SeqCst);
        match key_of(r).as_str() {
            "key-a" => send(json_response(429, "{}", "retry-after: 600\r\n")),
            _ => send(json_response(200, OK, "")),
        }
    });
    let gw = gateway(&pool_config(&up.addr.to_string(), A_FIRST, AB));
    request(gw.local_addr(), &messages_request(BODY, ""));
    let snapshot = gw.pool().snapshot();
    let a = snapshot.iter().find(|c| c.credential == "a").unwrap();
    assert_eq!(a.upstream, "up");
    assert_eq!(a.models[0].model, "claude-sonnet-4-5");
    assert!(a.models[0].cooling);
    assert!(gw.pool().reset("up", "a"));
    request(gw.local_addr(), &messages_request(BODY, ""));
    assert_eq!(
        keys(&up),
        ["key-a", "key-b", "key-a", "key-b"],
        "a tried again after reset"
    );
}
