//! Relaying a response body from upstream to client through one fixed buffer.
//!
//! Upstream bytes are read straight into the buffer, chunked framing is decoded in place, and
//! what goes to the client is written straight from it, re-framed as one chunk per write: the
//! chunk-size line goes into room kept in front of the payload, the CRLF into room behind it, so
//! no byte of the body is copied on the way. For event streams only whole events are forwarded
//! (an event is split only when it alone fills the buffer), so a failure can always be reported
//! with an in-band `event: error` that the client can parse.

use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use monoio::buf::IoBuf;
use monoio::net::TcpStream;

use super::sse::last_event_end;
use crate::http::chunked::{ChunkedDecoder, LAST_CHUNK};
use crate::http::ApiError;
use crate::server::io::{read_into, write_all, ReadOutcome};
use crate::upstream::conn::UpstreamConn;
use crate::upstream::response::ResponseFraming;

/// Room in front of the payload for a chunk-size line (hex length and CRLF).
const FRONT: usize = 16;
/// Room behind the payload for the CRLF that ends a chunk.
const BACK: usize = 2;

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
}

/// Counters of one relay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Body bytes delivered to the client.
    pub bytes: u64,
    /// Writes to the client.
    pub writes: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RelayEnd {
    /// The whole body reached the client. `reusable`: the upstream connection ended cleanly at
    /// the body's end and could carry another request.
    Complete { reusable: bool },
    /// The upstream failed mid-body; the client was told in-band (event streams) or the
    /// response was cut short (everything else), and the connection must close.
    UpstreamFailed(String),
    /// The client went away.
    ClientGone,
}

/// Relays the body that follows a response head. `leftover` holds body bytes read with the head.
pub async fn relay(
    upstream: &mut UpstreamConn,
    client: &mut TcpStream,
    leftover: BytesMut,
    framing: ResponseFraming,
    out: ClientFraming,
    event_stream: bool,
    settings: RelaySettings,
) -> (RelayEnd, RelayStats) {
    let mut r = Relay {
        // A `BytesMut` because monoio's reads only ever grow its length (a `Vec`'s would be cut
        // to the end of the last read), and the whole buffer stays addressable.
        buf: BytesMut::zeroed(FRONT + settings.buffer_bytes + BACK),
        size: settings.buffer_bytes,
        held: 0,
        out,
        stats: RelayStats::default(),
    };
    let mut pending = leftover;
    let mut decoder = ChunkedDecoder::new();
    let mut remaining = match framing {
        ResponseFraming::Length(n) => n,
        _ => u64::MAX,
    };
    let mut reusable = true;
    let failure = loop {
        let body_done = match framing {
            ResponseFraming::None => true,
            ResponseFraming::Length(_) => remaining == 0,
            ResponseFraming::Chunked => decoder.is_done(),
            ResponseFraming::UntilClose => false,
        };
        if body_done {
            break None;
        }
        let start = FRONT + r.held;
        let space = r.size - r.held;
        let n = if !pending.is_empty() {
            let k = space.min(pending.len());
            r.buf[start..start + k].copy_from_slice(&pending[..k]);
            pending.advance(k);
            k
        } else {
            let deadline = Instant::now() + settings.idle_timeout;
            match read_into(upstream, &mut r.buf, start..start + space, deadline).await {
                ReadOutcome::TimedOut => {
                    break Some(format!(
                        "the upstream sent nothing for {} s",
                        settings.idle_timeout.as_secs()
                    ))
                }
                ReadOutcome::Read(0) if framing == ResponseFraming::UntilClose => {
                    reusable = false;
                    break None;
                }
                ReadOutcome::Read(0) => {
                    break Some("the upstream closed the connection mid-response".into())
                }
                ReadOutcome::Read(n) => n,
                ReadOutcome::Failed(e) => {
                    break Some(format!("the upstream connection failed mid-response: {e}"))
                }
            }
        };
        let mut broken = None;
        let data = match framing {
            ResponseFraming::Chunked => {
                let d = decoder.decode_in_place(&mut r.buf[start..start + n]);
                reusable &= d.consumed == n && pending.is_empty() || !decoder.is_done();
                broken = d.error;
                d.data
            }
            ResponseFraming::Length(_) => {
                let data = (n as u64).min(remaining);
                reusable &= data == n as u64;
                remaining -= data;
                data as usize
            }
            _ => n,
        };
        r.held += data;
        let cut = if event_stream {
            match last_event_end(&r.buf[FRONT..FRONT + r.held]) {
                Some(end) => end,
                None if r.held == r.size => r.held, // one event larger than the buffer
                None => 0,
            }
        } else {
            r.held
        };
        if cut > 0 && r.flush(client, cut).await.is_err() {
            return (RelayEnd::ClientGone, r.stats);
        }
        if let Some(e) = broken {
            break Some(format!("the upstream sent a broken response ({e})"));
        }
    };
    match failure {
        None => {
            if r.held > 0 && r.flush(client, r.held).await.is_err() {
                return (RelayEnd::ClientGone, r.stats);
            }
            if out == ClientFraming::Chunked && r.write(client, LAST_CHUNK.to_vec()).await.is_err()
            {
                return (RelayEnd::ClientGone, r.stats);
            }
            (
                RelayEnd::Complete {
                    reusable: reusable && pending.is_empty(),
                },
                r.stats,
            )
        }
        Some(reason) => {
            // A partial event would be garbage to the client: drop it, then say what happened.
            if event_stream && out == ClientFraming::Chunked {
                let event = ApiError::bad_gateway(reason.clone()).stream_event();
                let mut tail = Vec::with_capacity(event.len() + 16);
                crate::http::chunked::chunk_header(event.len(), &mut tail);
                tail.extend_from_slice(event.as_bytes());
                tail.extend_from_slice(b"\r\n");
                tail.extend_from_slice(LAST_CHUNK);
                let _ = r.write(client, tail).await;
            }
            (RelayEnd::UpstreamFailed(reason), r.stats)
        }
    }
}

