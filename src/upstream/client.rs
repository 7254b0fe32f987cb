//! Talking to an upstream: send one request, read the response head, and name every way that can
//! fail.
//!
//! Every failure is classified here (refused, timed out, reset, garbage) and named with the
//! upstream it came from, because the client needs a clear error and the credential pool needs
//! to know that the fault was the connection's, not the credential's.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::conn::UpstreamConn;
use super::proxy::Proxy;
use super::response::{self, ResponseHead};
use super::url::BaseUrl;
use crate::http::ApiError;
use crate::server::io::{read_more, write_all, ReadOutcome};

/// How soon after a request's last byte a close still means the upstream was closing the idle
/// connection rather than dropping the request: a round trip, with room to spare.
pub const STALE_WINDOW: Duration = Duration::from_secs(1);

/// A resolved upstream endpoint.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub url: BaseUrl,
    pub timeouts: Timeouts,
    /// The outbound proxy to tunnel through, if any.
    pub proxy: Option<Proxy>,
    /// For `https://` upstreams: the TLS config and the name the certificate must carry.
    pub tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
}

/// How long each step with an upstream may take.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Resolving the host, the TCP connect over all its addresses and, through a proxy, the
    /// tunnel's opening.
    pub connect: Duration,
    pub tls_handshake: Duration,
    /// A streaming request's wait for the response head.
    pub first_byte: Duration,
    /// A non-streaming request's whole response, head and body: its head comes only once the
    /// answer is complete, so a separate head timeout would be this one again.
    pub response: Duration,
}

/// The step a timeout cut short, named by the setting that bounds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Connect,
    TlsHandshake,
    FirstByte,
    Response,
}

impl Step {
    pub fn setting(self) -> &'static str {
        match self {
            Step::Connect => "connect_timeout_ms",
            Step::TlsHandshake => "tls_handshake_timeout_ms",
            Step::FirstByte => "first_byte_timeout_ms",
            Step::Response => "response_timeout_ms",
        }
    }
}

/// A deadline for one step, which can say what was late.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    pub at: Instant,
    pub step: Step,
    pub limit: Duration,
}

impl Deadline {
    pub fn after(limit: Duration, step: Step) -> Deadline {
        Deadline {
            at: Instant::now() + limit,
            step,
            limit,
        }
    }

    pub fn missed(&self) -> UpstreamError {
        UpstreamError::TimedOut(self.step, self.limit)
    }
}

/// Why an exchange with an upstream failed. Nothing has reached the client yet.
#[derive(Debug)]
pub enum UpstreamError {
    /// The host name could not be resolved.
    Resolve(io::Error),
    Connect(io::Error),
    TimedOut(Step, Duration),
    /// The TLS handshake failed (untrusted certificate, wrong host name, protocol error).
    Tls(String),
    /// The outbound proxy would not open a tunnel.
    Proxy(String),
    /// The request could not be sent (reset, broken pipe).
    Send(io::Error),
    /// The connection closed or failed before a single byte of the response; `at_once`: within
    /// [`STALE_WINDOW`] of the request's last byte, as when the upstream was closing the idle
    /// connection the request went out on.
    Closed {
        error: Option<io::Error>,
        at_once: bool,
    },
    /// The upstream answered something that is not HTTP, or stopped in the middle of its head.
    Malformed(String),
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::Resolve(e) => write!(f, "{e}"),
            UpstreamError::Connect(e) => write!(f, "could not connect: {e}"),
            UpstreamError::TimedOut(step, limit) => {
                let what = match step {
                    Step::Connect => "connect timed out",
                    Step::TlsHandshake => "TLS handshake timed out",
                    Step::FirstByte => "no response head",
                    Step::Response => "no complete response",
                };
                let ms = limit.as_millis();
                write!(f, "{what} within {ms} ms ({})", step.setting())
            }
            UpstreamError::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            UpstreamError::Proxy(e) => write!(f, "outbound proxy: {e}"),
            UpstreamError::Send(e) => write!(f, "sending the request failed: {e}"),
            UpstreamError::Closed { error: Some(e), .. } => {
                write!(f, "connection failed before a response: {e}")
            }
            UpstreamError::Closed { error: None, .. } => {
                f.write_str("connection closed before a response")
            }
            UpstreamError::Malformed(m) => f.write_str(m),
        }
    }
}

