//! The mock upstream as an HTTP server: the answers of [`super::answers`], on real sockets.
//!
//! Used by the gateway's built-in mock (on loopback, served by the gateway's own workers) and by
//! the `mock-upstream` load-test binary. Streams are paced so that a demo visibly streams and a
//! benchmark can model a model's token rate. A benchmark shapes answers with headers (see
//! [`super::shape`]); the send time of each shaped delta is stamped here, at the write that
//! sends it.
//!
//! Faults can be tied to API keys, so a test can put a gateway with several credentials in front
//! of it and have one credential fail while another works, without the gateway's help. Each
//! answer is logged (target `mock::requests`, at debug) with a fingerprint of its key and its
//! status, so the same test can count from the mock's side which key was used, and when.
//!
//! [`MockStats`] counts connections and answered requests (per worker, summed when read), so a
//! benchmark can tell how many connections a gateway opened for how many requests.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use monoio::net::TcpStream;

use super::answers::{self, Delivery, Reply};
use super::shape::{self, Shape};
use crate::api::auth::{same, sha256};
use crate::http::chunked::{push_chunk, LAST_CHUNK};
use crate::http::response::ResponseHead;
use crate::http::{ApiError, ErrorType};
use crate::runtime::{accept_each, bind_group, spawn_connection, Driver, Workers};
use crate::server::conn::{serve, After, Handler, Limits, Request};
use crate::server::io::write_all;
use crate::shutdown::Shutdown;

/// The log target of the one line per answered request.
pub const REQUEST_LOG_TARGET: &str = "mock::requests";

/// The longest pause between two streamed events; a longer one asked for is this. The runtime's
/// timers cannot be set past about 584 million years from their start, and a pause near that
/// (`x-mock-event-interval-ms: 18446744073709551615`) panicked the connection's task.
pub const MAX_EVENT_INTERVAL: Duration = Duration::from_secs(3600);

/// Connections accepted and requests answered by a mock server, one shard per worker (each on
/// its own cache line, counted with relaxed atomics), summed when read.
#[derive(Debug)]
pub struct MockStats {
    shards: Box<[StatsShard]>,
}

/// One worker's counters.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct StatsShard {
    connections: AtomicU64,
    requests: AtomicU64,
}

impl StatsShard {
    pub fn connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
}

impl MockStats {
    /// Counters for `workers` workers (at least one).
    pub fn new(workers: usize) -> Arc<MockStats> {
        Arc::new(MockStats {
            shards: (0..workers.max(1)).map(|_| StatsShard::default()).collect(),
        })
    }

    /// Worker `index`'s shard (indexes past the last share the last one's).
    pub fn shard(&self, index: usize) -> &StatsShard {
        &self.shards[index.min(self.shards.len() - 1)]
    }

    pub fn connections(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.connections.load(Ordering::Relaxed))
            .sum()
    }

    pub fn requests(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.requests.load(Ordering::Relaxed))
            .sum()
    }
}

pub struct MockHandler {
    event_interval: Duration,
    /// When set, requests must carry this `x-api-key` (as a digest) or one of `key_faults`' keys.
    api_key: Option<[u8; 32]>,
    /// Keys (as digests) whose requests get a fault, as if they had sent `x-mock-fault`.
    key_faults: Vec<([u8; 32], String)>,
    /// Where answered requests are counted: the counters and this worker's shard.
    stats: Option<(Arc<MockStats>, usize)>,
}

impl MockHandler {
    /// `key_faults`: (API key, fault name) pairs; a key given twice gets its last fault.
    pub fn new(
        event_interval: Duration,
        api_key: Option<String>,
        key_faults: Vec<(String, String)>,
    ) -> MockHandler {
        MockHandler {
            event_interval: event_interval.min(MAX_EVENT_INTERVAL),
            api_key: api_key.map(|k| sha256(k.as_bytes())),
            key_faults: key_faults
                .into_iter()
                .map(|(key, fault)| (sha256(key.as_bytes()), fault))
                .collect(),
            stats: None,
        }
    }

    /// Counts each answered request in `stats`, in worker `shard`'s shard.
    pub fn with_stats(mut self, stats: Arc<MockStats>, shard: usize) -> MockHandler {
        self.stats = Some((stats, shard));
        self
    }

