//! Test support: gateways started in-process, a scriptable upstream socket server, a raw HTTP
//! client, a CONNECT proxy (`connect_proxy`), the binary run as a child process (`process`), and
//! fakes of the cloud token services (`cloud`).
//!
//! The upstream and the client are written with blocking std sockets and share no code with
//! the gateway, so they check it from the outside, byte for byte.

#![allow(dead_code)]

pub mod cloud;
pub mod connect_proxy;
pub mod process;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use ringgate::{Config, Gateway, GatewayHandle};

/// Starts a gateway from config text (listening on port 0 unless the text says otherwise).
pub fn gateway(toml: &str) -> GatewayHandle {
    let config = Config::parse(toml, "test.toml", &|_| None).expect("valid test config");
    Gateway::start(config).expect("gateway starts")
}

/// Config text for a gateway in front of `upstream`, with extra `[server]` lines.
pub fn config_for(upstream: SocketAddr, server_extra: &str, upstream_extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 2\n{server_extra}\n\
         [[upstreams]]\nname = \"test-upstream\"\nkind = \"anthropic\"\nbase_url = \"http://{upstream}\"\n{upstream_extra}\n\
         [[upstreams.credentials]]\nname = \"primary\"\napi_key = \"sk-upstream-secret\"\n"
    )
}

/// A request as the upstream received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub head: String,
    pub body: Vec<u8>,
}

impl Received {
    pub fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }

    /// All values of a header (case-insensitive name).
    pub fn headers(&self, name: &str) -> Vec<String> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }
}

/// What the scripted upstream does with one request.
pub enum Action {
    /// Writes these pieces, pausing between them, then keeps the connection for the next request.
    Send(Vec<Vec<u8>>, Duration),
    /// Writes these pieces, then closes the connection.
    SendAndClose(Vec<Vec<u8>>, Duration),
    /// Reads the request and never answers (until the test ends).
    Stall,
}

/// A socket server that records requests and answers as a test scripts it.
pub struct Upstream {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub connections: Arc<Mutex<usize>>,
}

