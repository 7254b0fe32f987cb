//! The mock upstream as an HTTP server: the answers of [`super::answers`], on real sockets.
//!
//! Used by the gateway's built-in mock (on loopback, served by the gateway's own workers) and by
//! the `mock-upstream` load-test binary. Streams are paced so that a demo visibly streams and a
//! benchmark can model a model's token rate. A benchmark shapes answers with headers (see
//! [`super::shape`]); the send time of each shaped delta is stamped here, at the write that
//! sends it.
//!
//! A request's key is read from whichever header its dialect puts it in: `x-api-key`
//! (Anthropic), `authorization: Bearer` (OpenAI) or `x-goog-api-key` (Gemini). Faults can be
//! tied to keys, so a test can put a gateway with several credentials in front of it and have
//! one credential fail while another works, without the gateway's help. A server can serve one
//! dialect only ([`MockHandler::with_dialect`]). Each
//! answer is logged (target `mock::requests`, at debug) with a fingerprint of its key and its
//! status, so the same test can count from the mock's side which key was used, and when.
//!
//! Message Batches and Files ([`super::objects`]) are kept in one store per server, shared by its
//! workers (the gateway's built-in mock keeps its store across reloads); a mock takes request
//! bodies up to [`MAX_BODY_BYTES`] for their uploads.
//!
//! [`MockStats`] counts connections and answered requests (per worker, summed when read), so a
//! benchmark can tell how many connections a gateway opened for how many requests.

use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use monoio::net::TcpStream;

use super::answers::{self, Delivery, Reply};
use super::bedrock;
use super::directives::Directives;
use super::faults;
use super::objects::{self, Answer, Objects, Owner};
use super::shape::{self, Shape};
use crate::api::auth::{same, sha256};
use crate::dialect::Dialect;
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

/// The largest request body a mock takes: a Files upload may be this large (the real API takes
/// up to 500 MB), and the mock holds it in memory. The gateway's own limit is its own.
pub const MAX_BODY_BYTES: u64 = 600 * 1024 * 1024;

/// The limits a mock serves with: `base` (the gateway's, for its built-in mock), with room for
/// a body of [`MAX_BODY_BYTES`].
pub fn mock_limits(base: &Limits) -> Limits {
    Limits {
        max_body_bytes: base.max_body_bytes.max(MAX_BODY_BYTES),
        ..base.clone()
    }
}

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
    /// When set, requests must carry this key (as a digest) or one of `key_faults`' keys.
    api_key: Option<[u8; 32]>,
    /// Keys (as digests) whose requests get a fault, as if they had sent `x-mock-fault`.
    key_faults: Vec<([u8; 32], String)>,
    /// Where answered requests are counted: the counters and this worker's shard.
    stats: Option<(Arc<MockStats>, usize)>,
    /// The one dialect served, if not all.
    only: Option<Dialect>,
    /// The batches and files, shared by the server's workers.
    objects: Arc<Objects>,
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
            only: None,
            objects: Objects::shared(),
        }
    }

    /// Keeps batches and files in `objects` (a server's workers share one store).
    pub fn with_objects(mut self, objects: Arc<Objects>) -> MockHandler {
        self.objects = objects;
        self
    }

    /// Whether `path` is one of the batch and file paths, served here (with the Anthropic
    /// dialect).
    fn serves_objects(&self, path: &str) -> bool {
        self.only.map_or(true, |d| d == Dialect::Anthropic) && objects::route(path).is_some()
    }

    /// Serves only `dialect`'s paths (the others are a 404); `None` serves every dialect.
    pub fn with_dialect(mut self, dialect: Option<Dialect>) -> MockHandler {
        self.only = dialect;
        self
    }

    /// Counts each answered request in `stats`, in worker `shard`'s shard.
    pub fn with_stats(mut self, stats: Arc<MockStats>, shard: usize) -> MockHandler {
        self.stats = Some((stats, shard));
        self
    }

    /// Lets a request with this key in or not (a 401), and picks its fault: the
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
                "invalid API key (sent as x-api-key, authorization: Bearer or x-goog-api-key)"
                    .into(),
            ));
        }
        Ok(header_fault.or(key_fault))
    }
}

