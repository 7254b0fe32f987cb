//! Inbound limits and bad input: each gets its Anthropic-shaped error, and the worker keeps
//! serving everyone else.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use support::*;

fn gw_with(server_extra: &str) -> (Upstream, ringgate::GatewayHandle) {
    let up = Upstream::start(|_| Action::Send(vec![json_response(200, "{}", "")], Duration::ZERO));
    let gw = gateway(&config_for(up.addr, server_extra, ""));
    (up, gw)
}

fn error_type(r: &Response) -> String {
    let t = r.text();
    let at = t
        .find("\"error\":{\"type\":\"")
        .expect("anthropic error shape")
        + 17;
    t[at..at + t[at..].find('"').unwrap()].to_string()
}

#[test]
fn unknown_path_404_and_wrong_method_405() {
    let (_up, gw) = gw_with("");
    let r = request(
        gw.local_addr(),
        b"GET /v2/nothing HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(
        (r.status, error_type(&r).as_str()),
        (404, "not_found_error")
    );
    assert!(r.text().contains("\"request_id\":\"req_"));
    let r = request(
        gw.local_addr(),
        b"DELETE /v1/messages HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(
        (r.status, error_type(&r).as_str()),
        (405, "invalid_request_error")
    );
    assert_eq!(r.header("allow").as_deref(), Some("POST"));
}

#[test]
fn head_over_16k_is_431() {
    let (_up, gw) = gw_with("");
    let big = format!(
        "GET /healthz HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(17 * 1024)
    );
    let r = request(gw.local_addr(), big.as_bytes());
    assert_eq!(
        (r.status, error_type(&r).as_str()),
        (431, "request_too_large")
    );
}

#[test]
fn body_over_limit_is_413_declared_or_chunked() {
    let (up, gw) = gw_with("max_body_bytes = 1000");
    let body = format!("{{\"model\":\"m\",\"pad\":\"{}\"}}", "x".repeat(2000));
    let r = request(gw.local_addr(), &messages_request(&body, ""));
    assert_eq!(
        (r.status, error_type(&r).as_str()),
        (413, "request_too_large")
    );
    let mut c = Client::connect(gw.local_addr());
    c.send(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    c.send(format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len()).as_bytes());
    let r = c.response();
    assert_eq!(r.status, 413);
    assert!(up.requests().is_empty(), "nothing reached the upstream");
}

#[test]
fn expect_continue_over_limit_gets_413_without_sending_the_body() {
    let (_up, gw) = gw_with("max_body_bytes = 1000");
    let mut c = Client::connect(gw.local_addr());
    c.send(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(c.response().status, 413);
}

#[test]
fn slow_head_is_408_and_idle_keepalive_closes_quietly() {
    let (_up, gw) = gw_with("request_head_timeout_ms = 300\nidle_timeout_ms = 300");
    let mut c = Client::connect(gw.local_addr());
    c.send(b"GET /healthz HTTP/1.1\r\nHost:");
    let r = c.response();
    assert_eq!((r.status, error_type(&r).as_str()), (408, "timeout_error"));

    // A connection that never sends a byte gets the same answer (the head timer runs from accept).
    let mut c = Client::connect(gw.local_addr());
    assert_eq!(c.response().status, 408);

    // After a complete request, silence is not an error: the connection just closes.
    let mut c = Client::connect(gw.local_addr());
    c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.response().status, 200);
    let start = Instant::now();
    let mut rest = Vec::new();
    let _ = c.stream.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "no error response on idle close: {:?}",
        String::from_utf8_lossy(&rest)
    );
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn stalled_body_is_408() {
    let (_up, gw) = gw_with("request_body_timeout_ms = 300");
    let mut c = Client::connect(gw.local_addr());
    c.send(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"model\":");
    let r = c.response();
    assert_eq!((r.status, error_type(&r).as_str()), (408, "timeout_error"));
}

#[test]
fn malformed_requests_are_400() {
    let (_up, gw) = gw_with("");
    for raw in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n",
        b"POST /v1/messages HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST /v1/messages HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"GET http://example.com/ HTTP/1.1\r\n\r\n",
        b"POST /v1/messages HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    ] {
        let r = request(gw.local_addr(), raw);
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(raw));
        assert_eq!(error_type(&r), "invalid_request_error");
    }
}

#[test]
fn bad_clients_do_not_disturb_others() {
    let (_up, gw) = gw_with("request_head_timeout_ms = 2000");
    // Hold open a mix of half-sent heads, garbage and abrupt disconnects on both workers.
    let mut held = Vec::new();
    for i in 0..20 {
        let mut s = std::net::TcpStream::connect(gw.local_addr()).unwrap();
        match i % 3 {
            0 => s
                .write_all(b"POST /v1/messages HTTP/1.1\r\nContent-Le")
                .unwrap(),
            1 => s.write_all(&[0xff; 300]).unwrap(),
            _ => {
                s.write_all(b"POST /v1/messages HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
                    .unwrap();
                drop(s);
                continue;
            }
        }
        held.push(s);
    }
    for _ in 0..20 {
        let r = request(gw.local_addr(), &messages_request("{\"model\":\"m\"}", ""));
        assert_eq!(r.status, 200);
    }
    drop(held);
}