impl Upstream {
    pub fn start(script: impl Fn(&Received) -> Action + Send + Sync + 'static) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let script = Arc::new(script);
        let (rec, conns) = (received.clone(), connections.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                *conns.lock().unwrap() += 1;
                let (rec, script) = (rec.clone(), script.clone());
                thread::spawn(move || serve_upstream(stream, rec, script));
            }
        });
        Upstream {
            addr,
            received,
            connections,
        }
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn serve_upstream(
    mut stream: TcpStream,
    rec: Arc<Mutex<Vec<Received>>>,
    script: Arc<dyn Fn(&Received) -> Action + Send + Sync>,
) {
    let mut buf = Vec::new();
    loop {
        let Some(req) = read_request(&mut stream, &mut buf) else {
            return;
        };
        rec.lock().unwrap().push(req.clone());
        match script(&req) {
            Action::Send(pieces, pause) => {
                if write_pieces(&mut stream, &pieces, pause).is_err() {
                    return;
                }
            }
            Action::SendAndClose(pieces, pause) => {
                let _ = write_pieces(&mut stream, &pieces, pause);
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
            Action::Stall => {
                thread::sleep(Duration::from_secs(30));
                return;
            }
        }
    }
}

fn write_pieces(
    stream: &mut TcpStream,
    pieces: &[Vec<u8>],
    pause: Duration,
) -> std::io::Result<()> {
    for p in pieces {
        stream.write_all(p)?;
        stream.flush()?;
        if !pause.is_zero() {
            thread::sleep(pause);
        }
    }
    Ok(())
}

/// Reads one request with a Content-Length or chunked body (what the gateway sends upstream)
/// from any blocking stream (a `TcpStream`, or a TLS stream over one); `None` when the stream
/// ends or fails first, the request incomplete. Bytes after the request stay in `buf` for the
/// next one. A chunked body is recorded without its framing.
pub fn read_request(stream: &mut impl Read, buf: &mut Vec<u8>) -> Option<Received> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        fill(stream, buf)?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        let mut at = head_end;
        loop {
            let line_end = loop {
                if let Some(i) = find(&buf[at..], b"\r\n") {
                    break at + i;
                }
                fill(stream, buf)?;
            };
            let size_text = String::from_utf8_lossy(&buf[at..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            at = line_end + 2;
            while buf.len() < at + size + 2 {
                fill(stream, buf)?;
            }
            body.extend_from_slice(&buf[at..at + size]);
            at += size + 2;
            if size == 0 {
                buf.drain(..at);
                return Some(Received { head, body });
            }
        }
    }
    let len: usize = header("content-length").map_or(0, |v| v.parse().unwrap());
    while buf.len() < head_end + len {
        fill(stream, buf)?;
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Some(Received { head, body })
}

/// Appends one read's bytes to `buf`; `None` at the end of the stream or on an error.
fn fill(stream: &mut impl Read, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 65536];
    let n = read_retrying(stream, &mut chunk).ok()?;
    if n == 0 {
        return None;
    }
    buf.extend_from_slice(&chunk[..n]);
    Some(())
}

/// A blocking read that retries when a signal interrupts it (std does not).
pub fn read_retrying(stream: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match stream.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// An HTTP response as a client received it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    /// The body with any chunked framing removed.
    pub body: Vec<u8>,
    /// The body as it arrived on the wire.
    pub raw_body: Vec<u8>,
    /// Whether the body was complete (terminating chunk, or the full Content-Length).
    pub complete: bool,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A blocking client connection.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// The last read error, for failure messages.
    last_error: Option<String>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client {
            stream,
            buf: Vec::new(),
            last_error: None,
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads one response. Bodies are delimited by Content-Length, chunks, or close.
    pub fn response(&mut self) -> Response {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            assert!(
                self.fill() > 0,
                "connection closed before a response head ({:?}): {:?}",
                self.last_error,
                String::from_utf8_lossy(&self.buf)
            );
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        self.buf.drain(..head_end);
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let mut r = Response {
            status,
            head,
            body: Vec::new(),
            raw_body: Vec::new(),
            complete: false,
        };
        if let Some(len) = r.header("content-length") {
            let len: usize = len.parse().unwrap();
            while self.buf.len() < len && self.fill() > 0 {}
            let n = len.min(self.buf.len());
            r.body = self.buf.drain(..n).collect();
            r.raw_body = r.body.clone();
            r.complete = n == len;
        } else if r
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            while let Some(line_end) = self.until(b"\r\n") {
                let size = usize::from_str_radix(
                    std::str::from_utf8(&self.buf[..line_end]).unwrap().trim(),
                    16,
                )
                .unwrap();
                if size == 0 {
                    if self.until(b"\r\n\r\n").is_some() {
                        let n = line_end + 4;
                        r.raw_body.extend(self.buf.drain(..n));
                        r.complete = true;
                    }
                    break;
                }
                let need = line_end + 2 + size + 2;
                while self.buf.len() < need && self.fill() > 0 {}
                if self.buf.len() < need {
                    r.raw_body.append(&mut self.buf);
                    break;
                }
                r.body
                    .extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
                assert_eq!(
                    &self.buf[need - 2..need],
                    b"\r\n",
                    "chunk not ended by CRLF"
                );
                r.raw_body.extend(self.buf.drain(..need));
            }
        } else if (100..200).contains(&status) || status == 204 || status == 304 {
            r.complete = true;
        } else {
            while self.fill() > 0 {}
            r.body = std::mem::take(&mut self.buf);
            r.raw_body = r.body.clone();
            r.complete = true;
        }
        r
    }

    /// Waits until `needle` is buffered; returns its position.
    fn until(&mut self, needle: &[u8]) -> Option<usize> {
        loop {
            if let Some(i) = find(&self.buf, needle) {
                return Some(i);
            }
            if self.fill() == 0 {
                return None;
            }
        }
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 65536];
        match read_retrying(&mut self.stream, &mut chunk) {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                n
            }
            Err(e) => {
                self.last_error = Some(e.to_string());
                0
            }
        }
    }

    /// True if the server closed the connection (reads EOF) within the read timeout.
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(read_retrying(&mut self.stream, &mut b), Ok(0) | Err(_))
    }
}

/// One request on a new connection.
pub fn request(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut c = Client::connect(addr);
    c.send(raw);
    c.response()
}

