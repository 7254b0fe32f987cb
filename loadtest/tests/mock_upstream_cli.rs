//! `mock-upstream` as the separate process a gateway test runs it as: faults chosen by API key,
//! the request log such a test counts attempts from, HTTPS through its TLS front, the
//! connection and request counts it prints on exit, and the dialects it serves. Every wait is bounded, so a broken binary
//! fails these tests instead of hanging them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ringgate::mock::answers::FAULTS;
use ringgate::mock::directives::QUIRKS;
use ringgate::mock::server::key_fingerprint;
use support::{Mock, WAIT};

mod support;

const BODY: &str =
    r#"{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
const STREAM_BODY: &str = r#"{"model":"claude-x","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

/// Sends the messages request with this key; returns the status and the response head.
fn post(addr: SocketAddr, key: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "POST /v1/messages HTTP/1.1\r\nhost: mock\r\nx-api-key: {key}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    )
    .unwrap();
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        assert!(Instant::now() < deadline, "no whole response in time");
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(got[..end].to_vec()).unwrap();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .expect("a content-length");
            if got.len() >= end + 4 + length {
                let status = head[9..12].parse().unwrap();
                return (status, head.to_ascii_lowercase());
            }
        }
        let n = s.read(&mut buf).expect("read the response");
        assert!(n > 0, "connection closed mid-response");
        got.extend_from_slice(&buf[..n]);
    }
}

fn answered(status: u16, key: &str) -> String {
    format!(
        "answered POST /v1/messages key={} status={status}",
        key_fingerprint(key.as_bytes())
    )
}

#[test]
fn faults_by_key_and_the_request_log() {
    let mock = Mock::start(&["--log-requests", "--fault-for-key", "key-a=rate_limit"]);
    let (status, head) = post(mock.addr, "key-a");
    assert_eq!(status, 429, "{head}");
    assert!(head.contains("\r\nretry-after: 1"), "{head}");
    let (status, head) = post(mock.addr, "key-b");
    assert_eq!(status, 200, "{head}");

    let log = mock.stop();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("answered")).collect();
    assert_eq!(lines.len(), 2, "{log}");
    for expected in [answered(429, "key-a"), answered(200, "key-b")] {
        let n = lines.iter().filter(|l| l.ends_with(&expected)).count();
        assert_eq!(n, 1, "{expected} in:\n{log}");
    }
    for line in &lines {
        // `[2025-01-01T00:00:00.123Z DEBUG mock::requests] answered …`: milliseconds, so a test
        // can measure the spacing of attempts.
        let stamp = line.trim_start_matches('[').split(' ').next().unwrap();
        let millis = stamp.rsplit_once('.').map(|(_, m)| m);
        assert!(
            millis.is_some_and(|m| m.len() == 4 && m.ends_with('Z')),
            "{line}"
        );
        assert!(line.contains("mock::requests"), "{line}");
    }
    assert!(!log.contains("key-a") && !log.contains("key-b"), "{log}");
}

#[test]
fn fault_keys_are_known_keys_and_nothing_is_logged_unasked() {
    let mock = Mock::start(&["--api-key", "main", "--fault-for-key", "key-a=overloaded"]);
    assert_eq!(post(mock.addr, "key-a").0, 529);
    assert_eq!(post(mock.addr, "main").0, 200);
    assert_eq!(post(mock.addr, "key-b").0, 401);
    let log = mock.stop();
    assert!(!log.contains("answered"), "{log}");
}

#[test]
fn an_unknown_fault_is_refused_at_startup() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-upstream"))
        .args(["--listen", "127.0.0.1:0", "--fault-for-key", "x=bogus"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mock-upstream");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mock-upstream started despite an unknown fault");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success());
    assert!(stderr.contains("bogus"), "{stderr}");
    for fault in FAULTS {
        assert!(stderr.contains(fault), "{fault} missing from: {stderr}");
    }
}

// ---------------------------------------------------------------------------------------------
// HTTPS and --stats

