//! Tests of the mock server: keys and faults, and answers over real sockets.

use super::*;
use crate::dialect::Dialect;

fn handler(api_key: Option<&str>) -> MockHandler {
    MockHandler::new(
        Duration::ZERO,
        api_key.map(str::to_string),
        vec![
            ("key-a".into(), "rate_limit".into()),
            ("key-o".into(), "overloaded".into()),
        ],
    )
}

#[test]
fn a_key_gets_its_fault_unless_the_request_names_one() {
    let h = handler(None);
    assert_eq!(h.admit(Some(b"key-a"), None).ok(), Some(Some("rate_limit")));
    assert_eq!(h.admit(Some(b"key-o"), None).ok(), Some(Some("overloaded")));
    assert_eq!(
        h.admit(Some(b"key-a"), Some("server_error")).ok(),
        Some(Some("server_error"))
    );
    assert_eq!(h.admit(Some(b"key-b"), None).ok(), Some(None));
    assert_eq!(h.admit(Some(b"key-a "), None).ok(), Some(None));
    assert_eq!(h.admit(Some(b""), None).ok(), Some(None));
    assert_eq!(h.admit(None, None).ok(), Some(None));
    assert_eq!(
        h.admit(Some(b"key-b"), Some("auth")).ok(),
        Some(Some("auth"))
    );
}

#[test]
fn a_key_given_twice_gets_its_last_fault() {
    let h = MockHandler::new(
        Duration::ZERO,
        None,
        vec![
            ("k".into(), "rate_limit".into()),
            ("k".into(), "auth".into()),
        ],
    );
    assert_eq!(h.admit(Some(b"k"), None).ok(), Some(Some("auth")));
}

#[test]
fn with_a_required_key_the_fault_keys_are_known_too() {
    let h = handler(Some("main"));
    assert_eq!(h.admit(Some(b"main"), None).ok(), Some(None));
    assert_eq!(h.admit(Some(b"key-a"), None).ok(), Some(Some("rate_limit")));
    for key in [Some(&b"key-b"[..]), Some(b""), None] {
        let e = h.admit(key, Some("rate_limit")).unwrap_err();
        assert_eq!(e.status, 401);
    }
    // Without key faults, the required key alone decides, as before.
    let h = MockHandler::new(Duration::ZERO, Some("main".into()), Vec::new());
    assert_eq!(
        h.admit(Some(b"main"), Some("auth")).ok(),
        Some(Some("auth"))
    );
    assert!(h.admit(Some(b"key-a"), None).is_err());
}

#[test]
fn stats_sum_their_shards() {
    let stats = MockStats::new(2);
    stats.shard(0).connection();
    stats.shard(1).connection();
    stats.shard(1).request();
    // Past the last shard: the last one's.
    stats.shard(7).request();
    assert_eq!((stats.connections(), stats.requests()), (2, 2));
    assert_eq!(MockStats::new(0).connections(), 0);
}

#[test]
fn fingerprint_is_the_sha256_prefix() {
    assert_eq!(key_fingerprint(b"abc"), "ba7816bf8f01");
    assert_eq!(key_fingerprint(b""), "e3b0c44298fc");
    let fp = key_fingerprint(b"key-a");
    assert_eq!(fp.len(), 12);
    assert!(fp
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert_ne!(fp, key_fingerprint(b"key-b"));
}

/// A fresh mock on a port of its own, one worker, unpaced.
fn mock() -> MockServer {
    mock_with(None, None)
}

fn mock_with(api_key: Option<&str>, dialect: Option<Dialect>) -> MockServer {
    MockServer::start(MockServerOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        workers: 1,
        event_interval: Duration::ZERO,
        api_key: api_key.map(str::to_string),
        key_faults: Vec::new(),
        stats: None,
        dialect,
    })
    .unwrap()
}

/// Sends one Messages request with these extra header lines to a fresh mock; returns the status
/// and the decoded body.
fn exchange(extra: &str, stream: bool) -> (u16, Vec<u8>) {
    let body = format!(
        "{{\"model\":\"m\",\"max_tokens\":9,\"stream\":{stream},\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}]}}"
    );
    let server = mock();
    let got = exchange_with(&server, "/v1/messages", &body, extra);
    server.shutdown();
    got
}

/// Sends one POST to `target` on `server`; returns the status and the decoded body.
fn exchange_with(server: &MockServer, target: &str, body: &str, extra: &str) -> (u16, Vec<u8>) {
    let got = send(server, "POST", target, extra, body.as_bytes());
    (got.status, got.body)
}

