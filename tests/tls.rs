//! TLS towards upstreams, over real sockets: a private CA and server certificates generated at
//! test time, a small rustls HTTPS upstream on a std thread, and the gateway started in-process
//! in front of it.
//!
//! The upstream and the client are written with blocking std sockets (the upstream with rustls'
//! own blocking stream; the client and the request reader come from `support`) and share no code
//! with the gateway.

mod support;

use std::io::{self, ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use ringgate::{Config, Gateway, GatewayHandle};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use support::connect_proxy::ConnectProxy;
use support::{messages_request, read_request, request, Client, Received, Response};

const BODY: &str = r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
const STREAM_BODY: &str =
    r#"{"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
const JSON_REPLY: &str = r#"{"id":"msg_tls","type":"message","role":"assistant","content":[{"type":"text","text":"over TLS"}],"model":"m","stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":2}}"#;
const SSE_EVENTS: [&str; 6] = [
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_tls\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"m\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"over TLS\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":2}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
];
/// Extra header lines on every client request (after support's Host, Content-Type, x-api-key).
const CLIENT_HEADERS: &str = "anthropic-version: 2023-06-01\r\n";
const IO_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Certificates

/// A private CA generated for one test.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "ringgate test CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        TestCa { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate signed by this CA for exactly these names (DNS names or IP literals).
    fn server_cert(&self, names: &[&str]) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let sans: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let der = CertificateDer::from(cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (der, key)
    }
}

/// A file in the temp dir, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn unique(tag: &str) -> TempFile {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        TempFile(std::env::temp_dir().join(format!(
            "ringgate-tls-test-{}-{n}-{tag}.pem",
            std::process::id()
        )))
    }

    fn with_contents(tag: &str, contents: &str) -> TempFile {
        let f = TempFile::unique(tag);
        std::fs::write(&f.0, contents).unwrap();
        f
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// The HTTPS upstream

/// A small HTTPS server: one std thread accepting, one per connection.
struct TlsUpstream {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    /// Connections accepted (whether or not their handshake succeeded).
    connections: Arc<Mutex<usize>>,
}

impl TlsUpstream {
    fn start(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> TlsUpstream {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (rec, conns) = (received.clone(), connections.clone());
        thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { return };
                *conns.lock().unwrap() += 1;
                let (config, rec) = (config.clone(), rec.clone());
                thread::spawn(move || serve_tls(tcp, config, rec));
            }
        });
        TlsUpstream {
            port,
            received,
            connections,
        }
    }

    fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        *self.connections.lock().unwrap()
    }
}

fn serve_tls(tcp: TcpStream, config: Arc<rustls::ServerConfig>, rec: Arc<Mutex<Vec<Received>>>) {
    let _ = tcp.set_read_timeout(Some(IO_TIMEOUT));
    let _ = tcp.set_nodelay(true);
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    // The handshake happens on the first read; a failed one ends the connection here.
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut buf = Vec::new();
    while let Some(req) = read_request(&mut tls, &mut buf) {
        rec.lock().unwrap().push(req.clone());
        let stream = String::from_utf8_lossy(&req.body).contains("\"stream\":true");
        // `x-pace-ms`: pause between events, so the gateway's flush deadlines fall while it is
        // waiting on a TLS read.
        let pace = req
            .headers("x-pace-ms")
            .first()
            .map(|v| Duration::from_millis(v.parse().unwrap()));
        let written = if stream {
            write_sse(&mut tls, pace.unwrap_or_default())
        } else {
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nrequest-id: req_tls_upstream\r\nContent-Length: {}\r\n\r\n{JSON_REPLY}",
                JSON_REPLY.len()
            );
            write_retrying(&mut tls, resp.as_bytes())
        };
        if written.is_err() {
            return;
        }
        // `x-then-408`: a while after the answer, an unsolicited 408 on the idle connection, as
        // servers send before closing one (this one does not even close).
        if !req.headers("x-then-408").is_empty() {
            thread::sleep(Duration::from_millis(50));
            let late = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n";
            if write_retrying(&mut tls, late).is_err() {
                return;
            }
        }
    }
}

/// A chunked `text/event-stream` answer, one chunk per event, each flushed on its own.
fn write_sse(out: &mut impl Write, pace: Duration) -> io::Result<()> {
    write_retrying(
        out,
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n",
    )?;
    for event in SSE_EVENTS {
        std::thread::sleep(pace);
        let chunk = format!("{:x}\r\n{event}\r\n", event.len());
        write_retrying(out, chunk.as_bytes())?;
    }
    write_retrying(out, b"0\r\n\r\n")
}