/// The key a request presents, in whichever header its dialect sends it: `x-api-key`,
/// `authorization: Bearer KEY` or `x-goog-api-key`, the first found in that order.
pub fn presented_key<'a>(header: impl Fn(&str) -> Option<&'a [u8]>) -> Option<&'a [u8]> {
    if let Some(key) = header("x-api-key") {
        return Some(key);
    }
    let bearer = header("authorization").and_then(|v| {
        let scheme = v.get(..7)?;
        scheme
            .eq_ignore_ascii_case(b"bearer ")
            .then(|| v[7..].trim_ascii())
    });
    bearer.or_else(|| header("x-goog-api-key"))
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
        let head = &req.head;
        let key = presented_key(|name| head.header(name));
        let header_fault = head
            .header("x-mock-fault")
            .and_then(|v| std::str::from_utf8(v).ok());
        let admitted = self.admit(key, header_fault).and_then(|fault| {
            let shape = Shape::from_headers(|name| head.header(name))?;
            Ok((
                fault,
                shape,
                Directives::from_headers(|name| head.header(name))?,
            ))
        });
        let (method, target) = (head.method_str(), head.target());
        let answer = match admitted {
            Ok((fault, ..)) if self.serves_objects(head.path()) => {
                match fault.and_then(faults::error_fault) {
                    Some(e) => Answer::Reply(answers::error(&e)),
                    None => self.objects.answer(&objects::Call {
                        method,
                        target,
                        owner: Owner::of(key),
                        content_type: head.header("content-type"),
                        files_beta: objects::files::has_beta(
                            (head.headers())
                                .filter(|(n, _)| n.eq_ignore_ascii_case("anthropic-beta"))
                                .map(|(_, v)| v),
                        ),
                        batch_delay: head.header(objects::batches::DELAY_HEADER),
                        body: &req.body,
                        now: std::time::SystemTime::now(),
                    }),
                }
            }
            Ok((fault, shape, directives)) => Answer::Reply(answers::answer_shaped(
                &answers::Request {
                    method,
                    target,
                    fault,
                    body: &req.body,
                    directives,
                    only: self.only,
                },
                &shape,
            )),
            Err(e) => Answer::Reply(answers::error_in(
                answers::dialect_of(method, target, self.only),
                &e,
            )),
        };
        let status = answer.status();
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
        let reply = match answer {
            Answer::Reply(reply) => reply,
            Answer::Content { mime_type, data } => {
                objects::wire::write_content(stream, &mime_type, data).await?;
                return Ok(After::KeepAlive);
            }
            Answer::Results { requests, canceled } => {
                objects::wire::write_results(stream, &requests, canceled).await?;
                return Ok(After::KeepAlive);
            }
        };
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
                stamp_offset,
            } => {
                let stamps = (stamped, stamp_offset);
                (self.stream(stream, &req, Framing::Sse, events, delivery, stamps)).await
            }
            Reply::Frames {
                events,
                delivery,
                stamped,
                stamp_offset,
            } => {
                let stamps = (stamped, stamp_offset);
                let framing = Framing::EventStream;
                (self.stream(stream, &req, framing, events, delivery, stamps)).await
            }
        }
    }
}

impl MockHandler {
    /// Writes a stream of `events`, paced and delivered as asked; the events in `stamped.0` get
    /// their send time at offset `stamped.1`. Framed events are stamped as they are framed, just
    /// before they go (a frame's CRC covers the stamp).
    async fn stream(
        &self,
        stream: &mut TcpStream,
        req: &Request,
        framing: Framing,
        mut events: Vec<String>,
        delivery: Delivery,
        (stamped, stamp_offset): (Range<usize>, usize),
    ) -> io::Result<After> {
        let content_type: &[u8] = match framing {
            Framing::Sse => b"text/event-stream; charset=utf-8",
            Framing::EventStream => b"application/vnd.amazon.eventstream",
        };
        let mut head = ResponseHead::new(200);
        head.header("content-type", content_type)
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
        let count = events.len();
        for (i, event) in events.iter_mut().enumerate() {
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
            let stamp =
                stamped.contains(&i) && shape::has_placeholder(event.as_bytes(), stamp_offset);
            match framing {
                Framing::Sse => {
                    push_chunk(&mut out, event.as_bytes());
                    if stamp {
                        // The event ends just before the chunk's closing CRLF.
                        stamps.push(out.len() - 2 - event.len() + stamp_offset);
                    }
                }
                Framing::EventStream => {
                    if stamp {
                        let digits = shape::stamp_digits(shape::now_micros());
                        event.replace_range(stamp_offset..stamp_offset + digits.len(), &digits);
                    }
                    push_chunk(&mut out, &bedrock::frame_of(event));
                }
            }
            if i + 1 == count {
                out.extend_from_slice(LAST_CHUNK);
            }
            if (paced && delivery == Delivery::Whole) || i + 1 == count {
                stamp_now(&mut out, &mut stamps);
                out = write_out(stream, out, delivery).await?;
            }
        }
        Ok(After::KeepAlive)
    }
}

/// How a stream's events go on the wire.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// As Server-Sent Events.
    Sse,
    /// Each in an AWS event-stream frame (Bedrock).
    EventStream,
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
    /// The one dialect to serve, if not all.
    pub dialect: Option<Dialect>,
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
        let objects = Objects::shared();
        let limits = Limits {
            max_head_bytes: 64 * 1024,
            max_body_bytes: MAX_BODY_BYTES,
            head_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
        };
        for index in 0..group.len() {
            let listener = group.pop().expect("one per worker");
            let (opts, limits, shutdown) = (opts.clone(), limits.clone(), shutdown.clone());
            let objects = objects.clone();
            workers.spawn(index, false, driver, move || async move {
                let mut handler =
                    MockHandler::new(opts.event_interval, opts.api_key, opts.key_faults)
                        .with_dialect(opts.dialect)
                        .with_objects(objects);
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
#[path = "server_tests.rs"]
pub(crate) mod tests;
