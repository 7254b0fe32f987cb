//! Opening a new upstream connection: TCP to one of the upstream's addresses (or a tunnel
//! through its outbound proxy), then TLS for `https://` upstreams.
//!
//! The connect timeout covers resolving the host, the TCP connect and, through a proxy, its
//! answer to CONNECT. Addresses are tried in turn, each getting an equal share of what is left of
//! the budget, so one address that swallows packets cannot use it all up. The TLS handshake has a
//! budget of its own: a slow handshake and an unreachable host are different troubles.
//!
//! Behind a proxy only the proxy's name is resolved here; the upstream's is the proxy's to
//! resolve, as the network may allow nothing else.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::net::TcpStream;

use super::client::{Deadline, Step, Target, UpstreamError};
use super::conn::{Interruptible, UpstreamConn};
use super::dns::Resolver;
use super::proxy::{authority, open_tunnel, TunnelError};

/// Opens a connection to `target`.
pub async fn dial(target: &Target, resolver: &Resolver) -> Result<UpstreamConn, UpstreamError> {
    let limit = target.timeouts.connect;
    let end = Instant::now() + limit;
    let url = &target.url;
    let tcp = match &target.proxy {
        None => {
            let addrs = resolve(resolver, &url.host, url.port, end, limit).await?;
            connect_any(&addrs, end, limit).await?
        }
        Some(proxy) => {
            let addrs = resolve(resolver, &proxy.url.host, proxy.url.port, end, limit).await?;
            let mut tcp = connect_any(&addrs, end, limit).await?;
            let authority = authority(&url.host, url.port);
            let auth = proxy.authorization.as_deref();
            open_tunnel(&mut tcp, &authority, auth, end)
                .await
                .map_err(|e| match e {
                    TunnelError::TimedOut => UpstreamError::TimedOut(Step::Connect, limit),
                    e => UpstreamError::Proxy(format!("{}: {e}", proxy.url)),
                })?;
            tcp
        }
    };
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

/// The host's addresses, within the connect budget (a lookup that outlasts it is a connect
/// timeout, as the client cannot tell the two apart).
async fn resolve(
    resolver: &Resolver,
    host: &str,
    port: u16,
    end: Instant,
    limit: Duration,
) -> Result<Rc<[SocketAddr]>, UpstreamError> {
    match monoio::time::timeout_at(end.into(), resolver.resolve(host, port)).await {
        Ok(Ok(addrs)) => Ok(addrs),
        Ok(Err(e)) => Err(UpstreamError::Resolve(e)),
        Err(_) => Err(UpstreamError::TimedOut(Step::Connect, limit)),
    }
}

/// Connects to the first address that accepts before `end`, each getting an equal share of what
/// remains; the last error when none does. `limit` is the whole budget, for the error.
async fn connect_any(
    addrs: &[SocketAddr],
    end: Instant,
    limit: Duration,
) -> Result<TcpStream, UpstreamError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::block_on as run;

    /// An address nothing listens on.
    fn closed_port() -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    }

    #[test]
    fn every_address_is_tried_in_turn() {
        let live = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addrs = [closed_port(), closed_port(), live.local_addr().unwrap()];
        let limit = Duration::from_secs(5);
        let stream = run(connect_any(&addrs, Instant::now() + limit, limit)).unwrap();
        assert_eq!(stream.peer_addr().unwrap(), addrs[2]);
    }

    #[test]
    fn when_no_address_answers_the_last_error_is_reported() {
        let addrs = [closed_port(), closed_port()];
        let limit = Duration::from_secs(5);
        match run(connect_any(&addrs, Instant::now() + limit, limit)) {
            Err(UpstreamError::Connect(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused)
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        let none = run(connect_any(&[], Instant::now() + limit, limit));
        assert!(matches!(none, Err(UpstreamError::Connect(_))));
    }
}
