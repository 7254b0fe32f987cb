//! One HTTP/1.1 exchange on a keep-alive connection, read as it arrives.
//!
//! The load generator must cost less than what it measures, so a connection owns one read
//! buffer for its whole life, the request is the run's one byte string, response heads are
//! parsed in place with `httparse`, and chunked bodies are decoded in place with ringgate's own
//! decoder. A streamed body is handed to the [`StreamCheck`] read by read, with the time each
//! read returned, because when an event arrives is what is being measured.
//!
//! Failures are results, never panics: each maps to an [`ErrorKind`], and a deadline that is
//! the end of the run rather than the request's own timeout abandons the exchange uncounted.

use std::net::SocketAddr;
use std::time::Instant;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use monoio::time::timeout_at;
use ringgate::http::chunked::ChunkedDecoder;
use ringgate::mock::shape::now_micros;

use super::stats::ErrorKind;
use super::stream_check::StreamCheck;

/// The largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// Why an exchange ended without a complete response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fail {
    Error(ErrorKind),
    /// The run ended first: not counted.
    Abandoned,
}

/// When an exchange must be over, and what it means if it is not.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    pub at: Instant,
    /// `at` is the end of the run, not the request's timeout.
    pub stop: bool,
}

impl Deadline {
    /// The earlier of the request's timeout and the end of the run.
    pub fn new(timeout_at: Instant, stop_at: Option<Instant>) -> Deadline {
        match stop_at {
            Some(stop) if stop <= timeout_at => Deadline {
                at: stop,
                stop: true,
            },
            _ => Deadline {
                at: timeout_at,
                stop: false,
            },
        }
    }

    fn expired(self, kind: ErrorKind) -> Fail {
        if self.stop {
            Fail::Abandoned
        } else {
            Fail::Error(kind)
        }
    }
}

/// Told of a stream's progress while it lasts (hold mode counts held streams with it).
pub trait Watch {
    /// The stream's first complete event arrived.
    fn first_event(&mut self) {}
    /// A read was fed to the stream's check.
    fn fed(&mut self, _check: &mut StreamCheck) {}
}

impl Watch for () {}

/// What an exchange saw, complete or not.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub status: Option<u16>,
    /// The connection may carry the next request.
    pub keep_alive: bool,
    /// Reads that returned body bytes.
    pub reads: u64,
    /// Body payload bytes.
    pub body_bytes: u64,
    /// When the read that completed the first event returned.
    pub first_event: Option<Instant>,
}

/// An open connection and its read buffer.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// Opens a connection (`TCP_NODELAY`) with a read buffer of `buf_size` bytes.
pub async fn connect(addr: SocketAddr, buf_size: usize, deadline: Deadline) -> Result<Conn, Fail> {
    match timeout_at(deadline.at.into(), TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(Conn {
                stream,
                buf: Vec::with_capacity(buf_size),
            })
        }
        Ok(Err(_)) => Err(Fail::Error(ErrorKind::Connect)),
        Err(_) => Err(deadline.expired(ErrorKind::Connect)),
    }
}

/// How the body's end is known.
enum Body {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
}

/// What a response head says.
struct Head {
    len: usize,
    status: u16,
    body: Body,
    keep_alive: bool,
}

/// Parses a complete head at the start of `buf`; `None` if more bytes are needed.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, Fail> {
    let malformed = Fail::Error(ErrorKind::Malformed);
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(malformed),
    };
    let status = response.code.ok_or(malformed)?;
    let mut keep_alive = response.version == Some(1);
    let (mut length, mut chunked) = (None, false);
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok());
            length = Some(n.ok_or(malformed)?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h.value.eq_ignore_ascii_case(b"chunked");
            if !chunked {
                return Err(malformed);
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            keep_alive &= !h.value.eq_ignore_ascii_case(b"close");
        }
    }
    let body = match (status, chunked, length) {
        (100..=199, ..) => return Err(malformed),
        (204 | 304, ..) => Body::Length(0),
        (_, true, _) => Body::Chunked(ChunkedDecoder::new()),
        (_, false, Some(n)) => Body::Length(n),
        (_, false, None) => Body::UntilClose,
    };
    Ok(Some(Head {
        len,
        status,
        body,
        keep_alive,
    }))
}

/// Takes the body bytes of one read (payload moved to the front of `part`); returns the
/// payload length and whether the body is complete.
fn take_body(body: &mut Body, part: &mut [u8]) -> Result<(usize, bool), Fail> {
    let malformed = Fail::Error(ErrorKind::Malformed);
    match body {
        Body::Length(left) => {
            if part.len() as u64 > *left {
                // Bytes after the response: nothing was asked for them.
                return Err(malformed);
            }
            *left -= part.len() as u64;
            Ok((part.len(), *left == 0))
        }
        Body::Chunked(decoder) => {
            let r = decoder.decode_in_place(part);
            if r.error.is_some() || (decoder.is_done() && r.consumed < part.len()) {
                return Err(malformed);
            }
            Ok((r.data, decoder.is_done()))
        }
        Body::UntilClose => Ok((part.len(), false)),
    }
}

impl Conn {
    /// Sends `request` and reads the whole response. A streamed (2xx) body goes through
    /// `check`; `watch` hears of its progress. After a failure the connection must be dropped.
    pub async fn exchange(
        &mut self,
        request: &'static [u8],
        deadline: Deadline,
        mut check: Option<&mut StreamCheck>,
        watch: &mut impl Watch,
    ) -> (Tally, Option<Fail>) {
        let mut tally = Tally::default();
        if let Some(check) = check.as_deref_mut() {
            check.reset();
        }
        let result = self
            .run(request, deadline, &mut check, watch, &mut tally)
            .await;
        if result.is_err() {
            tally.keep_alive = false;
        }
        (tally, result.err())
    }

