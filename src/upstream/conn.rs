//! An upstream connection: plain TCP or TLS, behind one read/write interface whose reads can be
//! interrupted without losing a byte.
//!
//! The relay waits on an upstream read while a flush deadline may come due; it then cancels the
//! read, writes to the client and reads again. Dropping the read instead would lose what the
//! kernel delivers into the abandoned buffer (io_uring) or leave the TLS layer without its
//! buffer. Plain TCP cancels natively. The TLS layer (monoio-rustls) has no cancellation, so it
//! reads through [`Interruptible`], a TCP stream whose reads end early when asked; what the TLS
//! layer had already read stays in rustls.
//!
//! One quirk is handled here: after a cancelled read monoio-rustls keeps a copy of the error and
//! returns it once more the next time it needs bytes from the socket. That second copy is
//! recognised and skipped.

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, CancelHandle, CancelableAsyncReadRent, Canceller};
use monoio::net::TcpStream;
use monoio::BufResult;
use monoio_rustls::ClientTlsStream;

use crate::server::io::{peek, Peek};

pub enum UpstreamConn {
    Plain(TcpStream),
    Tls(Box<TlsConn>),
}

pub struct TlsConn {
    stream: ClientTlsStream<Interruptible>,
    state: Rc<ReadState>,
    /// The TCP socket under the TLS layer, to peek at while the connection is idle.
    fd: RawFd,
}

/// Shared between a TLS connection and the TCP stream it reads through.
#[derive(Default)]
pub struct ReadState {
    /// The handle the current read may be cancelled with.
    handle: Cell<Option<CancelHandle>>,
    /// The TCP read under the TLS layer was cancelled.
    cancelled: Cell<bool>,
    /// monoio-rustls still holds a copy of the cancellation error (see the module comment).
    stale_error: Cell<bool>,
}

/// A TCP stream whose reads end with `ECANCELED` when the current handle is cancelled.
pub struct Interruptible {
    tcp: TcpStream,
    state: Rc<ReadState>,
}

/// The error a cancelled read ends with.
pub fn is_cancelled(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ECANCELED)
}

impl Interruptible {
    /// Wraps `tcp` for a TLS handshake; the state goes to [`UpstreamConn::tls`] with the stream.
    pub fn new(tcp: TcpStream) -> (Interruptible, Rc<ReadState>) {
        let state = Rc::new(ReadState::default());
        let io = Interruptible {
            tcp,
            state: state.clone(),
        };
        (io, state)
    }
}

impl UpstreamConn {
    pub fn tls(
        stream: ClientTlsStream<Interruptible>,
        state: Rc<ReadState>,
        fd: RawFd,
    ) -> UpstreamConn {
        UpstreamConn::Tls(Box::new(TlsConn { stream, state, fd }))
    }

    /// Whether a connection that sat idle may carry another request: the upstream has neither
    /// closed it nor sent anything. Bytes on an idle connection are never part of the next
    /// answer (a server's 408 before it closes, say), under TLS as much as without.
    pub fn still_open(&self) -> bool {
        let fd = match self {
            UpstreamConn::Plain(s) => s.as_raw_fd(),
            UpstreamConn::Tls(t) => t.fd,
        };
        peek(fd) == Peek::Quiet
    }

    /// Lets a new TLS connection take in what a server sends just after the handshake (TLS 1.3
    /// session tickets) before it sits idle, so that [`still_open`](Self::still_open) does not
    /// mistake them for an unsolicited answer. Waits up to `wait`; false if the connection
    /// closed or sent data meanwhile.
    pub async fn settle(&mut self, wait: Duration) -> bool {
        if let UpstreamConn::Plain(_) = self {
            return true;
        }
        let canceller = Canceller::new();
        let mut read =
            std::pin::pin!(self.read_interruptible(Vec::with_capacity(64), canceller.handle()));
        let result = monoio::select! {
            r = &mut read => r.0,
            _ = monoio::time::sleep(wait) => {
                let _ = canceller.cancel();
                read.await.0
            }
        };
        matches!(result, Err(e) if is_cancelled(&e))
    }

    /// Reads into `buf`; when the handle's canceller is cancelled meanwhile, ends with an error that
    /// [`is_cancelled`] recognises, having lost no byte (a cancel may also lose the race and the
    /// read complete normally).
    pub async fn read_interruptible<T: IoBufMut>(
        &mut self,
        buf: T,
        handle: CancelHandle,
    ) -> BufResult<usize, T> {
        match self {
            UpstreamConn::Plain(s) => s.cancelable_read(buf, handle).await,
            UpstreamConn::Tls(t) => t.read(buf, Some(handle)).await,
        }
    }
}

impl TlsConn {
    async fn read<T: IoBufMut>(
        &mut self,
        mut buf: T,
        handle: Option<CancelHandle>,
    ) -> BufResult<usize, T> {
        loop {
            self.state.handle.set(handle.clone());
            self.state.cancelled.set(false);
            let (result, back) = self.stream.read(buf).await;
            self.state.handle.set(None);
            buf = back;
            match result {
                // monoio-rustls converted the error and lost its code; say plainly what happened.
                Err(_) if self.state.cancelled.get() => {
                    self.state.stale_error.set(true);
                    return (Err(io::Error::from_raw_os_error(libc::ECANCELED)), buf);
                }
                Err(e) if is_cancelled(&e) && self.state.stale_error.get() => {
                    self.state.stale_error.set(false);
                }
                other => return (other, buf),
            }
        }
    }
}

impl AsyncReadRent for Interruptible {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        let Some(handle) = self.state.handle.take() else {
            return self.tcp.read(buf).await;
        };
        self.state.handle.set(Some(handle.clone()));
        let (result, buf) = self.tcp.cancelable_read(buf, handle).await;
        if matches!(&result, Err(e) if is_cancelled(e)) {
            self.state.cancelled.set(true);
        }
        (result, buf)
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        self.tcp.readv(buf).await
    }
}

impl AsyncWriteRent for Interruptible {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        self.tcp.write(buf).await
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        self.tcp.writev(buf).await
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush().await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.tcp.shutdown().await
    }
}

impl AsyncReadRent for UpstreamConn {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            UpstreamConn::Plain(s) => s.read(buf).await,
            // Through the same path as interruptible reads, so a stale cancellation error left
            // by an earlier one is skipped here too.
            UpstreamConn::Tls(t) => t.read(buf, None).await,
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            UpstreamConn::Plain(s) => s.readv(buf).await,
            UpstreamConn::Tls(t) => t.stream.readv(buf).await,
        }
    }
}

impl AsyncWriteRent for UpstreamConn {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            UpstreamConn::Plain(s) => s.write(buf).await,
            UpstreamConn::Tls(t) => t.stream.write(buf).await,
        }
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            UpstreamConn::Plain(s) => s.writev(buf).await,
            UpstreamConn::Tls(t) => t.stream.writev(buf).await,
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        match self {
            UpstreamConn::Plain(s) => s.flush().await,
            UpstreamConn::Tls(t) => t.stream.flush().await,
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            UpstreamConn::Plain(s) => s.shutdown().await,
            UpstreamConn::Tls(t) => t.stream.shutdown().await,
        }
    }
}