/// A fresh directory under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "mock-upstream-cli-{}-{n}-{tag}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A rustls client config trusting only the CA certificates in this PEM.
fn client_config(ca_pem: &[u8]) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    assert!(!roots.is_empty(), "no CA certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

type TlsClient = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Connects to `addr` with TLS for the name `localhost`; the handshake happens on first use.
fn tls_connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> TlsClient {
    let tcp = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    tcp.set_write_timeout(Some(WAIT)).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

fn send_messages(s: &mut impl Write, body: &str) -> std::io::Result<()> {
    write!(
        s,
        "POST /v1/messages HTTP/1.1\r\nhost: localhost\r\nx-api-key: k\r\n\
         anthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )?;
    s.flush()
}

/// One whole response read from `s` (a keep-alive connection: bytes of a next response stay in
/// `buf`): its status, its head in lower case, and its body (chunked bodies decoded).
fn read_response(s: &mut impl Read, buf: &mut Vec<u8>) -> (u16, String, Vec<u8>) {
    let deadline = Instant::now() + WAIT;
    let mut more = |buf: &mut Vec<u8>| {
        assert!(Instant::now() < deadline, "no whole response in time");
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).expect("read the response");
        assert!(n > 0, "connection closed mid-response");
        buf.extend_from_slice(&chunk[..n]);
    };
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        more(buf);
    };
    let head = String::from_utf8(buf[..end].to_vec())
        .unwrap()
        .to_ascii_lowercase();
    buf.drain(..end + 4);
    let status = head[9..12].parse().unwrap();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            (n == name).then(|| v.trim().to_string())
        })
    };
    let mut body = Vec::new();
    if header("transfer-encoding").as_deref() == Some("chunked") {
        loop {
            let line_end = loop {
                if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                more(buf);
            };
            let size_line = std::str::from_utf8(&buf[..line_end]).unwrap();
            let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16)
                .expect("a chunk size");
            while buf.len() < line_end + 2 + size + 2 {
                more(buf);
            }
            body.extend_from_slice(&buf[line_end + 2..line_end + 2 + size]);
            assert_eq!(&buf[line_end + 2 + size..line_end + 4 + size], b"\r\n");
            buf.drain(..line_end + 4 + size);
            if size == 0 {
                return (status, head, body);
            }
        }
    }
    let length: usize = header("content-length")
        .expect("a content-length or chunked body")
        .parse()
        .unwrap();
    while buf.len() < length {
        more(buf);
    }
    body.extend(buf.drain(..length));
    (status, head, body)
}

/// The event names of an SSE body, in order.
fn event_names(body: &[u8]) -> Vec<String> {
    String::from_utf8(body.to_vec())
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("event: ").map(str::to_string))
        .collect()
}

#[test]
fn tls_self_signed_keep_alive_and_stats() {
    let dir = TempDir::new("tls");
    let mock = Mock::start(&["--tls-self-signed", dir.arg(), "--stats"]);
    let ca = std::fs::read(dir.path().join("ca.pem")).expect("ca.pem written at start");
    let mut client = tls_connect(mock.addr, client_config(&ca));
    let mut buf = Vec::new();

    send_messages(&mut client, BODY).unwrap();
    let (status, head, body) = read_response(&mut client, &mut buf);
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("\r\ncontent-type: application/json"),
        "{head}"
    );
    let text = String::from_utf8(body).unwrap();
    assert!(text.starts_with("{\"id\":\"msg_"), "{text}");
    for part in [
        "\"type\":\"message\"",
        "\"role\":\"assistant\"",
        "\"content\":[{\"type\":\"text\"",
        "\"usage\":{",
    ] {
        assert!(text.contains(part), "{part} missing from {text}");
    }

    // The same connection (keep-alive), now streaming.
    send_messages(&mut client, STREAM_BODY).unwrap();
    let (status, head, body) = read_response(&mut client, &mut buf);
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("\r\ncontent-type: text/event-stream"),
        "{head}"
    );
    let events = event_names(&body);
    assert_eq!(events.first().map(String::as_str), Some("message_start"));
    assert!(
        events.iter().any(|e| e == "content_block_delta"),
        "{events:?}"
    );
    assert_eq!(events.last().map(String::as_str), Some("message_stop"));
    assert!(buf.is_empty(), "bytes after the second response");

    let stderr = mock.terminate();
    assert!(
        stderr.contains("mock-upstream: connections=1 requests=2"),
        "{stderr}"
    );
}

#[test]
fn a_client_not_trusting_the_ca_fails_and_the_next_is_served() {
    let dir = TempDir::new("untrusted");
    let mock = Mock::start(&["--tls-self-signed", dir.arg(), "--stats"]);

    // A CA of its own, not the mock's.
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other_ca = params
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let mut stranger = tls_connect(mock.addr, client_config(other_ca.pem().as_bytes()));
    let err = send_messages(&mut stranger, BODY)
        .and_then(|()| stranger.read(&mut [0u8; 64]).map(|_| ()))
        .expect_err("a handshake with an untrusted certificate fails");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    drop(stranger);

    let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
    let mut client = tls_connect(mock.addr, client_config(&ca));
    let mut buf = Vec::new();
    send_messages(&mut client, BODY).unwrap();
    let (status, head, _) = read_response(&mut client, &mut buf);
    assert_eq!(status, 200, "{head}");

    // Both connections were accepted; one request answered.
    let stderr = mock.terminate();
    assert!(
        stderr.contains("mock-upstream: connections=2 requests=1"),
        "{stderr}"
    );
}