struct Relay {
    /// `FRONT` bytes of room, then up to `size` bytes of payload, then `BACK` bytes of room.
    buf: BytesMut,
    size: usize,
    /// Payload bytes at `FRONT..FRONT + held` not yet written.
    held: usize,
    out: ClientFraming,
    stats: RelayStats,
}

impl Relay {
    /// Writes the first `cut` held bytes to the client and keeps the rest.
    async fn flush(&mut self, client: &mut TcpStream, cut: usize) -> std::io::Result<()> {
        let (from, to, saved) = match self.out {
            ClientFraming::Passthrough => (FRONT, FRONT + cut, None),
            ClientFraming::Chunked => {
                let mut line = [0u8; FRONT];
                let h = hex_line(cut, &mut line);
                self.buf[FRONT - h..FRONT].copy_from_slice(&line[..h]);
                let saved = [self.buf[FRONT + cut], self.buf[FRONT + cut + 1]];
                self.buf[FRONT + cut..FRONT + cut + 2].copy_from_slice(b"\r\n");
                (FRONT - h, FRONT + cut + 2, Some(saved))
            }
        };
        let buf = std::mem::take(&mut self.buf);
        let (result, slice) =
            monoio::io::AsyncWriteRentExt::write_all(client, buf.slice(from..to)).await;
        self.buf = slice.into_inner();
        if let Some(saved) = saved {
            self.buf[FRONT + cut..FRONT + cut + 2].copy_from_slice(&saved);
        }
        result?;
        self.stats.writes += 1;
        self.stats.bytes += cut as u64;
        self.buf.copy_within(FRONT + cut..FRONT + self.held, FRONT);
        self.held -= cut;
        Ok(())
    }

    async fn write(&mut self, client: &mut TcpStream, data: Vec<u8>) -> std::io::Result<()> {
        write_all(client, data).await?;
        self.stats.writes += 1;
        Ok(())
    }
}

/// Writes `len` as a chunk-size line (`hex\r\n`) into `out`; returns its length.
fn hex_line(len: usize, out: &mut [u8; FRONT]) -> usize {
    let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1) as usize;
    for (i, slot) in out[..digits].iter_mut().enumerate() {
        *slot = b"0123456789abcdef"[(len >> (4 * (digits - 1 - i))) & 0xf];
    }
    out[digits..digits + 2].copy_from_slice(b"\r\n");
    digits + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_lines() {
        for len in [0usize, 1, 15, 16, 255, 16384, 0xabcdef] {
            let mut out = [0u8; FRONT];
            let n = hex_line(len, &mut out);
            assert_eq!(&out[..n], format!("{len:x}\r\n").as_bytes());
        }
    }
}
