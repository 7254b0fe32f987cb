//! One client connection: read requests, hand them to a handler, keep the connection alive.
//!
//! Everything a client can do wrong is answered here, before any handler runs: a head that does
//! not parse (400), does not fit the connection buffer (431) or does not arrive in time (408), a
//! body over the limit (413) or that stalls (408). Each gets an Anthropic-shaped error and the
//! connection is closed gracefully; nothing a client sends can panic the worker. The loop is
//! generic over the [`Handler`] so the gateway and the mock upstream share it.
//!
//! A body is collected whole before the handler runs, except where the handler asks for it as
//! it arrives ([`Handler::streams_body`]: uploads); then the handler reads it
//! ([`Incoming`]), and a body it did not read to its end closes the connection after the
//! response, since the next request's first byte cannot be found.

use std::future::Future;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use monoio::io::AsyncWriteRent;
use monoio::net::TcpStream;

use super::incoming::Incoming;
use super::io::{read_more, write_all, ReadOutcome};
use crate::exchange::Exchange;
use crate::http::body::BodyCollector;
use crate::http::head::{self, BodyFraming, Parse, RequestHead};
use crate::http::{ApiError, ErrorType};
use crate::lifecycle::phase::{self, Phase};
use crate::request_id::RequestId;

/// What a connection may be asked to bear.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_head_bytes: usize,
    pub max_body_bytes: u64,
    pub head_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
}

/// A complete request, body included, and what has become of it so far.
pub struct Request {
    pub id: RequestId,
    pub head: RequestHead,
    /// The whole body; empty when it is `incoming`.
    pub body: Bytes,
    pub exchange: Exchange,
    /// The body still to be read, for a handler that [streams it](Handler::streams_body).
    pub incoming: Option<Incoming>,
    /// Headers the gateway adds to whatever answers the request (a limited key's
    /// `anthropic-ratelimit-*`, describing the gateway's limits rather than the upstream's).
    /// Written out as header lines (`name: value\r\n` each).
    pub extra_headers: std::cell::RefCell<String>,
}

/// Whether the connection may carry another request after a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    KeepAlive,
    Close,
}

/// Answers requests. The handler writes the whole response to the stream itself (it may stream).
pub trait Handler: 'static {
    fn handle(
        &self,
        stream: &mut TcpStream,
        req: Request,
    ) -> impl Future<Output = io::Result<After>>;

    /// Whether its connections close when the gateway drains: the gateway's own do; a built-in
    /// mock upstream's go on serving the gateway's requests still in flight.
    fn drains(&self) -> bool {
        false
    }

    /// A request refused before it reached the handler (it did not parse, was too large, or
    /// too slow), answered with `error` under `id`.
    fn rejected(&self, _error: &ApiError, _id: RequestId) {}

    /// Whether the handler reads this request's body itself, as it arrives, and up to how many
    /// bytes; `None` (the default): the body is collected before the handler runs.
    fn streams_body(&self, _head: &RequestHead) -> Option<u64> {
        None
    }
}

/// Serves requests on `stream` until the client leaves, an error closes it, or it idles out.
pub async fn serve<H: Handler>(mut stream: TcpStream, handler: Rc<H>, limits: Rc<Limits>) {
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::new();
    let mut first = true;
    let drains = handler.drains();
    loop {
        if buf.capacity() == 0 {
            buf.reserve(limits.max_head_bytes);
        }
        let streams = |head: &RequestHead| handler.streams_body(head);
        let request =
            match read_request(&mut stream, &mut buf, &limits, first, drains, streams).await {
                Ok(Some(r)) => r,
                Ok(None) => return,
                Err(Failure { error, id }) => {
                    if let Some(e) = error {
                        handler.rejected(&e, id);
                        let _ = write_all(&mut stream, e.to_response(id.as_str(), false)).await;
                        linger_close(&mut stream).await;
                    }
                    return;
                }
            };
        first = false;
        if buf.is_empty() {
            // Nothing pipelined behind the request, and the request owns its bytes: the buffer
            // goes back to the allocator while the handler runs (a stream keeps it running for
            // minutes) and the next request takes one again.
            buf = BytesMut::new();
        }
        let keep_alive = request.head.keep_alive;
        let body_read = request.incoming.as_ref().map(Incoming::clean);
        let after = handler.handle(&mut stream, request).await;
        if body_read.is_some_and(|read| !read.get()) {
            // The client may still be sending the body the answer refused.
            linger_close(&mut stream).await;
            return;
        }
        match after {
            Ok(After::KeepAlive) if keep_alive && !(drains && phase::draining()) => continue,
            _ => return,
        }
    }
}

struct Failure {
    /// The error to answer with; `None` to close quietly.
    error: Option<ApiError>,
    id: RequestId,
}

impl Failure {
    fn quiet() -> Failure {
        Failure {
            error: None,
            id: RequestId::EMPTY,
        }
    }

    fn answer(error: ApiError) -> Failure {
        Failure {
            error: Some(error),
            id: RequestId::new(),
        }
    }
}

fn timeout_error() -> ApiError {
    ApiError::new(
        408,
        ErrorType::Timeout,
        "the request was not received in time; send the whole request promptly".into(),
    )
}

