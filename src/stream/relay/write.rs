//! How a relay writes to the client: when the flush policy says so, whole events at a time, in
//! place in the buffer (the chunk framing written into the room kept around the payload), each
//! write bounded by the client write timeout.

use std::time::{Duration, Instant};

use monoio::buf::IoBuf;
use monoio::net::TcpStream;

use super::{ClientFraming, Gone, Relay, BACK, FRONT};
use crate::http::chunked::{push_chunk, LAST_CHUNK};
use crate::server::io::write_all;
use crate::stream::flush::Decision;
use crate::stream::timer::sleep_until;

impl Relay {
    /// Writes what the policy says is due; returns the next flush deadline.
    pub(super) async fn settle(
        &mut self,
        client: &mut TcpStream,
        now: Instant,
    ) -> Result<Option<Instant>, Gone> {
        loop {
            match self.coalescer.decide(now) {
                Decision::Flush(cut) => {
                    if cut > self.coalescer.ready() && !self.coalescer.mid_event() {
                        // An event too large for the buffer is split: take note of it now,
                        // from its first part.
                        let first = &self.buf[FRONT..FRONT + cut];
                        self.stats.tally.observe(first);
                    }
                    self.flush(client, cut, false).await.map_err(|_| Gone)?;
                }
                Decision::WaitUntil(t) => return Ok(Some(t)),
                Decision::Wait => return Ok(None),
            }
        }
    }

    /// Writes the first `cut` held bytes (and, if `last`, the end of the body) to the client.
    pub(super) async fn flush(
        &mut self,
        client: &mut TcpStream,
        cut: usize,
        last: bool,
    ) -> std::io::Result<()> {
        let chunked = self.out == ClientFraming::Chunked;
        if let Some(mut head) = self.head.take() {
            // The commit: head and first bytes in one write (the bytes are few, or the body is
            // not a stream; a copy is cheaper than a second write).
            let data = &self.buf[FRONT..FRONT + cut];
            if chunked && cut > 0 {
                push_chunk(&mut head, data);
            } else {
                head.extend_from_slice(data);
            }
            if chunked && last {
                head.extend_from_slice(LAST_CHUNK);
            }
            self.send(client, head).await?;
        } else if cut == 0 && !(last && chunked) {
            return Ok(());
        } else {
            let (from, to, saved) = self.frame(cut, last);
            let buf = std::mem::take(&mut self.buf);
            let write = monoio::io::AsyncWriteRentExt::write_all(client, buf.slice(from..to));
            // On a timeout the buffer goes with the abandoned write; the relay ends then.
            let (result, slice) = within(self.write_timeout, write)
                .await
                .ok_or_else(timed_out)?;
            self.buf = slice.into_inner();
            if let Some(saved) = saved {
                self.buf[FRONT + cut..FRONT + cut + BACK].copy_from_slice(&saved);
            }
            result?;
        }
        self.wrote(cut);
        let held = self.coalescer.held();
        self.coalescer.flushed(&self.buf[FRONT..FRONT + held], cut);
        self.buf.copy_within(FRONT + cut..FRONT + held, FRONT);
        Ok(())
    }

    /// Puts the chunk framing around the first `cut` held bytes; returns the range to write and
    /// the held bytes the framing behind them overwrote.
    fn frame(&mut self, cut: usize, last: bool) -> (usize, usize, Option<[u8; BACK]>) {
        if self.out == ClientFraming::Passthrough {
            return (FRONT, FRONT + cut, None);
        }
        let mut line = [0u8; FRONT];
        let h = hex_line(cut, &mut line);
        let mut saved = [0u8; BACK];
        saved.copy_from_slice(&self.buf[FRONT + cut..FRONT + cut + BACK]);
        let (from, mut to) = (FRONT - h, FRONT + cut);
        if cut > 0 {
            self.buf[from..FRONT].copy_from_slice(&line[..h]);
            self.buf[to..to + 2].copy_from_slice(b"\r\n");
            to += 2;
        }
        let from = if cut > 0 { from } else { FRONT };
        if last {
            self.buf[to..to + LAST_CHUNK.len()].copy_from_slice(LAST_CHUNK);
            to += LAST_CHUNK.len();
        }
        (from, to, Some(saved))
    }

    /// Writes bytes of the gateway's own (a keep-alive comment, an error event) and counts them.
    pub(super) async fn write(
        &mut self,
        client: &mut TcpStream,
        data: &'static [u8],
        body: usize,
    ) -> std::io::Result<()> {
        self.send(client, data).await?;
        self.wrote(body);
        Ok(())
    }

    /// Counts a write of `body` bytes of the body. Every write, the upstream's events as much as
    /// the gateway's own lines, puts the next keep-alive comment off.
    pub(super) fn wrote(&mut self, body: usize) {
        self.stats.writes += 1;
        self.stats.bytes += body as u64;
        self.last_write = Instant::now();
        self.stats.first_write.get_or_insert(self.last_write);
    }

    pub(super) async fn send<B: IoBuf + 'static>(
        &mut self,
        client: &mut TcpStream,
        data: B,
    ) -> std::io::Result<()> {
        within(self.write_timeout, write_all(client, data))
            .await
            .ok_or_else(timed_out)??;
        Ok(())
    }
}

/// `fut`'s output, or `None` if it did not complete within `limit` (it is dropped then).
async fn within<T>(limit: Duration, fut: impl std::future::Future<Output = T>) -> Option<T> {
    monoio::select! {
        r = fut => Some(r),
        _ = sleep_until(Instant::now() + limit) => None,
    }
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the client took nothing for too long",
    )
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
