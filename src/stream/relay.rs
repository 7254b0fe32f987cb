//! Relaying a response body from upstream to client through one fixed buffer.
//!
//! Upstream bytes are read straight into the buffer, chunked framing is decoded in place, and
//! what goes to the client is written straight from it, re-framed as one chunk per write: the
//! chunk-size line goes into room kept in front of the payload, the CRLF (and, on the last write,
//! the terminating chunk) into room behind it. When to write is the [`Coalescer`]'s call; this
//! module does the I/O around it:
//!
//! - Commit late: the client gets nothing, not even the response head, until the first event
//!   (or, for other bodies, the first bytes) has arrived, so an upstream that fails before that
//!   still becomes a plain HTTP error. The head rides in the same write as that first event.
//! - A flush deadline interrupts a pending upstream read (no byte is lost: see `upstream::conn`),
//!   and so do the keep-alive and idle limits; all come from the per-core timer wheel.
//! - A client that goes away aborts the upstream read at once.
//! - An upstream of another dialect has its body go through a translation stage between the read
//!   and the buffer (see `stage`): what the stage writes is relayed exactly as a pass-through's
//!   bytes are. The stage costs an Anthropic upstream nothing; its bytes stay where they are read.
//! - Failure is never silent: a stream that breaks, stalls, or ends without `message_stop` gets
//!   an in-band `event: error` after its last whole event, then a proper end. So does a stream
//!   still running when a gateway's drain times out (an `overloaded_error`): that too interrupts
//!   a pending upstream read (see `lifecycle::phase` for how it wakes the relay).

use std::cell::RefCell;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::Canceller;
use monoio::net::TcpStream;

use super::flush::{Coalescer, FlushPolicy};
use super::json_usage::UsageScanner;
use super::tally::Tally;
use super::timer::sleep_until;
use super::translate::Translate;
use crate::http::chunked::{ChunkedDecoder, ChunkedError, LAST_CHUNK};
use crate::lifecycle::phase::{self, Phase};
use crate::server::io::{client_gone, ClientWatch};
use crate::upstream::client::Deadline;
use crate::upstream::conn::{is_cancelled, UpstreamConn};
use crate::upstream::response::ResponseFraming;
use stage::Stage;

/// Room in front of the payload for a chunk-size line (hex length and CRLF).
const FRONT: usize = 16;
/// Room behind the payload for the CRLF that ends a chunk and the terminating chunk.
const BACK: usize = 2 + LAST_CHUNK.len();
/// A comment line that keeps idle connections (and the proxies on the way) from timing out.
const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";
const KEEP_ALIVE_CHUNK: &[u8] = b"e\r\n: keep-alive\n\n\r\n";
/// Spare relay buffers kept per core.
const SPARE_BUFFERS: usize = 64;

/// How the body is framed towards the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientFraming {
    /// Re-framed as chunks; ended with the last chunk.
    Chunked,
    /// Passed through as is: the client was given the upstream's Content-Length, or (HTTP/1.0)
    /// the body ends when the connection closes.
    Passthrough,
}

#[derive(Clone, Copy, Debug)]
pub struct RelaySettings {
    pub buffer_bytes: usize,
    /// Longest silence from the upstream before the relay gives up.
    pub idle_timeout: Duration,
    pub flush: FlushPolicy,
    /// Silence towards the client after which an event stream gets a keep-alive comment.
    pub keepalive: Option<Duration>,
    /// A write the client does not take within this time ends the response: a client that
    /// stopped reading must not hold an upstream connection forever.
    pub write_timeout: Duration,
}

/// The response to relay.
pub struct Response {
    /// The client's response head, written with the first bytes of the body.
    pub head: Vec<u8>,
    /// Body bytes read with the upstream's head.
    pub leftover: BytesMut,
    pub framing: ResponseFraming,
    pub out: ClientFraming,
    pub event_stream: bool,
    /// When the whole body must be in (a non-streaming request's response timeout).
    pub deadline: Option<Deadline>,
    /// The stage that translates an upstream of another dialect; `None` relays the bytes as
    /// they are.
    pub translate: Option<Box<dyn Translate>>,
}

/// Counters of one relay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Body bytes delivered to the client (without chunk framing; keep-alive comments and an
    /// error event included).
    pub bytes: u64,
    /// Writes to the client (the first one carries the head; keep-alive comments count).
    pub writes: u64,
    /// Events, usage and how an event stream ended.
    pub tally: Tally,
    /// When the first write (the head) went out.
    pub first_write: Option<Instant>,
    /// When reading from the upstream ended (before the last write to the client).
    pub upstream_end: Option<Instant>,
}