    /// Lets a request with this `x-api-key` in or not (a 401), and picks its fault: the
    /// `x-mock-fault` header's, else its key's. Any header value wins, so `x-mock-fault: none`
    /// gets a normal answer even with a failing key.
    fn admit<'a>(
        &'a self,
        key: Option<&[u8]>,
        header_fault: Option<&'a str>,
    ) -> Result<Option<&'a str>, ApiError> {
        // Nothing depends on the key: skip hashing it, which a benchmark would pay for.
        if self.api_key.is_none() && (self.key_faults.is_empty() || header_fault.is_some()) {
            return Ok(header_fault);
        }
        let presented = key.map(sha256);
        let matches = |k: &[u8; 32]| presented.is_some_and(|p| same(&p, k));
        // Every key is compared, none skipped, like the gateway's own key check.
        let mut key_fault = None;
        for (k, fault) in &self.key_faults {
            if matches(k) {
                key_fault = Some(fault.as_str());
            }
        }
        let known = key_fault.is_some() | self.api_key.as_ref().is_some_and(matches);
        if self.api_key.is_some() && !known {
            return Err(ApiError::new(
                401,
                ErrorType::Authentication,
                "invalid x-api-key".into(),
            ));
        }
        Ok(header_fault.or(key_fault))
    }
}

/// Who sent a request, for the log: the first 12 hex digits of the SHA-256 of its key. Enough to
/// tell test keys apart, and nothing a reader of the log could use as the key.
pub fn key_fingerprint(key: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    sha256(key)[..6]
        .iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
        .map(char::from)
        .collect()
}

/// Writes `out` at once, or (fragmented) in pieces of 1 to 7 bytes; returns it emptied.
async fn write_out(
    stream: &mut TcpStream,
    out: Vec<u8>,
    delivery: Delivery,
) -> io::Result<Vec<u8>> {
    if delivery != Delivery::Fragmented {
        let mut out = write_all(stream, out).await?;
        out.clear();
        return Ok(out);
    }
    let mut rng = fastrand::Rng::with_seed(out.len() as u64);
    let mut at = 0;
    while at < out.len() {
        let n = rng.usize(1..=7).min(out.len() - at);
        write_all(stream, out[at..at + n].to_vec()).await?;
        at += n;
    }
    Ok(Vec::new())
}

/// Stamps the send time, now, at `stamps` in `out`, right before `out` is written.
fn stamp_now(out: &mut [u8], stamps: &mut Vec<usize>) {
    if !stamps.is_empty() {
        shape::stamp(out, stamps, shape::now_micros());
        stamps.clear();
    }
}

impl Handler for MockHandler {
    async fn handle(&self, stream: &mut TcpStream, req: Request) -> io::Result<After> {
        let key = req.head.header("x-api-key");
        let header_fault = req
            .head
            .header("x-mock-fault")
            .and_then(|v| std::str::from_utf8(v).ok());
        let admitted = self
            .admit(key, header_fault)
            .and_then(|fault| Ok((fault, Shape::from_headers(|name| req.head.header(name))?)));
        let reply = match admitted {
            Ok((fault, shape)) => answers::answer_shaped(
                &answers::Request {
                    method: req.head.method_str(),
                    path: req.head.path(),
                    fault,
                    body: &req.body,
                },
                &shape,
            ),
            Err(e) => answers::error(&e),
        };
        let status = match &reply {
            Reply::Json { status, .. } => *status,
            Reply::Stream { .. } => 200,
        };
        if let Some((stats, shard)) = &self.stats {
            stats.shard(*shard).request();
        }
        // Logged before the answer is written, so a client that has its answer can count on the
        // line being in the log already. Debug: a gateway's built-in mock must not log each
        // request at its default level; `mock-upstream --log-requests` turns it on.
        log::debug!(
            target: REQUEST_LOG_TARGET,
            "answered {} {} key={} status={status}",
            req.head.method_str(),
            req.head.path(),
            key.map_or_else(|| "-".to_string(), key_fingerprint),
        );
        match reply {
            Reply::Json {
                status,
                body,
                headers,
            } => {
                let mut head = ResponseHead::json(status, &answers::request_id(), true);
                for (name, value) in &headers {
                    head.header(name, value.as_bytes());
                }
                write_all(stream, head.finish_with_body(body.as_bytes())).await?;
                Ok(After::KeepAlive)
            }
            Reply::Stream {
                events,
                delivery,
                stamped,
            } => {
                let mut head = ResponseHead::new(200);
                head.header("content-type", b"text/event-stream; charset=utf-8")
                    .header("cache-control", b"no-cache")
                    .header("request-id", answers::request_id().as_bytes());
                let mut out = head.finish_chunked();
                // `x-mock-event-interval-ms` paces one answer differently from the default.
                let interval = req
                    .head
                    .header("x-mock-event-interval-ms")
                    .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
                    .map_or(self.event_interval, |ms| {
                        Duration::from_millis(ms).min(MAX_EVENT_INTERVAL)
                    });
                let paced = !interval.is_zero() && delivery != Delivery::Fragmented;
                // Where in `out` the send times of the events about to be written go; stays
                // empty (and unallocated) for answers without stamps.
                let mut stamps = Vec::new();
                for (i, event) in events.iter().enumerate() {
                    if delivery == Delivery::DropAfter(i) {
                        // Simulated crash: what was sent so far goes out, then the stream stops
                        // without its end.
                        stamp_now(&mut out, &mut stamps);
                        write_all(stream, out).await?;
                        return Ok(After::Close);
                    }
                    if i > 0 && paced {
                        monoio::time::sleep(interval).await;
                    }
                    push_chunk(&mut out, event.as_bytes());
                    if stamped.contains(&i) {
                        // The event ends just before the chunk's closing CRLF.
                        stamps.push(out.len() - 2 - event.len() + shape::STAMP_OFFSET);
                    }
                    if i + 1 == events.len() {
                        out.extend_from_slice(LAST_CHUNK);
                    }
                    if (paced && delivery == Delivery::Whole) || i + 1 == events.len() {
                        stamp_now(&mut out, &mut stamps);
                        out = write_out(stream, out, delivery).await?;
                    }
                }
                Ok(After::KeepAlive)
            }
        }
    }
}