fn write_retrying(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let mut rest = bytes;
    while !rest.is_empty() {
        match out.write(rest) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    loop {
        match out.flush() {
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The gateway and the client

fn gateway_config(base_url: &str, ca_file: Option<&Path>) -> String {
    let ca_line = ca_file
        .map(|p| format!("ca_file = {:?}\n", p.display().to_string()))
        .unwrap_or_default();
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n\n\
         [[upstreams]]\nname = \"tls-upstream\"\nkind = \"anthropic\"\nbase_url = \"{base_url}\"\n{ca_line}\n\
         [[upstreams.credentials]]\nname = \"primary\"\napi_key = \"sk-test\"\n"
    )
}

fn start_gateway(base_url: &str, ca_file: Option<&Path>) -> GatewayHandle {
    support::gateway(&gateway_config(base_url, ca_file))
}

/// The response was delimited (Content-Length or chunked) and read to its end.
fn assert_framed_and_complete(resp: &Response) {
    let framed = resp.header("content-length").is_some()
        || resp
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    assert!(framed, "response without a length: {:?}", resp.head);
    assert!(resp.complete, "response cut short: {resp:?}");
}

/// Checks a 502 `api_error` naming the upstream and a TLS handshake failure; returns the message.
fn assert_tls_bad_gateway(resp: &Response) -> String {
    assert_eq!(resp.status, 502, "expected 502, got {resp:?}");
    assert_framed_and_complete(resp);
    let text = resp.text();
    assert!(
        text.contains(r#""type":"error""#) && text.contains(r#""type":"api_error""#),
        "not an api_error body: {text}"
    );
    let message = text
        .split(r#""message":""#)
        .nth(1)
        .and_then(|rest| rest.split(r#""}"#).next())
        .unwrap_or_else(|| panic!("no message in {text}"))
        .to_string();
    assert!(
        message.contains("tls-upstream"),
        "message does not name the upstream: {text}"
    );
    assert!(
        message.contains("TLS handshake failed"),
        "message does not name TLS: {text}"
    );
    message
}

/// Sends one request through a gateway whose upstream handshake must fail: a 502 naming the
/// upstream and TLS whose message names the reason (one of `needles`, else it is not `about`
/// that), the upstream reached, and no request sent over the unverified connection.
fn assert_handshake_refused(gw_addr: SocketAddr, up: &TlsUpstream, needles: &[&str], about: &str) {
    let resp = request(gw_addr, &messages_request(BODY, CLIENT_HEADERS));
    let message = assert_tls_bad_gateway(&resp);
    assert!(
        needles.iter().any(|n| message.contains(n)),
        "the failure is not about {about}: {message}"
    );
    assert!(
        up.connections() >= 1,
        "the gateway never reached the upstream"
    );
    assert!(
        up.requests().is_empty(),
        "a request was sent over an unverified connection"
    );
}

/// A TLS upstream with a certificate for `names` from a fresh test CA, and a gateway in front of
/// it at `https://{host}:PORT` that trusts the CA through `ca_file` (kept alive by the caller).
fn trusted_setup(names: &[&str], host: &str) -> (TlsUpstream, TempFile, GatewayHandle) {
    let ca = TestCa::new();
    let (cert, key) = ca.server_cert(names);
    let up = TlsUpstream::start(cert, key);
    let ca_file = TempFile::with_contents("ca", &ca.pem());
    let gw = start_gateway(&format!("https://{host}:{}", up.port), Some(ca_file.path()));
    (up, ca_file, gw)
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn non_stream_request_goes_through_tls_with_private_ca() {
    let (up, _ca_file, gw) = trusted_setup(&["localhost", "127.0.0.1"], "localhost");

    // Two requests on one client connection: the second may reuse the upstream TLS connection.
    let mut client = Client::connect(gw.local_addr());
    for round in 0..2 {
        client.send(&messages_request(BODY, CLIENT_HEADERS));
        let resp = client.response();
        assert_eq!(resp.status, 200, "round {round}: {resp:?}");
        assert_framed_and_complete(&resp);
        assert_eq!(
            resp.body,
            JSON_REPLY.as_bytes(),
            "round {round}: body relayed byte for byte"
        );
        assert_eq!(
            resp.header("request-id").as_deref(),
            Some("req_tls_upstream")
        );
    }

    let reqs = up.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    for r in &reqs {
        assert_eq!(r.request_line(), "POST /v1/messages HTTP/1.1");
        assert_eq!(r.headers("x-api-key"), vec!["sk-test"], "{}", r.head);
        assert_eq!(
            r.headers("host"),
            vec![format!("localhost:{}", up.port)],
            "{}",
            r.head
        );
        assert_eq!(
            r.body,
            BODY.as_bytes(),
            "request body forwarded byte for byte"
        );
        assert!(!r.head.contains("client-key"), "{}", r.head);
    }
    assert_eq!(
        up.connections(),
        1,
        "the second request reused the pooled TLS connection"
    );
    gw.shutdown();
}

#[test]
fn an_idle_tls_connection_that_received_anything_is_not_reused() {
    let (up, _ca_file, gw) = trusted_setup(&["localhost"], "localhost");
    let first = messages_request(BODY, &format!("{CLIENT_HEADERS}x-then-408: 1\r\n"));
    assert_eq!(request(gw.local_addr(), &first).status, 200);
    thread::sleep(Duration::from_millis(300));
    for round in 0..2 {
        let resp = request(gw.local_addr(), &messages_request(BODY, CLIENT_HEADERS));
        assert_eq!(
            resp.status, 200,
            "round {round}: the stray 408 must not be an answer"
        );
        assert_eq!(resp.body, JSON_REPLY.as_bytes());
    }
    assert_eq!(
        up.connections(),
        2,
        "the spoiled connection was dropped, the new one reused"
    );
    gw.shutdown();
}

#[test]
fn a_prewarmed_tls_connection_serves_the_first_request() {
    let ca = TestCa::new();
    let (cert, key) = ca.server_cert(&["localhost"]);
    let up = TlsUpstream::start(cert, key);
    let ca_file = TempFile::with_contents("ca", &ca.pem());
    let toml = gateway_config(
        &format!("https://localhost:{}", up.port),
        Some(ca_file.path()),
    ) + "[pool]\nprewarm = 1\n";
    let gw = support::gateway(&toml);
    let end = std::time::Instant::now() + IO_TIMEOUT;
    while up.connections() == 0 && std::time::Instant::now() < end {
        thread::sleep(Duration::from_millis(10));
    }
    // Past the settling of the prewarmed connection (its session tickets taken in).
    thread::sleep(Duration::from_millis(500));
    let resp = request(gw.local_addr(), &messages_request(BODY, CLIENT_HEADERS));
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(up.connections(), 1);
    let stats = gw.upstream_connections();
    assert_eq!((stats.opened, stats.reused), (0, 1), "{stats:?}");
    gw.shutdown();
}

#[test]
fn tls_runs_end_to_end_through_a_connect_proxy() {
    let ca = TestCa::new();
    let (cert, key) = ca.server_cert(&["localhost"]);
    let up = TlsUpstream::start(cert, key);
    let ca_file = TempFile::with_contents("ca", &ca.pem());
    let proxy = ConnectProxy::start(Some("Basic dXNlcjpwYXNz"));
    let toml = gateway_config(
        &format!("https://localhost:{}", up.port),
        Some(ca_file.path()),
    )
    .replace(
        "[[upstreams.credentials]]",
        &format!(
            "proxy_url = \"http://{}\"\nproxy_auth = \"user:pass\"\n[[upstreams.credentials]]",
            proxy.addr
        ),
    );
    let gw = support::gateway(&toml);
    for _ in 0..2 {
        let resp = request(gw.local_addr(), &messages_request(BODY, CLIENT_HEADERS));
        assert_eq!(resp.status, 200, "{resp:?}");
        assert_eq!(resp.body, JSON_REPLY.as_bytes());
    }
    // The proxy saw one tunnel to the upstream's name (verified by TLS inside it), never a
    // request or a key.
    assert_eq!(
        proxy.connects(),
        [format!("CONNECT localhost:{} HTTP/1.1", up.port)]
    );
    assert_eq!(up.connections(), 1);
    assert_eq!(up.requests()[1].headers("x-api-key"), vec!["sk-test"]);
    gw.shutdown();
}

#[test]
fn ip_literal_base_url_is_verified_against_the_ip_san() {
    let (up, _ca_file, gw) = trusted_setup(&["localhost", "127.0.0.1"], "127.0.0.1");

    let resp = request(gw.local_addr(), &messages_request(BODY, CLIENT_HEADERS));
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_framed_and_complete(&resp);
    assert_eq!(resp.body, JSON_REPLY.as_bytes());
    let reqs = up.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(
        reqs[0].headers("host"),
        vec![format!("127.0.0.1:{}", up.port)]
    );
    gw.shutdown();
}

#[test]
fn stream_request_goes_through_tls_and_sse_is_relayed() {
    let (up, _ca_file, gw) = trusted_setup(&["localhost", "127.0.0.1"], "localhost");

    let resp = request(
        gw.local_addr(),
        &messages_request(STREAM_BODY, CLIENT_HEADERS),
    );
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_framed_and_complete(&resp);
    assert!(
        resp.header("content-type")
            .is_some_and(|v| v.starts_with("text/event-stream")),
        "{}",
        resp.head
    );
    assert!(
        resp.header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked")),
        "{}",
        resp.head
    );
    assert!(
        resp.raw_body.ends_with(b"0\r\n\r\n"),
        "not terminated with the last chunk: {:?}",
        String::from_utf8_lossy(&resp.raw_body)
    );
    let text = resp.text();
    assert_eq!(text, SSE_EVENTS.concat(), "events relayed as sent");
    assert!(
        text.trim_end()
            .ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}"),
        "{text}"
    );

    let reqs = up.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].body, STREAM_BODY.as_bytes());
    assert_eq!(reqs[0].headers("x-api-key"), vec!["sk-test"]);
    assert_eq!(
        reqs[0].headers("host"),
        vec![format!("localhost:{}", up.port)]
    );
    gw.shutdown();
}

#[test]
fn flush_deadlines_interrupt_tls_reads_without_losing_bytes() {
    // Events 40 ms apart, flushed every 60 ms: most flushes come from a deadline that fell while
    // the gateway waited on a TLS read, which it interrupts and then resumes.
    let (_up, ca_file, _) = trusted_setup(&["localhost"], "localhost");
    let config = format!(
        "{}\n[stream]\nflush_interval_ms = 60\n",
        gateway_config(
            &format!("https://localhost:{}", _up.port),
            Some(ca_file.path())
        )
    );
    let gw = support::gateway(&config);
    for _ in 0..3 {
        let resp = request(
            gw.local_addr(),
            &messages_request(STREAM_BODY, &format!("{CLIENT_HEADERS}x-pace-ms: 40\r\n")),
        );
        assert_eq!(resp.status, 200, "{resp:?}");
        assert_framed_and_complete(&resp);
        assert_eq!(resp.text(), SSE_EVENTS.concat(), "events relayed as sent");
    }
    gw.shutdown();
}

#[test]
fn certificate_for_another_name_is_a_502_naming_tls() {
    let (up, _ca_file, gw) = trusted_setup(&["other.example"], "localhost");

    // The chain is trusted (same CA as the passing tests): the name is what fails.
    assert_handshake_refused(
        gw.local_addr(),
        &up,
        &["NotValidForName", "not valid for name"],
        "the host name",
    );
    gw.shutdown();
}

#[test]
fn untrusted_certificate_is_a_502_naming_tls() {
    let ca = TestCa::new();
    let (cert, key) = ca.server_cert(&["localhost", "127.0.0.1"]);
    let up = TlsUpstream::start(cert, key);
    // No ca_file: the public roots, which do not include the test CA.
    let gw = start_gateway(&format!("https://localhost:{}", up.port), None);

    assert_handshake_refused(
        gw.local_addr(),
        &up,
        &["UnknownIssuer", "unknown issuer"],
        "trust",
    );
    gw.shutdown();
}

#[test]
fn missing_ca_file_fails_start_naming_the_file() {
    let missing = TempFile::unique("missing");
    assert!(!missing.path().exists());
    let text = gateway_config("https://localhost:9", Some(missing.path()));
    let config = Config::parse(&text, "test.toml", &|_| None)
        .unwrap_or_else(|e| panic!("valid test config: {e:?}\n{text}"));
    let err = match Gateway::start(config) {
        Ok(gw) => {
            gw.shutdown();
            panic!("the gateway started with a missing ca_file");
        }
        Err(e) => e.to_string(),
    };
    let name = missing.path().display().to_string();
    assert!(err.contains(&name), "error does not name {name}: {err}");
    assert!(
        err.contains("tls-upstream"),
        "error does not name the upstream: {err}"
    );
}
