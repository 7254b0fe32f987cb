//! Upstreams reached through an outbound HTTP CONNECT proxy: the gateway behind the test proxy
//! (`support::connect_proxy`), and the test proxy itself, checked with plain std sockets so the
//! gateway's tests can trust it. TLS through the proxy is in `tls.rs`.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use support::connect_proxy::ConnectProxy;
use support::{gateway, json_response, messages_request, request, Action, Upstream};

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

// ---------------------------------------------------------------------------------------------
// The gateway behind the proxy

const BODY: &str = r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
const OK: &str = r#"{"id":"msg_ok","type":"message"}"#;
/// "user:pw", as the gateway is configured below.
const PASSWORD: &str = "pw-secret-1";

fn behind(proxy: &ConnectProxy, upstream: SocketAddr, auth: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n[routing]\nmax_attempts = 1\n\
         [[upstreams]]\nname = \"proxied\"\nkind = \"anthropic\"\nbase_url = \"http://{upstream}\"\n\
         proxy_url = \"http://{}\"\n{auth}\n\
         [[upstreams.credentials]]\nname = \"k\"\napi_key = \"sk-upstream\"\n",
        proxy.addr
    )
}

fn ok_upstream() -> Upstream {
    Upstream::start(|_| Action::Send(vec![json_response(200, OK, "")], Duration::ZERO))
}

#[test]
fn requests_go_through_the_tunnel_and_the_tunnel_is_pooled() {
    let up = ok_upstream();
    let auth = format!("Basic {}", b64(&format!("user:{PASSWORD}")));
    let proxy = ConnectProxy::start(Some(&auth));
    let gw = gateway(&behind(
        &proxy,
        up.addr,
        &format!("proxy_auth = \"user:{PASSWORD}\""),
    ));
    for _ in 0..3 {
        let resp = request(gw.local_addr(), &messages_request(BODY, ""));
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    assert_eq!(proxy.connects(), [format!("CONNECT {} HTTP/1.1", up.addr)]);
    assert_eq!(proxy.authorizations(), [Some(auth)]);
    assert_eq!(up.requests().len(), 3);
    assert_eq!(up.requests()[0].headers("x-api-key"), ["sk-upstream"]);
}

#[test]
fn a_proxy_that_refuses_is_a_502_that_says_why_without_the_password() {
    let up = ok_upstream();
    let proxy = ConnectProxy::start(Some("Basic c29tZW9uZTplbHNl"));
    for (auth, why) in [
        (
            format!("proxy_auth = \"user:{PASSWORD}\""),
            "the proxy refused the gateway's proxy credentials (407)",
        ),
        (
            String::new(),
            "the proxy requires authentication (407); set proxy_auth",
        ),
    ] {
        let gw = gateway(&behind(&proxy, up.addr, &auth));
        let resp = request(gw.local_addr(), &messages_request(BODY, ""));
        assert_eq!(resp.status, 502, "{}", resp.text());
        let text = resp.text();
        assert!(text.contains(r#"upstream \"proxied\""#), "{text}");
        assert!(text.contains(why), "{text}");
        assert!(
            !text.contains(PASSWORD) && !text.contains(&b64(PASSWORD)),
            "{text}"
        );
    }
    assert!(up.requests().is_empty());
}

#[test]
fn an_unreachable_proxy_is_a_502() {
    let up = ok_upstream();
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = ConnectProxy {
        addr: dead.local_addr().unwrap(),
        ..ConnectProxy::start(None)
    };
    drop(dead);
    let gw = gateway(&behind(&proxy, up.addr, ""));
    let resp = request(gw.local_addr(), &messages_request(BODY, ""));
    assert_eq!(resp.status, 502, "{}", resp.text());
    assert!(resp.text().contains("could not connect"), "{}", resp.text());
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}