/// Reads one request. `Ok(None)`: the connection ended between requests, which is normal (a
/// draining gateway ends it there too, when `drains`).
async fn read_request(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    limits: &Limits,
    first: bool,
    drains: bool,
    streams: impl Fn(&RequestHead) -> Option<u64>,
) -> Result<Option<Request>, Failure> {
    // The head timer runs from accept on a new connection, and from the first byte of a request
    // on a kept-alive one; before that first byte, only the idle timer applies.
    let mut head_deadline = Instant::now() + limits.head_timeout;
    if buf.is_empty() {
        let until = match first {
            true => head_deadline,
            false => Instant::now() + limits.idle_timeout,
        };
        match next_request(stream, buf, until, drains).await {
            None | Some(ReadOutcome::Read(0) | ReadOutcome::Failed(_)) => return Ok(None),
            Some(ReadOutcome::TimedOut) if first => return Err(Failure::answer(timeout_error())),
            Some(ReadOutcome::TimedOut) => return Ok(None),
            Some(ReadOutcome::Read(_)) if first => {}
            Some(ReadOutcome::Read(_)) => head_deadline = Instant::now() + limits.head_timeout,
        }
    }
    let head = loop {
        match head::parse(buf) {
            Err(e) => return Err(Failure::answer(e)),
            Ok(Parse::Complete(parts)) => {
                // A copy of its own (a few hundred bytes), so that the connection's buffer is
                // not shared with a request that may live as long as a stream.
                let raw = Bytes::copy_from_slice(&buf[..parts.len]);
                buf.advance(parts.len);
                break RequestHead::from_parts(raw, parts).map_err(Failure::answer)?;
            }
            Ok(Parse::Partial) if buf.len() >= limits.max_head_bytes => {
                return Err(Failure::answer(ApiError::head_too_large(format!(
                    "the request head is larger than {} bytes",
                    limits.max_head_bytes
                ))))
            }
            Ok(Parse::Partial) => {}
        }
        match read_more(stream, buf, head_deadline).await {
            ReadOutcome::Read(0) if buf.is_empty() => return Ok(None),
            ReadOutcome::Read(0) | ReadOutcome::Failed(_) => return Err(Failure::quiet()),
            ReadOutcome::TimedOut => return Err(Failure::answer(timeout_error())),
            ReadOutcome::Read(_) => {}
        }
    };

    let id = RequestId::new();
    let fail = |error: ApiError| Failure {
        error: Some(error),
        id,
    };
    if let Some(limit) = streams(&head) {
        let with_head = match head.framing {
            BodyFraming::None => BytesMut::new(),
            BodyFraming::Length(n) => buf.split_to((n.min(buf.len() as u64)) as usize),
            BodyFraming::Chunked => buf.split(),
        };
        let (framing, stall) = (head.framing, limits.body_timeout);
        let incoming = Incoming::new(framing, limit, with_head, stall, head.expect_continue);
        return Ok(Some(Request {
            id,
            head,
            body: Bytes::new(),
            exchange: Exchange::new(Instant::now()),
            incoming: Some(incoming.map_err(fail)?),
            extra_headers: Default::default(),
        }));
    }
    let mut body = BodyCollector::new(head.framing, limits.max_body_bytes).map_err(fail)?;
    let consumed = body.feed(buf).map_err(fail)?;
    buf.advance(consumed);
    let wants_continue = head.expect_continue && !body.is_complete() && buf.is_empty();
    if wants_continue
        && write_all(stream, &b"HTTP/1.1 100 Continue\r\n\r\n"[..])
            .await
            .is_err()
    {
        return Err(Failure::quiet());
    }
    while !body.is_complete() {
        let deadline = Instant::now() + limits.body_timeout;
        // A declared length is read straight into the body; anything else goes through `buf`.
        let outcome = if head.framing != BodyFraming::Chunked {
            let mut direct = body.take_buffer();
            let outcome = read_more(stream, &mut direct, deadline).await;
            let n = match outcome {
                ReadOutcome::Read(n) => n,
                _ => 0,
            };
            body.restore_buffer(direct, n);
            outcome
        } else {
            let outcome = read_more(stream, buf, deadline).await;
            if matches!(outcome, ReadOutcome::Read(n) if n > 0) {
                let consumed = body.feed(buf).map_err(fail)?;
                buf.advance(consumed);
            }
            outcome
        };
        match outcome {
            ReadOutcome::Read(0) | ReadOutcome::Failed(_) => return Err(Failure::quiet()),
            ReadOutcome::TimedOut => return Err(fail(timeout_error())),
            ReadOutcome::Read(_) => {}
        }
    }
    Ok(Some(Request {
        id,
        head,
        body: body.finish(),
        exchange: Exchange::new(Instant::now()),
        incoming: None,
        extra_headers: Default::default(),
    }))
}

/// Waits for the first bytes of a request; `None` when the gateway starts draining first (if the
/// connection `drains`), which closes the connection as a keep-alive timeout would. The read is
/// polled first, so bytes already there are taken rather than dropped with a cancelled read.
async fn next_request(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    until: Instant,
    drains: bool,
) -> Option<ReadOutcome> {
    if !drains {
        return Some(read_more(stream, buf, until).await);
    }
    monoio::select! {
        biased;
        outcome = read_more(stream, buf, until) => Some(outcome),
        _ = phase::reached(Phase::Draining) => None,
    }
}

/// Closes after an error without resetting the connection under the client's feet: stop
/// writing, then read and drop what the client is still sending, briefly, so the error response
/// is not lost to a TCP reset.
async fn linger_close(stream: &mut TcpStream) {
    let _ = stream.shutdown().await;
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut sink = BytesMut::with_capacity(4096);
    let mut drained = 0usize;
    while drained < 1 << 20 {
        sink.clear();
        match read_more(stream, &mut sink, deadline).await {
            ReadOutcome::Read(n) if n > 0 => drained += n,
            _ => return,
        }
    }
}