impl UpstreamError {
    /// The error the client gets: 504 for timeouts, 502 for everything else.
    pub fn to_api_error(&self, upstream: &str) -> ApiError {
        let message = format!("upstream {upstream:?}: {self}");
        match self {
            UpstreamError::TimedOut(..) => ApiError::gateway_timeout(message),
            _ => ApiError::bad_gateway(message),
        }
    }

    /// The failure a reused connection shows when the upstream closed it while it sat idle: the
    /// request could not be written, or the connection closed right after it, before one byte
    /// of an answer. A close that comes later is the upstream dropping a request it was working
    /// on, and sending it again would make it work (and bill) twice.
    pub fn is_stale(&self) -> bool {
        matches!(
            self,
            UpstreamError::Send(_) | UpstreamError::Closed { at_once: true, .. }
        )
    }
}

/// Sends a request (head, then body) and reads the response head, all before `deadline`.
/// Returns the head and the bytes read after it, which begin the body.
pub async fn exchange(
    stream: &mut UpstreamConn,
    head: &[u8],
    body: &Bytes,
    request_was_head: bool,
    deadline: Deadline,
    head_buffer: usize,
) -> Result<(ResponseHead, BytesMut), UpstreamError> {
    let send = async {
        // Small bodies ride in the head's write; large ones go as they are, without a copy.
        if body.len() <= 16 * 1024 {
            let mut all = Vec::with_capacity(head.len() + body.len());
            all.extend_from_slice(head);
            all.extend_from_slice(body);
            write_all(stream, all).await?;
        } else {
            write_all(stream, head.to_vec()).await?;
            write_all(stream, body.clone()).await?;
        }
        Ok(())
    };
    match monoio::time::timeout_at(deadline.at.into(), send).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(UpstreamError::Send(e)),
        Err(_) => return Err(deadline.missed()),
    }
    read_head(
        stream,
        Instant::now(),
        request_was_head,
        deadline,
        head_buffer,
    )
    .await
}

/// Reads the response head to a request whose last byte went out at `sent`, skipping interim
/// responses. Returns the head and the bytes read after it, which begin the body.
pub async fn read_head(
    stream: &mut UpstreamConn,
    sent: Instant,
    request_was_head: bool,
    deadline: Deadline,
    head_buffer: usize,
) -> Result<(ResponseHead, BytesMut), UpstreamError> {
    let closed = |error| UpstreamError::Closed {
        error,
        at_once: sent.elapsed() < STALE_WINDOW,
    };
    let mut buf = BytesMut::with_capacity(head_buffer);
    let mut answered = false;
    loop {
        match response::parse(&buf).map_err(UpstreamError::Malformed)? {
            Some((len, layout)) => {
                let raw = buf.split_to(len).freeze();
                let head = ResponseHead::new(raw, layout, request_was_head)
                    .map_err(UpstreamError::Malformed)?;
                if (100..200).contains(&head.status) {
                    continue; // interim responses (100 Continue, 103 Early Hints) are not relayed
                }
                return Ok((head, buf));
            }
            None if buf.len() >= head_buffer * 4 => {
                return Err(UpstreamError::Malformed("response head too large".into()))
            }
            None => {}
        }
        match read_more(stream, &mut buf, deadline.at).await {
            ReadOutcome::Read(0) if !answered => return Err(closed(None)),
            ReadOutcome::Failed(e) if !answered => return Err(closed(Some(e))),
            ReadOutcome::Read(0) | ReadOutcome::Failed(_) => {
                return Err(UpstreamError::Malformed(
                    "connection closed in the middle of the response head".into(),
                ))
            }
            ReadOutcome::Read(_) => answered = true,
            ReadOutcome::TimedOut => return Err(deadline.missed()),
        }
    }
}
