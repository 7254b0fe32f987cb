//! How a relay ends a response: the whole of it, or, after an upstream failure or at a drain's
//! timeout, the whole events it holds and then an in-band error event, so a stream never just
//! stops.

use monoio::net::TcpStream;

use super::{broken, ClientFraming, Failure, Gone, Relay, RelayEnd};
use crate::http::chunked::{push_chunk, LAST_CHUNK};
use crate::http::ApiError;
use crate::lifecycle::phase;

impl Relay {
    /// The body ended cleanly on the upstream's side.
    pub(super) async fn finish(&mut self, client: &mut TcpStream, reusable: bool) -> RelayEnd {
        if self.is_event_stream() {
            let tail = self.coalescer.tail();
            if !tail.is_empty() {
                return self
                    .fail(client, broken("ended the stream in the middle of an event"))
                    .await;
            }
            if !self.stats.tally.finished() {
                let what = if self.stats.tally.events == 0 {
                    "ended the stream without sending any event"
                } else {
                    "ended the stream without message_stop"
                };
                return self.fail(client, broken(what)).await;
            }
        }
        self.complete(client, reusable).await
    }

    /// Writes the whole events held and the end of the body.
    async fn complete(&mut self, client: &mut TcpStream, reusable: bool) -> RelayEnd {
        let ready = self.coalescer.ready();
        match self.flush(client, ready, true).await {
            Ok(()) => RelayEnd::Complete { reusable },
            Err(_) => RelayEnd::ClientGone,
        }
    }

    /// Ends the response after an upstream failure: whole events still go out, then, for an event
    /// stream that can take one, an error event and a proper end.
    pub(super) async fn fail(&mut self, client: &mut TcpStream, failure: Failure) -> RelayEnd {
        if self.head.is_some() && self.coalescer.ready() == 0 {
            return RelayEnd::NotCommitted(failure);
        }
        if self.is_event_stream() && self.stats.tally.stopped {
            // The answer is complete; only the upstream's framing after it went wrong.
            log::debug!("upstream {} after message_stop", failure.reason);
            return self.complete(client, false).await;
        }
        let error = ApiError::bad_gateway(format!("the upstream {}", failure.reason));
        match self.end_in_band(client, &error).await {
            Ok(()) => RelayEnd::UpstreamFailed(failure),
            Err(Gone) => RelayEnd::ClientGone,
        }
    }

    /// Ends the response at the drain timeout, as [`fail`](Self::fail) does with an upstream
    /// failure, with an `overloaded_error` instead. A body other than an event stream whose head
    /// is not out yet is not begun at all: the client gets a whole 529 rather than half a body.
    pub(super) async fn cut_off(&mut self, client: &mut TcpStream) -> RelayEnd {
        let event_stream = self.is_event_stream();
        if self.head.is_some() && (!event_stream || self.coalescer.ready() == 0) {
            return RelayEnd::ShuttingDown { committed: false };
        }
        if event_stream && self.stats.tally.stopped {
            return self.complete(client, false).await;
        }
        match self.end_in_band(client, &phase::shutting_down()).await {
            Ok(()) => RelayEnd::ShuttingDown { committed: true },
            Err(Gone) => RelayEnd::ClientGone,
        }
    }

    /// Writes the whole events held, then, for an event stream that can take one, `error` as an
    /// event and the end of the body.
    async fn end_in_band(&mut self, client: &mut TcpStream, error: &ApiError) -> Result<(), Gone> {
        let ready = self.coalescer.ready();
        if ready > 0 && self.flush(client, ready, false).await.is_err() {
            return Err(Gone);
        }
        if self.is_event_stream() && self.may_add {
            let mut text = String::new();
            if self.coalescer.mid_event() {
                // The client holds the start of an event that will never end: close it, so
                // the error event after it is read as one.
                text.push_str("\n\n");
            }
            text.push_str(&error.stream_event());
            let mut tail = Vec::with_capacity(text.len() + 16);
            if self.out == ClientFraming::Chunked {
                push_chunk(&mut tail, text.as_bytes());
                tail.extend_from_slice(LAST_CHUNK);
            } else {
                tail.extend_from_slice(text.as_bytes());
            }
            if self.send(client, tail).await.is_ok() {
                self.wrote(text.len());
            }
        }
        Ok(())
    }
}
