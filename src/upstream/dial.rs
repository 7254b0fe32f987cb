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
use std::time::Instant;

use monoio::net::TcpStream;

use super::client::{Deadline, Step, Target, UpstreamError};
use super::conn::{Interruptible, UpstreamConn};
use super::dns::Resolver;
use super::proxy::{authority, open_tunnel, TunnelError};

/// Opens a connection to `target`.
pub async fn dial(target: &Target, resolver: &Resolver) -> Result<UpstreamConn, UpstreamError> {
    let connect = Deadline::after(target.timeouts.connect, Step::Connect);
    let url = &target.url;
    let tcp = match &target.proxy {
        None => {
            let addrs = resolve(resolver, &url.host, url.port, &connect).await?;
            connect_any(&addrs, &connect).await?
        }
        Some(proxy) => {
            let addrs = resolve(resolver, &proxy.url.host, proxy.url.port, &connect).await?;
            let mut tcp = connect_any(&addrs, &connect).await?;
            let authority = authority(&url.host, url.port);
            let auth = proxy.authorization.as_deref();
            open_tunnel(&mut tcp, &authority, auth, connect.at)
                .await
                .map_err(|e| match e {
                    TunnelError::TimedOut => connect.missed(),
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
    connect: &Deadline,
) -> Result<Rc<[SocketAddr]>, UpstreamError> {
    match monoio::time::timeout_at(connect.at.into(), resolver.resolve(host, port)).await {
        Ok(Ok(addrs)) => Ok(addrs),
        Ok(Err(e)) => Err(UpstreamError::Resolve(e)),
        Err(_) => Err(connect.missed()),
    }
}

/// Connects to the first address that accepts before the deadline, each getting an equal share
/// of what remains; the last error when none does.
async fn connect_any(addrs: &[SocketAddr], connect: &Deadline) -> Result<TcpStream, UpstreamError> {
    let mut last = None;
    for (i, &addr) in addrs.iter().enumerate() {
        let left = connect.at.saturating_duration_since(Instant::now());
        let share = left / (addrs.len() - i) as u32;
        match monoio::time::timeout(share, TcpStream::connect_addr(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => last = Some(UpstreamError::Connect(e)),
            Err(_) => last = Some(connect.missed()),
        }
    }
    Err(last.unwrap_or_else(|| {
        UpstreamError::Connect(io::Error::new(io::ErrorKind::NotFound, "no address"))
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
        let connect = Deadline::after(Duration::from_secs(5), Step::Connect);
        let stream = run(connect_any(&addrs, &connect)).unwrap();
        assert_eq!(stream.peer_addr().unwrap(), addrs[2]);
    }

    #[test]
    fn when_no_address_answers_the_last_error_is_reported() {
        let addrs = [closed_port(), closed_port()];
        let connect = Deadline::after(Duration::from_secs(5), Step::Connect);
        match run(connect_any(&addrs, &connect)) {
            Err(UpstreamError::Connect(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused)
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        let none = run(connect_any(&[], &connect));
        assert!(matches!(none, Err(UpstreamError::Connect(_))));
    }
}
