//! A request body read as it arrives, for the endpoints that pass it on without holding it whole
//! (a file upload, a batch of requests: hundreds of megabytes each).
//!
//! The connection loop hands the handler the bytes it already read behind the head; the
//! handler pulls the rest piece by piece ([`Incoming::next`]) while it writes them upstream.
//! Nothing is read before the handler asks: a client that sent `Expect: 100-continue` is
//! invited to send its body only then, after its key was checked and an upstream chosen.
//!
//! What can go wrong, and what each case gets:
//! - a declared length over the limit: 413 before anything is read (the connection loop);
//!   a chunked body that passes the limit: [`BodyError::TooLarge`] when it does;
//! - chunked framing that does not parse: [`BodyError::Malformed`] (a 400);
//! - no bytes for `request_body_timeout_ms`: [`BodyError::TimedOut`] (a 408);
//! - the client closes or resets: [`BodyError::Gone`] (nobody is left to answer).
//!
//! A body that was not read to its exact end leaves the connection unusable for another
//! request; the connection loop sees that ([`Incoming::clean`]) and closes it.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use monoio::net::TcpStream;

use super::io::{read_more, write_all, ReadOutcome};
use crate::http::chunked::ChunkedDecoder;
use crate::http::head::BodyFraming;
use crate::http::{ApiError, ErrorType};

/// The most one read takes from the client: large enough that a fast upload costs few
/// operations, small enough that a slow upstream holds little of it.
const PIECE: usize = 64 * 1024;

/// Why a body could not be read to its end.
#[derive(Debug)]
pub enum BodyError {
    TooLarge(u64),
    Malformed(String),
    TimedOut,
    Gone,
}

impl BodyError {
    /// The client's answer; `None` when the client is gone.
    pub fn to_api_error(&self) -> Option<ApiError> {
        Some(match self {
            BodyError::TooLarge(limit) => ApiError::new(
                413,
                ErrorType::RequestTooLarge,
                format!(
                    "request body is larger than the gateway's limit of {limit} bytes for \
                     uploads and batches (server.max_upload_bytes)"
                )
                .into(),
            ),
            BodyError::Malformed(why) => ApiError::invalid_request(why.clone().into()),
            BodyError::TimedOut => ApiError::new(
                408,
                ErrorType::Timeout,
                "the request body stalled; send the whole body promptly".into(),
            ),
            BodyError::Gone => return None,
        })
    }
}

enum Kind {
    Length { remaining: u64 },
    Chunked(ChunkedDecoder),
}

/// The rest of a request's body, still on the client's socket.
pub struct Incoming {
    kind: Kind,
    /// Bytes read but not handed out yet: what came with the head, and chunked framing.
    pending: BytesMut,
    limit: u64,
    received: u64,
    stall: Duration,
    /// The client waits for `100 Continue` before it sends the body.
    invite: bool,
    /// Set once the body was read to its exact end: shared with the connection loop.
    clean: Rc<Cell<bool>>,
}

impl Incoming {
    /// The body of a request framed as `framing`, of which `pending` was read with the head
    /// (for a declared length, no more than that length). A declared length over `limit` is
    /// refused at once.
    pub fn new(
        framing: BodyFraming,
        limit: u64,
        pending: BytesMut,
        stall: Duration,
        expect_continue: bool,
    ) -> Result<Incoming, ApiError> {
        let kind = match framing {
            BodyFraming::None => Kind::Length { remaining: 0 },
            BodyFraming::Length(n) if n > limit => {
                return Err(BodyError::TooLarge(limit).to_api_error().expect("an error"))
            }
            BodyFraming::Length(n) => Kind::Length { remaining: n },
            BodyFraming::Chunked => Kind::Chunked(ChunkedDecoder::new()),
        };
        let empty = matches!(kind, Kind::Length { remaining: 0 });
        let invite = expect_continue && pending.is_empty() && !empty;
        Ok(Incoming {
            kind,
            pending,
            limit,
            received: 0,
            stall,
            invite,
            clean: Rc::new(Cell::new(empty)),
        })
    }

    /// The body's declared length; `None` for a chunked body.
    pub fn declared(&self) -> Option<u64> {
        match (&self.kind, self.received) {
            (Kind::Length { remaining }, received) => Some(remaining + received),
            (Kind::Chunked(_), _) => None,
        }
    }

    /// Body bytes handed out so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Whether the body was read to its exact end (the connection can carry another request).
    pub fn clean(&self) -> Rc<Cell<bool>> {
        self.clean.clone()
    }

