//! Talking to an upstream: connect, send one request, read the response head.
//!
//! Every failure is classified here (refused, timed out, reset, garbage) and named with the
//! upstream it came from, because the client needs a clear error and the credential pool needs
//! to know whether the fault was the transport's or the credential's.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use monoio::net::TcpStream;

use super::conn::{Interruptible, UpstreamConn};
use super::response::{self, ResponseHead};
use super::url::BaseUrl;
use crate::http::ApiError;
use crate::server::io::{read_more, write_all, ReadOutcome};

/// A resolved upstream endpoint.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub url: BaseUrl,
    /// Addresses to try in order.
    pub addrs: Vec<SocketAddr>,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    /// For `https://` upstreams: the TLS config and the name the certificate must carry.
    pub tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
}

/// Why an exchange with an upstream failed. Nothing has reached the client yet.
#[derive(Debug)]
pub enum UpstreamError {
    Connect(io::Error),
    ConnectTimeout,
    /// The TLS handshake failed (untrusted certificate, wrong host name, protocol error).
    Tls(String),
    /// The request could not be sent (reset, broken pipe).
    Send(io::Error),
    /// No response head within the response timeout.
    ResponseTimeout,
    /// The connection closed or failed before a complete response head.
    Closed(Option<io::Error>),
    /// The upstream answered something that is not HTTP.
    Malformed(String),
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::Connect(e) => write!(f, "could not connect: {e}"),
            UpstreamError::ConnectTimeout => f.write_str("connect timed out"),
            UpstreamError::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            UpstreamError::Send(e) => write!(f, "sending the request failed: {e}"),
            UpstreamError::ResponseTimeout => {
                f.write_str("no response within the response timeout")
            }
            UpstreamError::Closed(Some(e)) => write!(f, "connection failed before a response: {e}"),
            UpstreamError::Closed(None) => f.write_str("connection closed before a response"),
            UpstreamError::Malformed(m) => f.write_str(m),
        }
    }
}

impl UpstreamError {
    /// The error the client gets: 504 for timeouts, 502 for everything else.
    pub fn to_api_error(&self, upstream: &str) -> ApiError {
        let message = format!("upstream {upstream:?}: {self}");
        match self {
            UpstreamError::ConnectTimeout | UpstreamError::ResponseTimeout => {
                ApiError::gateway_timeout(message)
            }
            _ => ApiError::bad_gateway(message),
        }
    }
}

/// Opens a connection, trying each address in turn, with TLS for `https://` upstreams. The
/// connect timeout covers the TCP connect and the handshake.
pub async fn connect(target: &Target) -> Result<UpstreamConn, UpstreamError> {
    let deadline = Instant::now() + target.connect_timeout;
    let mut last = UpstreamError::Connect(io::Error::new(io::ErrorKind::NotFound, "no address"));
    let mut tcp = None;
    for &addr in &target.addrs {
        match monoio::time::timeout_at(deadline.into(), TcpStream::connect_addr(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                tcp = Some(stream);
                break;
            }
            Ok(Err(e)) => last = UpstreamError::Connect(e),
            Err(_) => return Err(UpstreamError::ConnectTimeout),
        }
    }
    let tcp = tcp.ok_or(last)?;
    let Some((config, name)) = &target.tls else {
        return Ok(UpstreamConn::Plain(tcp));
    };
    let connector = monoio_rustls::TlsConnector::from(config.clone());
    let (io, state) = Interruptible::new(tcp);
    match monoio::time::timeout_at(deadline.into(), connector.connect(name.clone(), io)).await {
        Ok(Ok(tls)) => Ok(UpstreamConn::tls(tls, state)),
        // monoio-rustls prints only "io error"; the io::Error it converts to carries the reason.
        Ok(Err(e)) => Err(UpstreamError::Tls(io::Error::from(e).to_string())),
        Err(_) => Err(UpstreamError::ConnectTimeout),
    }
}

/// Sends a request (head, then body) and reads the response head. Returns the head and the bytes
/// read after it, which begin the body.
pub async fn exchange(
    stream: &mut UpstreamConn,
    head: Vec<u8>,
    body: Bytes,
    request_was_head: bool,
    response_timeout: Duration,
    head_buffer: usize,
) -> Result<(ResponseHead, BytesMut), UpstreamError> {
    // Small bodies ride in the head's write; large ones go as they are, without a copy.
    if body.len() <= 16 * 1024 {
        let mut all = head;
        all.extend_from_slice(&body);
        write_all(stream, all).await.map_err(UpstreamError::Send)?;
    } else {
        write_all(stream, head).await.map_err(UpstreamError::Send)?;
        write_all(stream, body).await.map_err(UpstreamError::Send)?;
    }
    let deadline = Instant::now() + response_timeout;
    let mut buf = BytesMut::with_capacity(head_buffer);
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
        match read_more(stream, &mut buf, deadline).await {
            ReadOutcome::Read(0) => return Err(UpstreamError::Closed(None)),
            ReadOutcome::Read(_) => {}
            ReadOutcome::Failed(e) => return Err(UpstreamError::Closed(Some(e))),
            ReadOutcome::TimedOut => return Err(UpstreamError::ResponseTimeout),
        }
    }
}
