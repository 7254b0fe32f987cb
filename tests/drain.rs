//! Graceful drain. The binary, on SIGTERM: stops accepting, closes idle connections, lets a
//! stream in flight finish until `server.drain_timeout_ms`, ends it in-band with an
//! `overloaded_error` if it runs longer, and exits 0; a second signal exits at once. In-process,
//! through the control handle: a request still waiting for its upstream at the timeout gets a
//! 529, and a response begun during the drain closes its connection.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use support::process::{refused_within, wait_for_bytes, Process};
use support::*;

const OVERLOADED: &str = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"gateway shutting down\"}}\n\n";
const BODY: &str =
    r#"{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}"#;
const STREAM_BODY: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

/// A gateway binary in front of its built-in mock.
fn mock_gateway(drain_timeout_ms: u64) -> Process {
    Process::start(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 2\ndrain_timeout_ms = {drain_timeout_ms}\n\n\
         [[upstreams]]\nname = \"mock\"\nkind = \"mock\"\n"
    ))
}

/// A stream from the mock of `deltas` text deltas, one every `interval_ms`.
fn stream_request(deltas: usize, interval_ms: u64) -> Vec<u8> {
    let pace = format!("x-mock-deltas: {deltas}\r\nx-mock-event-interval-ms: {interval_ms}\r\n");
    messages_request(STREAM_BODY, &pace)
}

/// A stream under way: its head and first event have arrived.
fn stream_under_way(addr: std::net::SocketAddr, deltas: usize, interval_ms: u64) -> Client {
    let mut c = Client::connect(addr);
    c.send(&stream_request(deltas, interval_ms));
    wait_for_bytes(&c.stream, b"message_start", Duration::from_secs(10));
    c
}

#[test]
fn a_stream_in_flight_at_sigterm_completes_no_new_connection_is_accepted_and_the_exit_is_0() {
    let mut gw = mock_gateway(30_000);
    let mut idle = Client::connect(gw.addr);
    idle.send(&messages_request(BODY, ""));
    assert_eq!(idle.response().status, 200);
    // About three seconds of stream.
    let mut streaming = stream_under_way(gw.addr, 30, 100);

    gw.signal(libc::SIGTERM);
    assert!(
        refused_within(gw.addr, Duration::from_secs(5)),
        "new connections are refused during the drain"
    );
    assert!(idle.is_closed(), "an idle keep-alive connection is closed");
    assert!(gw.running(), "the drain waits for the stream");

    let r = streaming.response();
    let text = r.text();
    assert_eq!(r.status, 200);
    assert!(r.complete, "{text}");
    assert!(text.contains("event: message_stop"), "{text}");
    assert!(!text.contains("event: error"), "{text}");
    assert!(streaming.is_closed(), "closed after its response");
    let status = gw.wait_exit(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", gw.log());
    assert!(gw.log().contains("draining"), "{}", gw.log());
}

#[test]
fn a_stream_still_running_at_the_drain_timeout_ends_with_an_overloaded_error_and_the_exit_is_0() {
    let mut gw = mock_gateway(500);
    // About twenty seconds of stream.
    let mut c = stream_under_way(gw.addr, 200, 100);
    wait_for_bytes(&c.stream, b"content_block_delta", Duration::from_secs(10));

    gw.signal(libc::SIGTERM);
    let r = c.response();
    let text = r.text();
    assert_eq!(r.status, 200);
    assert!(r.complete, "a proper end of the body: {text}");
    assert!(text.contains("content_block_delta"), "{text}");
    assert!(text.ends_with(OVERLOADED), "{text}");
    assert!(!text.contains("message_stop"), "{text}");
    let status = gw.wait_exit(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", gw.log());
}

#[test]
fn a_second_signal_exits_at_once() {
    let mut gw = mock_gateway(60_000);
    let mut c = stream_under_way(gw.addr, 600, 100);

    gw.signal(libc::SIGTERM);
    assert!(
        gw.wait_log("draining", 1, Duration::from_secs(5)),
        "{}",
        gw.log()
    );
    assert!(gw.running(), "the drain waits for the stream");
    gw.signal(libc::SIGINT);
    let status = gw.wait_exit(Duration::from_secs(5));
    let code = status.and_then(|s| s.code());
    assert!(code.is_some_and(|c| c != 0), "{code:?}: {}", gw.log());
    let r = c.response();
    assert!(!r.complete, "the stream was cut: {}", r.text());
}

/// Waits for the end of an in-process gateway's drain.
fn stopped(gw: ringgate::GatewayHandle) {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        gw.wait();
        let _ = tx.send(());
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(15)).is_ok(),
        "the gateway did not stop after its drain"
    );
}

/// Waits until the scripted upstream has received `n` requests.
fn received(up: &Upstream, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while up.requests().len() < n {
        assert!(Instant::now() < deadline, "the upstream got no request");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn requests_still_waiting_for_their_upstream_at_the_drain_timeout_get_a_529() {
    let up = Upstream::start(|_| Action::Stall);
    let gw = gateway(&config_for(up.addr, "drain_timeout_ms = 300", ""));
    let addr = gw.local_addr();
    let plain = thread::spawn(move || request(addr, &messages_request(BODY, "")));
    let stream = thread::spawn(move || request(addr, &messages_request(STREAM_BODY, "")));
    received(&up, 2);

    assert!(gw.control().drain(), "this call starts the drain");
    assert!(!gw.control().drain(), "once");
    for r in [plain.join().unwrap(), stream.join().unwrap()] {
        assert_eq!(r.status, 529, "{}", r.text());
        assert!(
            r.text().contains("\"type\":\"overloaded_error\""),
            "{}",
            r.text()
        );
        assert!(r.text().contains("gateway shutting down"), "{}", r.text());
        assert_eq!(r.header("connection").as_deref(), Some("close"));
    }
    // The drain ends the gateway.
    stopped(gw);
}

#[test]
fn a_response_begun_during_the_drain_says_connection_close() {
    let up = Upstream::start(|_| {
        thread::sleep(Duration::from_millis(400));
        Action::Send(
            vec![json_response(200, r#"{"id":"msg_1"}"#, "")],
            Duration::ZERO,
        )
    });
    let gw = gateway(&config_for(up.addr, "drain_timeout_ms = 20000", ""));
    let control = gw.control();
    let mut c = Client::connect(gw.local_addr());
    c.send(&messages_request(BODY, ""));
    received(&up, 1);
    control.drain();
    assert!(control.is_draining());
    let r = c.response();
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"id":"msg_1"}"#));
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    assert!(c.is_closed());
    // No connection left: the gateway ends, long before the drain timeout.
    stopped(gw);
    assert!(
        control
            .reload(ringgate::Config::default_for_env(None))
            .is_err(),
        "a drained gateway takes no reload"
    );
}
