//! Forwarding over real sockets: header rules, faithful relay, upstream failures, keep-alive.

mod support;

use std::time::Duration;

use support::*;

const BODY: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"say \"model\": \"fake\""}]}"#;

#[test]
fn forwards_with_header_rules_and_relays_faithfully() {
    let up = Upstream::start(|_| {
        Action::Send(
            vec![json_response(
                200,
                r#"{"id":"msg_1","type":"message"}"#,
                "request-id: req_from_upstream\r\nanthropic-ratelimit-requests-remaining: 41\r\nKeep-Alive: timeout=5\r\n",
            )],
            Duration::ZERO,
        )
    });
    let gw = gateway(&config_for(up.addr, "", ""));
    let raw = format!(
        "POST /v1/messages?beta=true HTTP/1.1\r\nHost: gateway.local\r\nx-api-key: client-key\r\nAuthorization: Bearer client-token\r\n\
         anthropic-version: 2023-06-01\r\nanthropic-beta: prompt-caching-2024-07-31\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\
         Proxy-Authorization: Basic abc\r\nTE: trailers\r\nX-Custom: kept\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let resp = request(gw.local_addr(), raw.as_bytes());
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), r#"{"id":"msg_1","type":"message"}"#);
    assert_eq!(
        resp.header("request-id").as_deref(),
        Some("req_from_upstream")
    );
    assert_eq!(
        resp.header("anthropic-ratelimit-requests-remaining")
            .as_deref(),
        Some("41")
    );
    assert_eq!(resp.header("keep-alive"), None);

    let reqs = up.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.request_line(), "POST /v1/messages?beta=true HTTP/1.1");
    assert_eq!(r.body, BODY.as_bytes(), "body forwarded byte for byte");
    assert_eq!(r.headers("x-api-key"), vec!["sk-upstream-secret"]);
    assert_eq!(r.headers("host"), vec![up.addr.to_string()]);
    assert_eq!(r.headers("anthropic-version"), vec!["2023-06-01"]);
    assert_eq!(
        r.headers("anthropic-beta"),
        vec!["prompt-caching-2024-07-31"]
    );
    assert_eq!(r.headers("x-custom"), vec!["kept"]);
    assert_eq!(r.headers("content-length"), vec![BODY.len().to_string()]);
    for gone in [
        "authorization",
        "x-hop",
        "proxy-authorization",
        "te",
        "connection",
    ] {
        assert!(
            r.headers(gone).is_empty(),
            "{gone} was forwarded: {}",
            r.head
        );
    }
    assert!(!r.head.contains("client-key") && !r.head.contains("client-token"));
}

#[test]
fn default_anthropic_version_added_only_when_missing_and_request_id_always_present() {
    let up = Upstream::start(|_| Action::Send(vec![json_response(200, "{}", "")], Duration::ZERO));
    let gw = gateway(&config_for(up.addr, "", ""));
    let resp = request(gw.local_addr(), &messages_request(BODY, ""));
    assert_eq!(resp.status, 200);
    let id = resp
        .header("request-id")
        .expect("request-id on every response");
    assert!(id.starts_with("req_"), "{id}");
    assert_eq!(
        up.requests()[0].headers("anthropic-version"),
        vec!["2023-06-01"]
    );
}

#[test]
fn upstream_errors_pass_through_untouched() {
    // (A 429 with no other credential left becomes the gateway's own 429: tests/failover.rs.)
    let body = r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#;
    let up = Upstream::start(move |_| {
        Action::Send(
            vec![json_response(529, body, "x-should-retry: true\r\n")],
            Duration::ZERO,
        )
    });
    let gw = gateway(&config_for(up.addr, "", ""));
    let resp = request(gw.local_addr(), &messages_request(BODY, ""));
    assert_eq!(resp.status, 529);
    assert_eq!(resp.header("x-should-retry").as_deref(), Some("true"));
    assert_eq!(resp.text(), body);
}

#[test]
fn connection_refused_is_502_and_silence_is_504() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = gateway(&config_for(dead, "", ""));
    let resp = request(gw.local_addr(), &messages_request(BODY, ""));
    assert_eq!(resp.status, 502);
    assert!(
        resp.text().contains("\"type\":\"api_error\""),
        "{}",
        resp.text()
    );
    assert!(
        resp.text().contains("test-upstream"),
        "names the upstream: {}",
        resp.text()
    );
    assert!(!resp.text().contains("sk-upstream-secret"));

    let up = Upstream::start(|_| Action::Stall);
    let gw = gateway(&config_for(up.addr, "", "response_timeout_ms = 300"));
    let resp = request(gw.local_addr(), &messages_request(BODY, ""));
    assert_eq!(resp.status, 504);
    assert!(
        resp.text().contains("\"type\":\"timeout_error\""),
        "{}",
        resp.text()
    );
}

#[test]
fn upstream_garbage_is_502() {
    let up = Upstream::start(|_| {
        Action::SendAndClose(vec![b"SSH-2.0-OpenSSH\r\n\r\n".to_vec()], Duration::ZERO)
    });
    let gw = gateway(&config_for(up.addr, "", ""));
    let resp = request(gw.local_addr(), &messages_request(BODY, ""));
    assert_eq!(resp.status, 502);
    let up = Upstream::start(|_| Action::SendAndClose(vec![], Duration::ZERO));
    let gw = gateway(&config_for(up.addr, "", ""));
    assert_eq!(
        request(gw.local_addr(), &messages_request(BODY, "")).status,
        502
    );
}