    async fn run(
        &mut self,
        request: &'static [u8],
        deadline: Deadline,
        check: &mut Option<&mut StreamCheck>,
        watch: &mut impl Watch,
        tally: &mut Tally,
    ) -> Result<(), Fail> {
        match timeout_at(deadline.at.into(), self.stream.write_all(request)).await {
            Ok((Ok(_), _)) => {}
            Ok((Err(_), _)) => return Err(Fail::Error(ErrorKind::Reset)),
            Err(_) => return Err(deadline.expired(ErrorKind::Timeout)),
        }
        self.buf.clear();
        let timed = check.is_some();
        let mut arrived = (Instant::now(), 0);
        let head = loop {
            if self.buf.len() == self.buf.capacity() {
                if self.buf.capacity() >= MAX_HEAD {
                    return Err(Fail::Error(ErrorKind::Malformed));
                }
                self.buf.reserve(self.buf.capacity().max(4096));
            }
            if self.read(deadline).await? == 0 {
                return Err(Fail::Error(ErrorKind::ClosedEarly));
            }
            if timed {
                arrived = (Instant::now(), now_micros());
            }
            if let Some(head) = parse_head(&self.buf)? {
                break head;
            }
        };
        tally.status = Some(head.status);
        let mut check = check
            .as_deref_mut()
            .filter(|_| (200..300).contains(&head.status));
        let (mut body, mut from) = (head.body, head.len);
        let mut done = matches!(body, Body::Length(0));
        while !done {
            if from < self.buf.len() {
                tally.reads += 1;
                let (payload, end) = take_body(&mut body, &mut self.buf[from..])?;
                tally.body_bytes += payload as u64;
                done = end;
                if let Some(check) = check.as_deref_mut() {
                    check.feed(&self.buf[from..from + payload], arrived.1);
                    if tally.first_event.is_none() && check.events > 0 {
                        tally.first_event = Some(arrived.0);
                        watch.first_event();
                    }
                    watch.fed(check);
                }
                if done {
                    break;
                }
            }
            self.buf.clear();
            from = 0;
            let n = self.read(deadline).await?;
            if timed {
                arrived = (Instant::now(), now_micros());
            }
            if n == 0 {
                if !matches!(body, Body::UntilClose) {
                    return Err(Fail::Error(ErrorKind::ClosedEarly));
                }
                tally.keep_alive = false;
                return Ok(());
            }
        }
        tally.keep_alive = head.keep_alive && !matches!(body, Body::UntilClose);
        Ok(())
    }

    /// Appends what one read returns to the buffer (which must have room).
    async fn read(&mut self, deadline: Deadline) -> Result<usize, Fail> {
        let buf = std::mem::take(&mut self.buf);
        let len = buf.len();
        match timeout_at(deadline.at.into(), self.stream.read(buf.slice_mut(len..))).await {
            Ok((Ok(n), slice)) => {
                self.buf = slice.into_inner();
                Ok(n)
            }
            Ok((Err(_), _)) => Err(Fail::Error(ErrorKind::Reset)),
            // The cancelled read took the buffer with it; the connection is dropped now.
            Err(_) => Err(deadline.expired(ErrorKind::Timeout)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<Head>, Fail> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn heads() {
        let h = head("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
            .unwrap()
            .unwrap();
        assert_eq!((h.len, h.status, h.keep_alive), (38, 200, true));
        assert!(matches!(h.body, Body::Length(5)));
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(matches!(h.body, Body::Chunked(_)) && !h.keep_alive);
        let h = head("HTTP/1.0 429 Too Many\r\n\r\n").unwrap().unwrap();
        assert!(matches!(h.body, Body::UntilClose) && !h.keep_alive);
        assert!(head("HTTP/1.1 200 OK\r\ncontent-le").unwrap().is_none());
        for bad in [
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
            "HTTP/1.1 100 Continue\r\n\r\n",
            "garbage\r\n\r\n",
        ] {
            assert!(head(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies_end_where_their_framing_says() {
        let mut b = Body::Length(5);
        assert_eq!(take_body(&mut b, &mut b"hel".to_vec()).unwrap(), (3, false));
        assert_eq!(take_body(&mut b, &mut b"lo".to_vec()).unwrap(), (2, true));
        let mut b = Body::Length(2);
        assert!(take_body(&mut b, &mut b"abc".to_vec()).is_err());

        let mut b = Body::Chunked(ChunkedDecoder::new());
        let mut part = b"3\r\nabc\r\n0\r".to_vec();
        assert_eq!(take_body(&mut b, &mut part).unwrap(), (3, false));
        assert_eq!(&part[..3], b"abc");
        assert_eq!(
            take_body(&mut b, &mut b"\n\r\n".to_vec()).unwrap(),
            (0, true)
        );
        let mut b = Body::Chunked(ChunkedDecoder::new());
        assert!(take_body(&mut b, &mut b"0\r\n\r\nextra".to_vec()).is_err());
        assert!(take_body(
            &mut Body::Chunked(ChunkedDecoder::new()),
            &mut b"z\r\n".to_vec()
        )
        .is_err());
    }

    #[test]
    fn the_run_end_abandons_and_the_timeout_fails() {
        let now = Instant::now();
        let later = now + std::time::Duration::from_secs(1);
        let d = Deadline::new(later, Some(now));
        assert!(d.stop && d.at == now);
        assert_eq!(d.expired(ErrorKind::Timeout), Fail::Abandoned);
        let d = Deadline::new(now, Some(later));
        assert_eq!(
            d.expired(ErrorKind::Timeout),
            Fail::Error(ErrorKind::Timeout)
        );
        assert!(!Deadline::new(now, None).stop);
    }
}