    /// The next piece of the body; `None` once it has all been read.
    pub async fn next(&mut self, client: &mut TcpStream) -> Result<Option<Bytes>, BodyError> {
        if std::mem::take(&mut self.invite)
            && write_all(client, &b"HTTP/1.1 100 Continue\r\n\r\n"[..])
                .await
                .is_err()
        {
            return Err(BodyError::Gone);
        }
        loop {
            if let Some(piece) = self.take()? {
                return Ok(Some(piece));
            }
            if self.clean.get() || self.is_done() {
                return Ok(None);
            }
            let deadline = Instant::now() + self.stall;
            let outcome = match self.kind {
                // A declared length is read straight into a piece of its own, never past its end.
                Kind::Length { remaining } => {
                    let mut piece = BytesMut::with_capacity(remaining.min(PIECE as u64) as usize);
                    let outcome = read_more(client, &mut piece, deadline).await;
                    self.pending = piece;
                    outcome
                }
                Kind::Chunked(_) => {
                    if self.pending.capacity() - self.pending.len() < PIECE / 4 {
                        self.pending.reserve(PIECE);
                    }
                    read_more(client, &mut self.pending, deadline).await
                }
            };
            match outcome {
                ReadOutcome::Read(0) | ReadOutcome::Failed(_) => return Err(BodyError::Gone),
                ReadOutcome::TimedOut => return Err(BodyError::TimedOut),
                ReadOutcome::Read(_) => {}
            }
        }
    }

    fn is_done(&self) -> bool {
        match &self.kind {
            Kind::Length { remaining } => *remaining == 0,
            Kind::Chunked(d) => d.is_done(),
        }
    }

    /// Body bytes among those pending, framing removed.
    fn take(&mut self) -> Result<Option<Bytes>, BodyError> {
        let piece = match &mut self.kind {
            Kind::Length { remaining } => {
                let n = (*remaining).min(self.pending.len() as u64) as usize;
                *remaining -= n as u64;
                if *remaining == 0 {
                    self.clean.set(true);
                }
                self.pending.split_to(n)
            }
            Kind::Chunked(decoder) => {
                let mut out = BytesMut::new();
                let mut at = 0;
                while at < self.pending.len() && !decoder.is_done() {
                    let step = decoder
                        .step(&self.pending[at..])
                        .map_err(|e| BodyError::Malformed(e.to_string()))?;
                    if let Some(d) = step.data {
                        out.extend_from_slice(&self.pending[at + d.start..at + d.end]);
                    }
                    at += step.consumed;
                }
                self.pending.advance(at);
                // Bytes behind the last chunk would begin another request, which is not read
                // here: the connection closes after this one.
                if decoder.is_done() && self.pending.is_empty() {
                    self.clean.set(true);
                }
                out
            }
        };
        if piece.is_empty() {
            return Ok(None);
        }
        self.received += piece.len() as u64;
        if self.received > self.limit {
            self.clean.set(false);
            return Err(BodyError::TooLarge(self.limit));
        }
        Ok(Some(piece.freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(framing: BodyFraming, limit: u64, pending: &[u8]) -> Incoming {
        let pending = BytesMut::from(pending);
        Incoming::new(framing, limit, pending, Duration::from_secs(1), false).unwrap()
    }

    #[test]
    fn a_declared_length_over_the_limit_is_refused_at_once() {
        let e = Incoming::new(
            BodyFraming::Length(11),
            10,
            BytesMut::new(),
            Duration::from_secs(1),
            false,
        )
        .err()
        .unwrap();
        assert_eq!(e.status, 413);
        assert!(e.message.contains("max_upload_bytes"));
    }

    #[test]
    fn what_came_with_the_head_is_handed_out_first() {
        let mut body = incoming(BodyFraming::Length(5), 10, b"hel");
        assert_eq!(body.take().unwrap().unwrap(), &b"hel"[..]);
        assert!(!body.clean.get());
        body.pending.extend_from_slice(b"lo");
        assert_eq!(body.take().unwrap().unwrap(), &b"lo"[..]);
        assert!(body.clean.get() && body.is_done());
        assert_eq!((body.received(), body.declared()), (5, Some(5)));
    }

    #[test]
    fn chunked_pieces_lose_their_framing_and_count_against_the_limit() {
        let mut body = incoming(BodyFraming::Chunked, 8, b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
        assert_eq!(body.take().unwrap().unwrap(), &b"abcde"[..]);
        assert!(body.clean.get() && body.is_done());
        assert_eq!(body.declared(), None);

        let mut over = incoming(BodyFraming::Chunked, 4, b"5\r\nabcde\r\n");
        assert!(matches!(over.take(), Err(BodyError::TooLarge(4))));
        assert!(!over.clean.get());

        let mut bad = incoming(BodyFraming::Chunked, 4, b"zz\r\n");
        let e = bad.take().unwrap_err().to_api_error().unwrap();
        assert_eq!(e.status, 400);
    }

    #[test]
    fn bytes_behind_a_chunked_body_leave_the_connection_unclean() {
        let mut body = incoming(BodyFraming::Chunked, 100, b"1\r\na\r\n0\r\n\r\nGET /");
        assert_eq!(body.take().unwrap().unwrap(), &b"a"[..]);
        assert!(body.is_done() && !body.clean.get());
    }

    #[test]
    fn an_empty_body_is_clean_from_the_start_and_never_invites() {
        let body = Incoming::new(
            BodyFraming::None,
            10,
            BytesMut::new(),
            Duration::from_secs(1),
            true,
        )
        .unwrap();
        assert!(body.clean.get() && !body.invite);
        let body = Incoming::new(
            BodyFraming::Length(3),
            10,
            BytesMut::new(),
            Duration::from_secs(1),
            true,
        )
        .unwrap();
        assert!(body.invite);
    }
}