#[test]
fn keep_alive_and_pipelining() {
    let up = Upstream::start(|r| {
        let n = String::from_utf8_lossy(&r.body).len();
        Action::Send(
            vec![json_response(200, &format!("{{\"len\":{n}}}"), "")],
            Duration::ZERO,
        )
    });
    let gw = gateway(&config_for(up.addr, "", ""));
    let mut c = Client::connect(gw.local_addr());
    for _ in 0..3 {
        c.send(&messages_request(BODY, ""));
        let r = c.response();
        assert_eq!(
            (r.status, r.text()),
            (200, format!("{{\"len\":{}}}", BODY.len()))
        );
    }
    // Two requests in one write: both are answered, in order.
    let mut two = messages_request(BODY, "");
    two.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    c.send(&two);
    assert_eq!(c.response().status, 200);
    let health = c.response();
    assert_eq!((health.status, health.text().as_str()), (200, "ok"));
    // Connection: close is honoured.
    c.send(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(c.response().status, 200);
    assert!(c.is_closed());
}

#[test]
fn chunked_request_body_with_expect_continue() {
    let up = Upstream::start(|_| Action::Send(vec![json_response(200, "{}", "")], Duration::ZERO));
    let gw = gateway(&config_for(up.addr, "", ""));
    let mut c = Client::connect(gw.local_addr());
    c.send(b"POST /v1/messages/count_tokens HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.response();
    assert_eq!(interim.status, 100);
    let body = r#"{"model":"m","messages":[]}"#;
    let (a, b) = body.split_at(10);
    c.send(
        format!(
            "{:x}\r\n{a}\r\n{:x};ext=1\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len()
        )
        .as_bytes(),
    );
    assert_eq!(c.response().status, 200);
    let r = &up.requests()[0];
    assert_eq!(r.request_line(), "POST /v1/messages/count_tokens HTTP/1.1");
    assert_eq!(r.body, body.as_bytes());
    assert_eq!(r.headers("content-length"), vec![body.len().to_string()]);
    assert!(r.headers("transfer-encoding").is_empty() && r.headers("expect").is_empty());
}

#[test]
fn models_endpoints_are_forwarded() {
    let up = Upstream::start(|r| {
        let line = r.request_line().to_string();
        Action::Send(
            vec![json_response(200, &format!("{{\"seen\":\"{line}\"}}"), "")],
            Duration::ZERO,
        )
    });
    let gw = gateway(&config_for(up.addr, "", ""));
    let r = request(
        gw.local_addr(),
        b"GET /v1/models?limit=5 HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(r.text(), "{\"seen\":\"GET /v1/models?limit=5 HTTP/1.1\"}");
    let r = request(
        gw.local_addr(),
        b"GET /v1/models/claude-x HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(r.text(), "{\"seen\":\"GET /v1/models/claude-x HTTP/1.1\"}");
}

#[test]
fn invalid_json_is_refused_before_any_upstream_call() {
    let up = Upstream::start(|_| Action::Send(vec![json_response(200, "{}", "")], Duration::ZERO));
    let gw = gateway(&config_for(up.addr, "", ""));
    for body in ["{\"model\":", "[1,2]", "{\"model\":\"a\",\"model\":\"b\"}"] {
        let r = request(gw.local_addr(), &messages_request(body, ""));
        assert_eq!(r.status, 400, "{body}");
        assert!(r.text().contains("invalid_request_error"));
    }
    assert!(up.requests().is_empty());
}

#[test]
fn built_in_mock_answers_without_network() {
    let gw = gateway("[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n[[upstreams]]\nname = \"mock\"\nkind = \"mock\"\n[upstreams.mock]\nevent_interval_ms = 0\n");
    let body = r#"{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"ping"}]}"#;
    let r = request(gw.local_addr(), &messages_request(body, ""));
    assert_eq!(r.status, 200);
    assert!(r.text().contains("You said: ping"), "{}", r.text());
    let r = request(
        gw.local_addr(),
        &messages_request(
            &body.replace("{\"model\"", "{\"stream\":true,\"model\""),
            "",
        ),
    );
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/event-stream; charset=utf-8")
    );
    assert!(r.complete);
    assert!(r
        .text()
        .ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
}

#[test]
fn epoll_driver_serves_too() {
    let up = Upstream::start(|_| {
        Action::Send(vec![json_response(200, "{\"ok\":1}", "")], Duration::ZERO)
    });
    let gw = gateway(&config_for(up.addr, "io_driver = \"epoll\"", ""));
    assert_eq!(gw.driver().name(), "epoll");
    let r = request(gw.local_addr(), &messages_request(BODY, ""));
    assert_eq!((r.status, r.text().as_str()), (200, "{\"ok\":1}"));
}

#[test]
fn gateway_spreads_one_port_over_its_workers() {
    let up = Upstream::start(|_| Action::Send(vec![json_response(200, "{}", "")], Duration::ZERO));
    let gw = gateway(&config_for(up.addr, "", ""));
    assert_eq!(gw.workers(), 2);
    for _ in 0..40 {
        assert_eq!(
            request(gw.local_addr(), &messages_request(BODY, "")).status,
            200
        );
    }
    gw.shutdown();
    assert!(
        std::net::TcpStream::connect(up.addr).is_ok(),
        "upstream still up"
    );
}