/// Why a relay stopped early.
#[derive(Debug, PartialEq, Eq)]
pub struct Failure {
    pub timed_out: bool,
    pub reason: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RelayEnd {
    /// The whole body reached the client. `reusable`: the upstream connection ended cleanly at
    /// the body's end and could carry another request.
    Complete { reusable: bool },
    /// The upstream failed before anything was written: the client is owed an HTTP error.
    NotCommitted(Failure),
    /// The upstream failed mid-body; the client was told in-band (event streams) or the
    /// response was cut short (everything else), and the connection must close.
    UpstreamFailed(Failure),
    /// The client went away; the upstream read was abandoned.
    ClientGone,
    /// The gateway's drain timeout cut the response short. `committed`: something reached the
    /// client (an event stream then got an `overloaded_error` event and a proper end, another
    /// body is cut short); if not, the client is owed a 529. The connection must close.
    ShuttingDown { committed: bool },
}

mod ending;
mod stage;
mod write;

thread_local! {
    static SPARE: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// Relays the body that follows a response head. `watch_client` is the request's watch for a
/// departed client (see [`client_gone`]); once it has seen a pipelined request, it stays off.
pub async fn relay(
    upstream: &mut UpstreamConn,
    client: &mut TcpStream,
    response: Response,
    settings: &RelaySettings,
    watch_client: &ClientWatch,
) -> (RelayEnd, RelayStats) {
    let size = settings.buffer_bytes;
    let mut r = Relay {
        buf: take_buffer(size),
        head: Some(response.head),
        out: response.out,
        // Bytes of our own (keep-alive, error event) fit only a body whose length was not
        // promised to the client.
        may_add: response.out == ClientFraming::Chunked
            || !matches!(response.framing, ResponseFraming::Length(_)),
        write_timeout: settings.write_timeout,
        coalescer: Coalescer::new(settings.flush, size, response.event_stream),
        stats: RelayStats::default(),
        last_write: Instant::now(),
        usage: (!response.event_stream).then(UsageScanner::new),
        stage: response.translate.map(Stage::new),
        canceller: Canceller::new(),
    };
    let mut body = Body {
        framing: response.framing,
        pending: response.leftover,
        decoder: ChunkedDecoder::new(),
        remaining: match response.framing {
            ResponseFraming::Length(n) => n,
            _ => u64::MAX,
        },
        reusable: true,
        eof: false,
        deadline: response.deadline,
    };
    body.let_go_of_pending();
    let end = r
        .run(upstream, client, &mut body, settings, watch_client)
        .await;
    r.stats.upstream_end = Some(Instant::now());
    if let Some(usage) = r.usage.as_ref().and_then(UsageScanner::usage) {
        r.stats.tally.usage = usage;
    }
    let end = match end {
        // Bytes beyond the body's end belong to no response: the connection is not reused.
        Ok(Stop::Ended) => {
            r.finish(client, body.reusable && body.pending.is_empty())
                .await
        }
        Ok(Stop::Failed(failure)) => r.fail(client, failure).await,
        Ok(Stop::ShuttingDown) => r.cut_off(client).await,
        Err(Gone) => RelayEnd::ClientGone,
    };
    if r.buf.len() == FRONT + size + BACK {
        SPARE.with_borrow_mut(|spare| {
            if spare.len() < SPARE_BUFFERS {
                spare.push(std::mem::take(&mut r.buf));
            }
        });
    }
    (end, r.stats)
}

fn take_buffer(size: usize) -> BytesMut {
    // A `BytesMut` because monoio's reads only ever grow its length (a `Vec`'s would be cut to
    // the end of the last read), and the whole buffer stays addressable. Contents are never
    // read before they are written, so a spare one needs no clearing.
    SPARE
        .with_borrow_mut(|spare| spare.pop().filter(|b| b.len() == FRONT + size + BACK))
        .unwrap_or_else(|| BytesMut::zeroed(FRONT + size + BACK))
}

/// The client went away.
struct Gone;

/// Why reading a body stopped, when the client is still there.
enum Stop {
    /// The body ended (cleanly or not: `finish` looks).
    Ended,
    Failed(Failure),
    /// The gateway's drain timeout passed.
    ShuttingDown,
}

/// The upstream side of the body: its framing and how much of it has been read.
struct Body {
    framing: ResponseFraming,
    /// Bytes read with the head, not yet moved into the buffer.
    pending: BytesMut,
    decoder: ChunkedDecoder,
    remaining: u64,
    reusable: bool,
    /// The upstream closed the connection (the end of an `UntilClose` body).
    eof: bool,
    deadline: Option<Deadline>,
}

impl Body {
    /// Drops `pending` once it is empty. It shares the upstream head's read buffer
    /// (`max_head_bytes`), which is then freed for the next request instead of being held for
    /// as long as the stream runs.
    fn let_go_of_pending(&mut self) {
        if self.pending.is_empty() {
            self.pending = BytesMut::new();
        }
    }

    fn done(&self) -> bool {
        match self.framing {
            ResponseFraming::None => true,
            ResponseFraming::Length(_) => self.remaining == 0,
            ResponseFraming::Chunked => self.decoder.is_done(),
            ResponseFraming::UntilClose => self.eof,
        }
    }

    /// Unframes `n` bytes just placed at `buf[..n]`; returns how many payload bytes now lie at
    /// its front, and the framing error, if any.
    fn unframe(&mut self, buf: &mut [u8]) -> (usize, Option<ChunkedError>) {
        let n = buf.len();
        match self.framing {
            ResponseFraming::Chunked => {
                let d = self.decoder.decode_in_place(buf);
                self.reusable &=
                    d.consumed == n && self.pending.is_empty() || !self.decoder.is_done();
                (d.data, d.error)
            }
            ResponseFraming::Length(_) => {
                let data = (n as u64).min(self.remaining);
                self.reusable &= data == n as u64;
                self.remaining -= data;
                (data as usize, None)
            }
            _ => (n, None),
        }
    }
}

struct Relay {
    /// `FRONT` bytes of room, then the payload, then `BACK` bytes of room.
    buf: BytesMut,
    /// Not yet written: the first write carries it.
    head: Option<Vec<u8>>,
    out: ClientFraming,
    may_add: bool,
    write_timeout: Duration,
    coalescer: Coalescer,
    stats: RelayStats,
    last_write: Instant,
    /// The usage of a body that is not an event stream (a JSON message).
    usage: Option<UsageScanner>,
    stage: Option<Stage>,
    /// Interrupts the pending upstream read when a deadline comes first.
    canceller: Canceller,
}

/// Where the next bytes for the buffer come from.
enum Next {
    /// The stage's waiting output.
    Stage,
    /// The stage has read the whole body and has yet to write its end.
    Finish,
    Upstream,
}

impl Relay {
    /// Reads and forwards until the body ends (`None`) or fails.
    async fn run(
        &mut self,
        upstream: &mut UpstreamConn,
        client: &mut TcpStream,
        body: &mut Body,
        settings: &RelaySettings,
        watch_client: &ClientWatch,
    ) -> Result<Stop, Gone> {
        let size = settings.buffer_bytes;
        let mut idle_until = Instant::now() + settings.idle_timeout;
        let mut flush_due = None;
        loop {
            if let Some(stop) = self.stopped(body) {
                return Ok(stop);
            }
            let start = FRONT + self.coalescer.held();
            let space = size - self.coalescer.held();
            let next = match &self.stage {
                Some(s) if s.has_output() => Next::Stage,
                Some(_) if body.done() => Next::Finish,
                _ => Next::Upstream,
            };
            let mut framing_error = None;
            let placed = match next {
                Next::Stage => self.place(start, space),
                Next::Finish => {
                    if let Some(stage) = &mut self.stage {
                        stage.finish();
                    }
                    continue;
                }
                Next::Upstream => {
                    let wake = [
                        flush_due,
                        self.keepalive_due(settings),
                        Some(idle_until),
                        body.deadline.map(|d| d.at),
                    ]
                    .into_iter()
                    .flatten()
                    .min()
                    .expect("the idle deadline is always set");
                    let room = start..start + space;
                    let taken = self.take_in(upstream, client, watch_client, body, room, wake);
                    let n = match taken.await? {
                        Ok(n) => n,
                        Err(stop) => return Ok(stop),
                    };
                    if n > 0 {
                        idle_until = Instant::now() + settings.idle_timeout;
                    }
                    let (data, error) = body.unframe(&mut self.buf[start..start + n]);
                    framing_error = error;
                    match &mut self.stage {
                        None => data,
                        Some(stage) => {
                            stage.feed(&self.buf[start..start + data]);
                            if let Some(e) = framing_error.take() {
                                stage.fail(broken(&format!("sent a broken response ({e})")));
                            }
                            if body.done() {
                                stage.finish();
                            }
                            self.place(start, space)
                        }
                    }
                }
            };
            if let Some(usage) = &mut self.usage {
                usage.feed(&self.buf[start..start + placed]);
            }
            let now = Instant::now();
            let held = FRONT + self.coalescer.held() + placed;
            let tally = &mut self.stats.tally;
            let buf = &self.buf[..held];
            self.coalescer.arrived(&buf[FRONT..], now, |found| {
                if !found.continued {
                    tally.observe(&buf[FRONT + found.range.start..FRONT + found.range.end]);
                }
            });
            if let Some(e) = framing_error {
                return Ok(Stop::Failed(broken(&format!(
                    "sent a broken response ({e})"
                ))));
            }
            if body.done() && self.stage.as_ref().map_or(true, Stage::is_drained) {
                // The last write carries the end of the body too.
                return Ok(Stop::Ended);
            }
            if phase::phase() == Phase::Expired {
                return Ok(Stop::ShuttingDown);
            }
            flush_due = self.settle(client, now).await?;
            if let Some(d) = body.deadline.filter(|d| now >= d.at) {
                return Ok(Stop::Failed(Failure {
                    timed_out: true,
                    reason: format!(
                        "did not complete its response within {} ms ({})",
                        d.limit.as_millis(),
                        d.step.setting()
                    ),
                }));
            }
            if now >= idle_until {
                return Ok(Stop::Failed(Failure {
                    timed_out: true,
                    reason: format!("sent nothing for {} s", settings.idle_timeout.as_secs()),
                }));
            }
            if self.keepalive_due(settings).is_some_and(|due| now >= due) {
                let line = match self.out {
                    ClientFraming::Chunked => KEEP_ALIVE_CHUNK,
                    ClientFraming::Passthrough => KEEP_ALIVE,
                };
                self.write(client, line, KEEP_ALIVE.len())
                    .await
                    .map_err(|_| Gone)?;
            }
        }
    }

    /// Brings the next upstream bytes into `room` of the buffer, those read with the head first:
    /// how many (0 when a deadline, `wake`, interrupted the read), or why the relay stops.
    async fn take_in(
        &mut self,
        upstream: &mut UpstreamConn,
        client: &mut TcpStream,
        watch_client: &ClientWatch,
        body: &mut Body,
        room: std::ops::Range<usize>,
        wake: Instant,
    ) -> Result<Result<usize, Stop>, Gone> {
        if !body.pending.is_empty() {
            let k = room.len().min(body.pending.len());
            self.buf[room.start..room.start + k].copy_from_slice(&body.pending[..k]);
            body.pending.advance(k);
            body.let_go_of_pending();
            return Ok(Ok(k));
        }
        let buf = std::mem::take(&mut self.buf).slice_mut(room);
        let handle = self.canceller.handle();
        let mut read = std::pin::pin!(upstream.read_interruptible(buf, handle));
        let woke = monoio::select! {
            r = &mut read => Some(r),
            _ = sleep_until(wake) => None,
            _ = client_gone(client, watch_client) => return Err(Gone),
            _ = phase::reached(Phase::Expired) => None,
        };
        let (result, buf) = match woke {
            Some(r) => r,
            None => {
                // A canceller cancels once: the next read gets a new one.
                self.canceller = std::mem::take(&mut self.canceller).cancel();
                read.await
            }
        };
        self.buf = buf.into_inner();
        Ok(match result {
            Ok(0) if body.framing == ResponseFraming::UntilClose => {
                body.reusable = false;
                body.eof = true;
                Ok(0)
            }
            Ok(0) => Err(Stop::Failed(broken("closed the connection mid-response"))),
            Ok(n) => Ok(n),
            Err(e) if is_cancelled(&e) => Ok(0),
            Err(e) => Err(Stop::Failed(broken(&format!("connection failed: {e}")))),
        })
    }

    /// Whether reading is over: the body ended and whatever the stage wrote is placed, or the
    /// stage failed and what it wrote before is placed.
    fn stopped(&mut self, body: &Body) -> Option<Stop> {
        match &mut self.stage {
            None => body.done().then_some(Stop::Ended),
            Some(stage) => match stage.failure() {
                Some(failure) => Some(Stop::Failed(failure)),
                None => (body.done() && stage.is_drained()).then_some(Stop::Ended),
            },
        }
    }

    /// Moves the stage's waiting output into the buffer at `start`; returns how much.
    fn place(&mut self, start: usize, space: usize) -> usize {
        match &mut self.stage {
            Some(stage) => stage.place(&mut self.buf[start..start + space]),
            None => 0,
        }
    }

    /// When a keep-alive comment is due, if one may go out at all: the head is out, this is an
    /// event stream, and the client is between two events.
    fn keepalive_due(&self, settings: &RelaySettings) -> Option<Instant> {
        let allowed = self.head.is_none()
            && self.may_add
            && self.is_event_stream()
            && !self.coalescer.mid_event();
        settings
            .keepalive
            .filter(|_| allowed)
            .map(|k| self.last_write + k)
    }

    fn is_event_stream(&self) -> bool {
        self.coalescer.is_event_stream()
    }
}

fn broken(what: &str) -> Failure {
    Failure {
        timed_out: false,
        reason: what.to_string(),
    }
}