/// Options of a standalone mock upstream server.
#[derive(Clone, Debug)]
pub struct MockServerOptions {
    pub listen: SocketAddr,
    pub workers: usize,
    pub event_interval: Duration,
    pub api_key: Option<String>,
    /// (API key, fault name): requests with the key get the fault unless they ask for another.
    pub key_faults: Vec<(String, String)>,
    /// Where to count accepted connections and answered requests, if anywhere (one shard per
    /// worker).
    pub stats: Option<Arc<MockStats>>,
}

/// A running standalone mock upstream.
pub struct MockServer {
    pub addr: SocketAddr,
    pub driver: Driver,
    workers: Workers,
}

impl MockServer {
    pub fn start(opts: MockServerOptions) -> io::Result<MockServer> {
        let driver = Driver::choose(crate::config::IoDriver::Auto)?;
        let mut group = bind_group(opts.listen, opts.workers.max(1))?;
        let addr = group[0].local_addr()?;
        let shutdown = Shutdown::new();
        let mut workers = Workers::new(shutdown.clone());
        let limits = Limits {
            max_head_bytes: 64 * 1024,
            max_body_bytes: 64 * 1024 * 1024,
            head_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
        };
        for index in 0..group.len() {
            let listener = group.pop().expect("one per worker");
            let (opts, limits, shutdown) = (opts.clone(), limits.clone(), shutdown.clone());
            workers.spawn(index, false, driver, move || async move {
                let mut handler =
                    MockHandler::new(opts.event_interval, opts.api_key, opts.key_faults);
                if let Some(stats) = &opts.stats {
                    handler = handler.with_stats(stats.clone(), index);
                }
                let (handler, limits) = (Rc::new(handler), Rc::new(limits));
                let stats = opts.stats;
                monoio::spawn(accept_each(listener, shutdown.clone(), move |stream| {
                    if let Some(stats) = &stats {
                        stats.shard(index).connection();
                    }
                    spawn_connection(serve(stream, handler.clone(), limits.clone()));
                }));
                shutdown.wait().await;
            })?;
        }
        Ok(MockServer {
            addr,
            driver,
            workers,
        })
    }

    pub fn shutdown_signal(&self) -> Shutdown {
        self.workers.shutdown.clone()
    }

    pub fn wait(mut self) {
        self.workers.join();
    }

    pub fn shutdown(mut self) {
        self.workers.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        MockServer::start(MockServerOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            workers: 1,
            event_interval: Duration::ZERO,
            api_key: None,
            key_faults: Vec::new(),
            stats: None,
        })
        .unwrap()
    }

    /// Sends one request with these extra header lines to a fresh mock; returns the status and
    /// the decoded body.
    fn exchange(extra: &str, stream: bool) -> (u16, Vec<u8>) {
        use std::io::{Read, Write};
        let server = mock();
        let body = format!(
            "{{\"model\":\"m\",\"max_tokens\":9,\"stream\":{stream},\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}]}}"
        );
        let mut s = std::net::TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "POST /v1/messages HTTP/1.1\r\nhost: m\r\nconnection: close\r\n{extra}content-length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        server.shutdown();
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
        (status, body)
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
        let body = r#"{"model":"m","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
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
}