/// An answer as a client on a socket got it, its body unchunked.
pub(crate) struct Got {
    pub status: u16,
    /// Lower-cased.
    pub head: String,
    pub body: Vec<u8>,
}

impl Got {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// One request on a connection of its own; `extra` are header lines.
pub(crate) fn send(
    server: &MockServer,
    method: &str,
    target: &str,
    extra: &str,
    body: &[u8],
) -> Got {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nhost: m\r\nconnection: close\r\n{extra}content-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    let end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let status = std::str::from_utf8(&got[9..12]).unwrap().parse().unwrap();
    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
    let mut body = got[end..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut decoder = crate::http::chunked::ChunkedDecoder::new();
        let r = decoder.decode_in_place(&mut body);
        assert!(decoder.is_done() && r.error.is_none(), "{head}");
        body.truncate(r.data);
    }
    Got { status, head, body }
}

/// The (index, send time) tags of the deltas in an SSE body, in order.
fn tags_of(body: &[u8]) -> Vec<(u32, u64)> {
    let text = String::from_utf8(body.to_vec()).unwrap();
    text.split("\n\n")
        .filter(|e| e.starts_with("event: content_block_delta"))
        .map(|e| {
            let at = e.find("\"text\":\"").unwrap() + 8;
            shape::parse_tag(&e.as_bytes()[at..]).expect("a stamped tag")
        })
        .collect()
}

#[test]
fn shaped_deltas_carry_their_send_times() {
    let before = shape::now_micros();
    let (status, body) = exchange(
        "x-mock-deltas: 6\r\nx-mock-delta-bytes: 40\r\nx-mock-event-interval-ms: 5\r\n",
        true,
    );
    let after = shape::now_micros();
    assert_eq!(status, 200);
    let tags = tags_of(&body);
    assert_eq!(
        tags.iter().map(|t| t.0).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );
    for pair in tags.windows(2) {
        // Paced: each delta went out in its own write, about 5 ms after the one before.
        assert!(pair[1].1 >= pair[0].1 + 4_000, "{tags:?}");
    }
    assert!(
        before <= tags[0].1 && tags[5].1 <= after,
        "{before} {tags:?} {after}"
    );

    // Unpaced, the whole answer is one write: one time for all.
    let before = shape::now_micros();
    let (_, body) = exchange("x-mock-deltas: 3\r\n", true);
    let tags = tags_of(&body);
    assert_eq!(tags.len(), 3);
    assert!(
        tags.iter().all(|t| t.1 == tags[0].1 && t.1 >= before),
        "{tags:?}"
    );
}

#[test]
fn a_huge_event_interval_pauses_the_stream_instead_of_breaking_it() {
    use std::io::{Read, Write};
    let server = mock();
    let body =
        r#"{"model":"m","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let mut s = std::net::TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    write!(
        s,
        "POST /v1/messages HTTP/1.1\r\nhost: m\r\nx-mock-event-interval-ms: {}\r\n\
         content-length: {}\r\n\r\n{body}",
        u64::MAX,
        body.len()
    )
    .unwrap();
    let mut got = Vec::new();
    let end = s.read_to_end(&mut got);
    server.shutdown();
    // The first event, then a pause that outlasts the test, the connection still open.
    assert!(
        String::from_utf8_lossy(&got).contains("event: message_start"),
        "{got:?}"
    );
    let e = end.expect_err("the connection was closed, not paused");
    assert!(
        matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
        "{e}"
    );
}

#[test]
fn shape_headers_are_checked_and_sized() {
    let (status, body) = exchange("x-mock-deltas: lots\r\n", true);
    let body = String::from_utf8(body).unwrap();
    assert_eq!(status, 400);
    assert!(
        body.contains("x-mock-deltas") && body.contains("invalid_request_error"),
        "{body}"
    );
    let (status, body) = exchange("x-mock-reply-bytes: 5000\r\n", false);
    assert_eq!(status, 200);
    let body = String::from_utf8(body).unwrap();
    assert!(
        body.contains(&format!("\"text\":\"{}\"", "x".repeat(5000))),
        "{body}"
    );
}

