//! What became of one request: the facts its access-log line and its metrics are made from.
//!
//! They become known in different places (the status where the head is written, the upstream's
//! time in each attempt, the usage and the writes in the relay), so the request carries an
//! [`Exchange`] of cells that those places note into, and the handler turns it into one
//! [`Summary`] when the request is over.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::stream::relay::RelayStats;
use crate::stream::tally::Usage;

/// How a request ended, in one word (`outcome` in the access log).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ending {
    /// The whole response reached the client (an error the gateway answered included).
    #[default]
    Complete,
    /// The client left before the response was complete.
    ClientGone,
    /// The upstream failed after the response began: cut short, or ended with an in-band error.
    UpstreamFailed,
    /// The drain timeout ended the response.
    CutShort,
}

impl Ending {
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Complete => "complete",
            Ending::ClientGone => "client_gone",
            Ending::UpstreamFailed => "upstream_failed",
            Ending::CutShort => "cut_short",
        }
    }
}

/// The status logged for a request whose client left before any answer (nginx's convention).
pub const CLIENT_CLOSED: u16 = 499;

/// Noted along a request's way; every method is cheap and allocation-free.
#[derive(Debug)]
pub struct Exchange {
    /// When the whole request (head and body) was in.
    pub received: Instant,
    status: Cell<u16>,
    attempts: Cell<u32>,
    upstream_time: Cell<Duration>,
    /// The credential (index in the request's generation) of the last attempt.
    credential: Cell<Option<usize>>,
    /// What reached the client: its first write, body bytes, writes, events and usage (only the
    /// first two when the gateway answered itself).
    relay: Cell<RelayStats>,
    event_stream: Cell<bool>,
    ending: Cell<Ending>,
}

impl Exchange {
    pub fn new(received: Instant) -> Exchange {
        Exchange {
            received,
            status: Cell::new(0),
            attempts: Cell::new(0),
            upstream_time: Cell::new(Duration::ZERO),
            credential: Cell::new(None),
            relay: Cell::new(RelayStats::default()),
            event_stream: Cell::new(false),
            ending: Cell::new(Ending::Complete),
        }
    }

    /// The gateway answers itself with `response` (head and body) now.
    pub fn answered(&self, status: u16, response: &[u8]) {
        let head = memchr::memmem::find(response, b"\r\n\r\n").map_or(0, |i| i + 4);
        self.status.set(status);
        self.relay.set(RelayStats {
            bytes: (response.len() - head) as u64,
            first_write: Some(Instant::now()),
            ..RelayStats::default()
        });
    }

    /// One attempt with `credential` took `elapsed` of the upstream's time.
    pub fn attempted(&self, credential: usize, elapsed: Duration) {
        self.attempts.set(self.attempts.get() + 1);
        self.waited(elapsed);
        self.credential.set(Some(credential));
    }

    /// `elapsed` more went to reading from an upstream.
    pub fn waited(&self, elapsed: Duration) {
        self.upstream_time.set(self.upstream_time.get() + elapsed);
    }

    /// The upstream's answer with `status` was relayed; `upstream_time` of it is the upstream's.
    pub fn relayed(&self, status: u16, stats: &RelayStats, event_stream: bool, ending: Ending) {
        self.status.set(status);
        self.relay.set(*stats);
        self.event_stream.set(event_stream);
        self.ending.set(ending);
    }

    pub fn credential(&self) -> Option<usize> {
        self.credential.get()
    }

    /// The facts as they stand at `now`, the end of the request. Nothing answered (status 0)
    /// means the client left first.
    pub fn facts(&self, now: Instant) -> Facts {
        let relay = self.relay.get();
        let status = match self.status.get() {
            0 => CLIENT_CLOSED,
            s => s,
        };
        let ending = match self.status.get() {
            0 => Ending::ClientGone,
            _ => self.ending.get(),
        };
        Facts {
            status,
            ending,
            attempts: self.attempts.get(),
            first_byte: relay.first_write.map(|t| t - self.received),
            duration: now - self.received,
            upstream_time: self.upstream_time.get(),
            usage: relay.tally.usage,
            body_out: relay.bytes,
            client_writes: relay.writes,
            events: relay.tally.events,
            event_stream: self.event_stream.get(),
        }
    }
}

/// What an [`Exchange`] amounts to when its request is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts {
    pub status: u16,
    pub ending: Ending,
    pub attempts: u32,
    /// From the request's arrival to the first byte written to the client.
    pub first_byte: Option<Duration>,
    pub duration: Duration,
    /// The part of `duration` spent waiting for or reading from upstreams.
    pub upstream_time: Duration,
    pub usage: Usage,
    pub body_out: u64,
    pub client_writes: u64,
    pub events: u64,
    /// The response was an event stream.
    pub event_stream: bool,
}

impl Facts {
    /// The gateway's own share of the request's time.
    pub fn overhead(&self) -> Duration {
        self.duration.saturating_sub(self.upstream_time)
    }
}

/// One finished request, with the names that label it: what metrics and the access log take.
#[derive(Clone, Copy, Debug)]
pub struct Summary<'a> {
    pub id: &'a str,
    pub method: &'a str,
    /// Without the query string.
    pub path: &'a str,
    /// The endpoint (`messages`, `count_tokens`, `models`, `model`, `healthz`, or `unknown`).
    pub route: &'static str,
    /// The name of the client's key, when keys are configured.
    pub client: Option<&'a str>,
    /// The model asked for, aliases resolved.
    pub model: Option<&'a str>,
    /// The client asked for a stream.
    pub stream: bool,
    pub upstream: Option<&'a str>,
    pub credential: Option<&'a str>,
    pub body_in: u64,
    pub facts: Facts,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_nobody_answered_is_a_client_that_left() {
        let t0 = Instant::now();
        let x = Exchange::new(t0);
        x.attempted(3, Duration::from_millis(5));
        let f = x.facts(t0 + Duration::from_millis(7));
        assert_eq!(
            (f.status, f.ending, f.attempts),
            (499, Ending::ClientGone, 1)
        );
        assert_eq!(f.overhead(), Duration::from_millis(2));
        assert_eq!(f.first_byte, None);
        assert_eq!(x.credential(), Some(3));
    }

    #[test]
    fn an_answer_of_the_gateways_own_counts_its_body() {
        let x = Exchange::new(Instant::now());
        x.answered(
            404,
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}",
        );
        let f = x.facts(Instant::now());
        assert_eq!((f.status, f.ending, f.body_out), (404, Ending::Complete, 2));
        assert!(f.first_byte.is_some());
        assert_eq!(f.overhead(), f.duration);
    }
}
