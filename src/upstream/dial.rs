//! Opening a new upstream connection: TCP to one of the upstream's addresses, then TLS for
//! `https://` upstreams.
//!
//! Addresses are tried in turn, and the connect timeout is shared among those not yet tried, so
//! one address that swallows packets cannot use up the whole budget. The TLS handshake has a
//! budget of its own: a slow handshake and an unreachable host are different troubles.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use monoio::net::TcpStream;

use super::client::{Deadline, Step, Target, UpstreamError};
use super::conn::{Interruptible, UpstreamConn};

/// Opens a connection to `target` through one of `addrs`.
pub async fn dial(target: &Target, addrs: &[SocketAddr]) -> Result<UpstreamConn, UpstreamError> {
    let tcp = connect_any(addrs, target.timeouts.connect).await?;
    let Some((config, name)) = &target.tls else {
        return Ok(UpstreamConn::Plain(tcp));
    };
    let deadline = Deadline::after(target.timeouts.tls_handshake, Step::TlsHandshake);
    let connector = monoio_rustls::TlsConnector::from(config.clone());
    let fd = tcp.as_raw_fd();
    let (io, state) = Interruptible::new(tcp);
    match monoio::time::timeout_at(deadline.at.into(), connector.connect(name.clone(), io)).await {
        Ok(Ok(tls)) => Ok(UpstreamConn::tls(tls, state, fd)),
        // monoio-rustls prints only "io error"; the io::Error it converts to carries the reason.
        Ok(Err(e)) => Err(UpstreamError::Tls(io::Error::from(e).to_string())),
        Err(_) => Err(deadline.missed()),
    }
}

/// Connects to the first address that accepts, each getting an equal share of what remains of
/// `limit`; the last error when none does.
pub async fn connect_any(
    addrs: &[SocketAddr],
    limit: Duration,
) -> Result<TcpStream, UpstreamError> {
    let end = Instant::now() + limit;
    let mut last = None;
    for (i, &addr) in addrs.iter().enumerate() {
        let left = end.saturating_duration_since(Instant::now());
        let share = left / (addrs.len() - i) as u32;
        match monoio::time::timeout(share, TcpStream::connect_addr(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => last = Some(UpstreamError::Connect(e)),
            Err(_) => last = Some(UpstreamError::TimedOut(Step::Connect, limit)),
        }
    }
    Err(last.unwrap_or_else(|| {
        UpstreamError::Connect(io::Error::new(io::ErrorKind::NotFound, "no address"))
    }))
}
