//! Each upstream timeout fires on its own step, with an error that names the upstream and the
//! setting to change: connect, TLS handshake, first byte (streams), whole response (non-streams).

mod support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use support::*;

const BODY: &str = r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
const STREAM_BODY: &str =
    r#"{"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

fn config(base_url: &str, timeouts: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n[routing]\nmax_attempts = 1\n\
         [[upstreams]]\nname = \"late\"\nkind = \"anthropic\"\nbase_url = \"{base_url}\"\n{timeouts}\n\
         [[upstreams.credentials]]\nname = \"k\"\napi_key = \"sk-upstream\"\n"
    )
}

fn assert_timeout(resp: &Response, message: &str) {
    assert_eq!(resp.status, 504, "{}", resp.text());
    let text = resp.text();
    assert!(text.contains(r#""type":"timeout_error""#), "{text}");
    assert!(text.contains(r#"upstream \"late\""#), "{text}");
    assert!(text.contains(message), "expected {message:?} in {text}");
}

/// A listener whose accept queue is full, so a further connect gets no answer at all (Linux
/// drops the SYN) until it times out.
fn unanswered_listener() -> (Socket, Vec<TcpStream>, SocketAddr) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut held = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => held.push(s),
            Err(_) => return (socket, held, addr),
        }
    }
    panic!("the accept queue never filled up");
}

#[test]
fn connect_timeout() {
    let (_listener, _held, addr) = unanswered_listener();
    let gw = gateway(&config(
        &format!("http://{addr}"),
        "connect_timeout_ms = 200",
    ));
    let resp = request(gw.local_addr(), &messages_request(BODY, ""));
    assert_timeout(
        &resp,
        "connect timed out within 200 ms (connect_timeout_ms)",
    );
}

#[test]
fn tls_handshake_timeout() {
    // Accepts, then says nothing: the ClientHello is never answered.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let gw = gateway(&config(
        &format!("https://{addr}"),
        "tls_handshake_timeout_ms = 200",
    ));
    let resp = request(gw.local_addr(), &messages_request(BODY, ""));
    assert_timeout(
        &resp,
        "TLS handshake timed out within 200 ms (tls_handshake_timeout_ms)",
    );
    drop(listener);
}

#[test]
fn first_byte_timeout_bounds_a_stream_head() {
    let up = Upstream::start(|_| Action::Stall);
    let gw = gateway(&config(
        &format!("http://{}", up.addr),
        "first_byte_timeout_ms = 200\nresponse_timeout_ms = 60000",
    ));
    let resp = request(gw.local_addr(), &messages_request(STREAM_BODY, ""));
    assert_timeout(
        &resp,
        "no response head within 200 ms (first_byte_timeout_ms)",
    );
}

#[test]
fn response_timeout_bounds_a_whole_non_stream_response() {
    // No head at all.
    let up = Upstream::start(|_| Action::Stall);
    let gw = gateway(&config(
        &format!("http://{}", up.addr),
        "first_byte_timeout_ms = 60000\nresponse_timeout_ms = 300",
    ));
    let resp = request(gw.local_addr(), &messages_request(BODY, ""));
    assert_timeout(
        &resp,
        "no complete response within 300 ms (response_timeout_ms)",
    );

    // A head, then the body never comes: the same budget covers both.
    let up = Upstream::start(|_| {
        Action::Send(
            vec![
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n"
                    .to_vec(),
            ],
            Duration::from_secs(30),
        )
    });
    let gw = gateway(&config(
        &format!("http://{}", up.addr),
        "response_timeout_ms = 300",
    ));
    let resp = request(gw.local_addr(), &messages_request(BODY, ""));
    assert_timeout(
        &resp,
        "did not complete its response within 300 ms (response_timeout_ms)",
    );
}

#[test]
fn streams_are_not_bound_by_the_response_timeout() {
    // A stream may run far longer than a non-stream answer takes; only its idle gaps count.
    let up =
        Upstream::start(|_| Action::Send(sse_pieces(&sse_events(6)), Duration::from_millis(100)));
    let gw = gateway(&config(
        &format!("http://{}", up.addr),
        "response_timeout_ms = 300",
    ));
    let resp = request(gw.local_addr(), &messages_request(STREAM_BODY, ""));
    assert_eq!(resp.status, 200);
    assert!(
        resp.complete && resp.text().contains("message_stop"),
        "{}",
        resp.text()
    );
}