/// A POST /v1/messages with this JSON body and extra header lines.
pub fn messages_request(body: &str, extra_headers: &str) -> Vec<u8> {
    format!(
        "POST /v1/messages HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nx-api-key: client-key\r\n{extra_headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A JSON response from the scripted upstream.
pub fn json_response(status: u16, body: &str, extra_headers: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra_headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// An SSE response head with chunked framing.
pub const SSE_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

/// `data` as one chunk.
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// One chunk per event (no last chunk).
pub fn event_chunks(events: &[String]) -> Vec<Vec<u8>> {
    events.iter().map(|e| chunk(e.as_bytes())).collect()
}

/// `events` as a whole chunked body: one chunk per event, then the last chunk.
pub fn chunked_body(events: &[String]) -> Vec<u8> {
    let mut body = event_chunks(events).concat();
    body.extend_from_slice(b"0\r\n\r\n");
    body
}

/// A stream answer written piece by piece: the head, one chunk per event, the last chunk.
pub fn sse_pieces(events: &[String]) -> Vec<Vec<u8>> {
    let mut pieces = vec![SSE_HEAD.to_vec()];
    pieces.extend(event_chunks(events));
    pieces.push(b"0\r\n\r\n".to_vec());
    pieces
}

/// A plausible event sequence of `deltas` text deltas, ending with message_stop.
pub fn sse_events(deltas: usize) -> Vec<String> {
    let mut events = vec![
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n".to_string(),
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_string(),
    ];
    for i in 0..deltas {
        events.push(format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"word{i} \"}}}}\n\n"
        ));
    }
    events.push(
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n".into(),
    );
    events.push("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":9}}\n\n".into());
    events.push("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".into());
    events
}

/// Splits `bytes` into pieces of 1..=max bytes, deterministically from `seed`.
pub fn fragments(bytes: &[u8], max: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let n = rng.usize(1..=max).min(bytes.len() - at);
        out.push(bytes[at..at + n].to_vec());
        at += n;
    }
    out
}

/// The key of credential `a` of [`rate_limiting_upstream`], which it answers with 429.
pub const LIMITED_KEY: &str = "sk-upstream-a-secret";
/// The key of credential `b`, which it serves.
pub const SERVED_KEY: &str = "sk-upstream-b-secret";

/// An upstream that rate-limits [`LIMITED_KEY`] for a minute and answers [`SERVED_KEY`]: a
/// stream of 4 deltas (input 3, output 9 tokens) when the body asks for one, else a message
/// with usage (input 11, output 7, cache creation 2, cache read 5) behind a tool input that
/// has a `usage` key of its own.
pub fn rate_limiting_upstream() -> Upstream {
    Upstream::start(|r| {
        if r.headers("x-api-key").concat() == LIMITED_KEY {
            let e = r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#;
            let limited = json_response(429, e, "retry-after: 60\r\n");
            return Action::Send(vec![limited], Duration::ZERO);
        }
        if String::from_utf8_lossy(&r.body).contains("\"stream\":true") {
            return Action::Send(sse_pieces(&sse_events(4)), Duration::from_millis(1));
        }
        let answer = r#"{"id":"msg_1","type":"message","content":[{"type":"tool_use","input":{"usage":{"input_tokens":999}}}],"usage":{"input_tokens":11,"output_tokens":7,"cache_creation_input_tokens":2,"cache_read_input_tokens":5}}"#;
        Action::Send(vec![json_response(200, answer, "")], Duration::ZERO)
    })
}

/// Config lines for an upstream `up` at `addr` with credentials `a` ([`LIMITED_KEY`]) and `b`
/// ([`SERVED_KEY`]), tried in that order, and client keys `team-a` (`client-key`) and `team-b`
/// (`other-client-key`).
pub fn two_credentials(addr: SocketAddr) -> String {
    format!(
        "[routing]\nstrategy = \"fill-first\"\n\
         [models.aliases]\nx = \"claude-x\"\n\
         [[api_keys]]\nname = \"team-a\"\nkey = \"client-key\"\n\
         [[api_keys]]\nname = \"team-b\"\nkey = \"other-client-key\"\n\
         [[upstreams]]\nname = \"up\"\nkind = \"anthropic\"\nbase_url = \"http://{addr}\"\n\
         [[upstreams.credentials]]\nname = \"a\"\napi_key = \"{LIMITED_KEY}\"\n\
         [[upstreams.credentials]]\nname = \"b\"\napi_key = \"{SERVED_KEY}\"\n"
    )
}

/// A raw request with its `x-api-key: client-key` replaced by `key`.
pub fn with_key(raw: Vec<u8>, key: &str) -> Vec<u8> {
    String::from_utf8(raw)
        .unwrap()
        .replacen("x-api-key: client-key", &format!("x-api-key: {key}"), 1)
        .into_bytes()
}