#[test]
fn keys_are_read_from_each_dialects_header() {
    let key = |headers: &[(&str, &str)]| {
        presented_key(|name| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_bytes())
        })
        .map(|k| String::from_utf8(k.to_vec()).unwrap())
    };
    assert_eq!(key(&[("x-api-key", "a")]).as_deref(), Some("a"));
    assert_eq!(key(&[("Authorization", "Bearer b ")]).as_deref(), Some("b"));
    assert_eq!(key(&[("authorization", "bearer b")]).as_deref(), Some("b"));
    assert_eq!(key(&[("x-goog-api-key", "g")]).as_deref(), Some("g"));
    // Not a bearer token: no key from that header.
    assert_eq!(key(&[("authorization", "Basic Zm9v")]), None);
    assert_eq!(key(&[("authorization", "Bearer")]), None);
    assert_eq!(
        key(&[("x-goog-api-key", "g"), ("x-api-key", "a")]).as_deref(),
        Some("a")
    );
    assert_eq!(key(&[]), None);
}

#[test]
fn a_wrong_key_is_refused_in_the_dialect_of_the_path() {
    let server = mock_with(Some("right"), None);
    let chat = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let gemini = r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#;
    let generate = "/v1beta/models/g:generateContent";
    let (status, body) = exchange_with(
        &server,
        "/v1/chat/completions",
        chat,
        "authorization: Bearer wrong\r\n",
    );
    assert_eq!(status, 401);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");
    let (status, body) = exchange_with(&server, generate, gemini, "x-goog-api-key: wrong\r\n");
    assert_eq!(status, 400);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["details"][0]["reason"], "API_KEY_INVALID");
    let ok = [
        (
            "/v1/chat/completions",
            chat,
            "authorization: Bearer right\r\n",
        ),
        (generate, gemini, "x-goog-api-key: right\r\n"),
    ];
    for (target, body, header) in ok {
        assert_eq!(
            exchange_with(&server, target, body, header).0,
            200,
            "{target}"
        );
    }
    // A bad directive is refused in the dialect's shape too.
    let (status, body) = exchange_with(
        &server,
        generate,
        gemini,
        "x-goog-api-key: right\r\nx-mock-tool-calls: 99\r\n",
    );
    assert_eq!(status, 400);
    assert!(String::from_utf8(body)
        .unwrap()
        .contains("\"INVALID_ARGUMENT\""));
    server.shutdown();
}

#[test]
fn one_dialect_served_is_one_dialect_answered() {
    let server = mock_with(None, Some(Dialect::Gemini));
    let gemini = r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#;
    let chat = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let target = "/v1beta/models/g:streamGenerateContent?alt=sse";
    let (status, body) = exchange_with(&server, target, gemini, "");
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    assert!(text.starts_with("data: {\"candidates\""), "{text}");
    let (status, body) = exchange_with(&server, "/v1/chat/completions", chat, "");
    assert_eq!(status, 404);
    assert!(String::from_utf8(body)
        .unwrap()
        .contains("/v1/chat/completions"));
    server.shutdown();
}

/// The tags of the shaped deltas of an OpenAI or Gemini stream body, in order: the texts after
/// `text_key` (the member's name and `:"`) that start with `#`.
fn dialect_tags(body: &[u8], text_key: &str) -> Vec<(u32, u64)> {
    let text = String::from_utf8(body.to_vec()).unwrap();
    let tagged = format!("{text_key}#");
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter_map(|data| {
            let at = data.find(&tagged)? + text_key.len();
            let tag = shape::parse_tag(&data.as_bytes()[at..]);
            tag.or_else(|| panic!("a delta without a stamped tag: {data}"))
        })
        .collect()
}

#[test]
fn shaped_deltas_carry_their_send_times_in_every_dialect() {
    let server = mock();
    let chat = r#"{"model":"model-of-some-length","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let gemini = r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#;
    let before = shape::now_micros();
    let shaped = "x-mock-deltas: 4\r\nx-mock-delta-bytes: 30\r\nx-mock-event-interval-ms: 2\r\n";
    for (target, body, extra, key) in [
        (
            "/v1/chat/completions",
            chat,
            "x-mock-quirks: noise,comments\r\n",
            "\"content\":\"",
        ),
        (
            "/v1beta/models/gemini-x:streamGenerateContent?alt=sse",
            gemini,
            "",
            "\"text\":\"",
        ),
    ] {
        let (status, got) = exchange_with(&server, target, body, &format!("{shaped}{extra}"));
        assert_eq!(status, 200, "{target}");
        let tags = dialect_tags(&got, key);
        assert_eq!(
            tags.iter().map(|t| t.0).collect::<Vec<_>>(),
            [0, 1, 2, 3],
            "{target}"
        );
        for pair in tags.windows(2) {
            assert!(pair[1].1 > pair[0].1, "{target}: {tags:?}");
        }
        assert!(tags[0].1 >= before, "{target}");
    }
    server.shutdown();
}