#[test]
fn tls_from_pem_files() {
    let dir = TempDir::new("pem");
    std::fs::create_dir_all(dir.path()).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca =
        rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();

    let mock = Mock::start(&[
        "--tls-cert",
        cert_file.to_str().unwrap(),
        "--tls-key",
        key_file.to_str().unwrap(),
    ]);
    let mut client = tls_connect(mock.addr, client_config(ca.pem().as_bytes()));
    let mut buf = Vec::new();
    send_messages(&mut client, BODY).unwrap();
    let (status, head, _) = read_response(&mut client, &mut buf);
    assert_eq!(status, 200, "{head}");
    // Without --stats, nothing is counted aloud.
    let stderr = mock.terminate();
    assert!(!stderr.contains("connections="), "{stderr}");
}

#[test]
fn plain_stats_count_connections_and_requests() {
    let mock = Mock::start(&["--stats"]);
    assert_eq!(post(mock.addr, "k").0, 200);
    assert_eq!(post(mock.addr, "k").0, 200);
    let stderr = mock.terminate();
    assert!(
        stderr.contains("mock-upstream: connections=2 requests=2"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// Dialects

/// Sends one POST to `target` with these extra header lines; returns the status and the body.
fn post_to(addr: SocketAddr, target: &str, headers: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "POST {target} HTTP/1.1\r\nhost: mock\r\n{headers}content-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let (status, _, body) = read_response(&mut s, &mut Vec::new());
    (status, String::from_utf8(body).unwrap())
}

const CHAT: &str = r#"{"model":"gpt-x","messages":[{"role":"user","content":"hi"}]}"#;
const GENERATE: &str = r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#;
const GEMINI_PATH: &str = "/v1beta/models/gemini-x:generateContent";

#[test]
fn dialect_serves_only_its_own_paths() {
    let mock = Mock::start(&["--dialect", "openai", "--api-key", "k"]);
    let bearer = "authorization: Bearer k\r\n";
    let (status, body) = post_to(mock.addr, "/v1/chat/completions", bearer, CHAT);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"object\":\"chat.completion\""), "{body}");
    assert_eq!(post_to(mock.addr, "/chat/completions", bearer, CHAT).0, 200);
    let (status, body) = post_to(mock.addr, "/v1/messages", "x-api-key: k\r\n", BODY);
    assert_eq!(status, 404, "{body}");
    let (status, _) = post_to(mock.addr, GEMINI_PATH, "x-goog-api-key: k\r\n", GENERATE);
    assert_eq!(status, 404);
    drop(mock);

    // The default serves every dialect.
    let mock = Mock::start(&[]);
    for (target, body) in [
        ("/v1/messages", BODY),
        ("/v1/chat/completions", CHAT),
        (GEMINI_PATH, GENERATE),
    ] {
        assert_eq!(post_to(mock.addr, target, "", body).0, 200, "{target}");
    }
}

#[test]
fn fault_keys_are_read_from_each_dialects_key_header() {
    let mock = Mock::start(&["--log-requests", "--fault-for-key", "key-a=rate_limit"]);
    let (status, body) = post_to(
        mock.addr,
        "/v1/chat/completions",
        "authorization: Bearer key-a\r\n",
        CHAT,
    );
    assert_eq!(status, 429);
    assert!(body.contains("\"rate_limit_exceeded\""), "{body}");
    let (status, body) = post_to(
        mock.addr,
        GEMINI_PATH,
        "x-goog-api-key: key-a\r\n",
        GENERATE,
    );
    assert_eq!(status, 429);
    assert!(body.contains("\"RESOURCE_EXHAUSTED\""), "{body}");
    let (status, _) = post_to(
        mock.addr,
        GEMINI_PATH,
        "x-goog-api-key: key-b\r\n",
        GENERATE,
    );
    assert_eq!(status, 200);
    let log = mock.stop();
    let fingerprint = key_fingerprint(b"key-a");
    assert_eq!(
        log.lines()
            .filter(|l| l.contains(&format!("key={fingerprint} status=429")))
            .count(),
        2,
        "{log}"
    );
}

#[test]
fn help_names_every_fault_quirk_and_dialect() {
    let out = Command::new(env!("CARGO_BIN_EXE_mock-upstream"))
        .arg("--help")
        .output()
        .expect("run mock-upstream --help");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let names = FAULTS
        .iter()
        .chain(QUIRKS.iter().map(|(name, _)| name))
        .chain(&["--dialect", "anthropic", "openai", "gemini", "all"]);
    for name in names.chain(&[
        "x-mock-tool-calls",
        "x-mock-finish",
        "x-mock-quirks",
        "x-mock-deltas",
        "x-goog-api-key",
        "authorization: Bearer",
    ]) {
        assert!(help.contains(name), "{name} missing from --help:\n{help}");
    }
}
