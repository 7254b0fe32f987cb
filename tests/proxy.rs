//! Upstreams reached through an outbound HTTP CONNECT proxy.
//!
//! For now this checks the test proxy itself (`support::connect_proxy`) with plain std sockets,
//! so that tests of the gateway behind it can trust it.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use support::connect_proxy::ConnectProxy;

const AUTH: &str = "Basic dXNlcjpwdw==";

/// An upstream that echoes everything it reads until the client closes.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let _ = std::io::copy(&mut stream, &mut writer);
            });
        }
    });
    addr
}

/// Sends a request head to the proxy and returns the socket and the answer's head.
fn ask(proxy: &ConnectProxy, head: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(proxy.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
        answer.push(byte[0]);
    }
    (stream, String::from_utf8(answer).unwrap())
}

#[test]
fn test_proxy_tunnels_and_records_what_it_was_asked() {
    let target = echo_server();
    let proxy = ConnectProxy::start(Some(AUTH));
    let request = format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: {AUTH}\r\n\r\n"
    );
    let (mut tunnel, answer) = ask(&proxy, &request);
    assert_eq!(answer, "HTTP/1.1 200 Connection Established\r\n\r\n");
    tunnel.write_all(b"ping").unwrap();
    let mut echoed = [0u8; 4];
    tunnel.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"ping");
    assert_eq!(proxy.connects(), [format!("CONNECT {target} HTTP/1.1")]);
    assert_eq!(proxy.authorizations(), [Some(AUTH.to_string())]);
}

#[test]
fn test_proxy_refuses_missing_or_wrong_credentials() {
    let proxy = ConnectProxy::start(Some(AUTH));
    for extra in ["", "Proxy-Authorization: Basic d3Jvbmc6cHc=\r\n"] {
        let request = format!("CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n{extra}\r\n");
        let (_, answer) = ask(&proxy, &request);
        assert!(answer.starts_with("HTTP/1.1 407 "), "{answer}");
        assert!(
            answer.contains("Proxy-Authenticate: Basic realm=\"test\""),
            "{answer}"
        );
    }
    assert_eq!(
        proxy.authorizations(),
        [None, Some("Basic d3Jvbmc6cHc=".to_string())]
    );
}

#[test]
fn test_proxy_answers_502_for_an_unreachable_target() {
    // A port that was just free: nothing listens there.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = ConnectProxy::start(None);
    let (_, answer) = ask(&proxy, &format!("CONNECT {closed} HTTP/1.1\r\n\r\n"));
    assert!(answer.starts_with("HTTP/1.1 502 "), "{answer}");
}
