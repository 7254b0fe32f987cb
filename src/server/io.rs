//! Small socket helpers shared by the inbound and upstream sides.

use std::cell::Cell;
use std::io;
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use bytes::BytesMut;
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

/// The outcome of a read with a deadline.
pub enum ReadOutcome {
    /// `n` bytes were appended (0 means the peer closed).
    Read(usize),
    TimedOut,
    Failed(io::Error),
}

/// Appends what one read returns to `buf`, growing it first only if it is full. On a timeout the
/// buffer is lost with the cancelled read; callers close the connection then.
pub async fn read_more<S: AsyncReadRent>(
    stream: &mut S,
    buf: &mut BytesMut,
    deadline: Instant,
) -> ReadOutcome {
    if buf.len() == buf.capacity() {
        buf.reserve(buf.capacity().max(4096));
    }
    let range = buf.len()..buf.capacity();
    read_into(stream, buf, range, deadline).await
}

/// Reads once into `buf[range]` (bytes below the range are kept; `buf`'s length grows to the
/// end of what was read if it was shorter). On a timeout the buffer is lost with the cancelled
/// read, as with [`read_more`].
pub async fn read_into<S: AsyncReadRent>(
    stream: &mut S,
    buf: &mut BytesMut,
    range: Range<usize>,
    deadline: Instant,
) -> ReadOutcome {
    let owned = std::mem::take(buf);
    match monoio::time::timeout_at(deadline.into(), stream.read(owned.slice_mut(range))).await {
        Ok((result, slice)) => {
            *buf = slice.into_inner();
            match result {
                Ok(n) => ReadOutcome::Read(n),
                Err(e) => ReadOutcome::Failed(e),
            }
        }
        Err(_) => ReadOutcome::TimedOut,
    }
}

/// Writes all of `data`.
pub async fn write_all<S: AsyncWriteRent, B: monoio::buf::IoBuf + 'static>(
    stream: &mut S,
    data: B,
) -> io::Result<B> {
    let (result, data) = stream.write_all(data).await;
    result.map(|_| data)
}

/// What a socket with no read pending has waiting, looked at without taking it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peek {
    /// Nothing to read yet: the peer is quiet.
    Quiet,
    /// Bytes are waiting.
    Data,
    /// The peer closed its side or the connection failed.
    Closed,
}

/// Peeks at a socket without blocking and without consuming a byte.
pub fn peek(fd: RawFd) -> Peek {
    let mut byte = 0u8;
    // SAFETY: `byte` is a valid one-byte buffer for the duration of the call; a stale or
    // foreign descriptor only makes recv fail, which reads as Closed.
    let n = unsafe {
        libc::recv(
            fd,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match n {
        0 => Peek::Closed,
        n if n > 0 => Peek::Data,
        _ => match io::Error::last_os_error().kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Peek::Quiet,
            _ => Peek::Closed,
        },
    }
}

/// Whether, and from when, a request looks out for a client that left ([`client_gone`]).
pub struct ClientWatch {
    on: Cell<bool>,
    from: Instant,
}

impl ClientWatch {
    /// Watches from `from` on. Most answers come before a client would give up on them, and
    /// arming the watch (a poll on the socket, then its cancellation) was a measurable part of
    /// a small request's cost; a client that leaves sooner is noticed at `from`.
    pub fn new(from: Instant) -> ClientWatch {
        ClientWatch {
            on: Cell::new(true),
            from,
        }
    }
}

/// Completes when the client has closed its side of the connection or reset it, which is how
/// a client abandons a response it is waiting for. A client that sends more instead (a pipelined
/// request) is still there: the watch is turned off and the socket is not polled again.
pub async fn client_gone(client: &TcpStream, watch: &ClientWatch) {
    if Instant::now() < watch.from {
        monoio::time::sleep_until(watch.from.into()).await;
    }
    while watch.on.get() {
        if client.readable(false).await.is_err() {
            return;
        }
        match peek(client.as_raw_fd()) {
            Peek::Closed => return,
            Peek::Data => watch.on.set(false),
            Peek::Quiet => {}
        }
    }
    std::future::pending().await
}
