//! Reaching an upstream through an outbound HTTP proxy (`proxy_url`), for networks whose only
//! way out is a proxy.
//!
//! The gateway opens a TCP connection to the proxy and asks it with `CONNECT host:port` for a
//! tunnel to the upstream; TLS (for `https://` upstreams) and HTTP then run inside the tunnel
//! exactly as on a direct connection, so the proxy sees neither requests nor API keys. The rules:
//!
//! - `proxy_url` is `http://host[:port]` only (port 80 by default). TLS to the proxy itself is
//!   not supported, and neither are a path, query or fragment, which a proxy has no use for.
//! - Credentials never go in the URL: they come from `proxy_auth`/`proxy_auth_env` as
//!   `user:password`, are sent as `Proxy-Authorization: Basic ...`, and no message here repeats
//!   them, so they can be redacted and kept out of logs.
//! - Any 2xx answer opens the tunnel; anything else is a refusal named by its status. A proxy
//!   must not send anything after its answer before we speak (neither a TLS nor an HTTP server
//!   speaks first), so bytes after the head are an error rather than something to pass on.
//! - The caller's deadline covers the whole exchange, so a proxy that accepts and then stalls
//!   counts against the connect timeout like any other slow connect.
//!
//! Proxies often allow CONNECT only to port 443 (Squid's default), so a plain `http://`
//! upstream behind one may be refused with 403; the error says so by its status.

use std::fmt;
use std::io;
use std::time::Instant;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::BytesMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent};

use super::url::parse_authority;
use crate::server::io::{read_more, write_all, ReadOutcome};

/// An upstream's outbound proxy: where it is, and the `Proxy-Authorization` value to send.
/// `Debug` never shows the credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    pub url: ProxyUrl,
    pub authorization: Option<String>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = self.authorization.as_ref().map(|_| "<redacted>");
        f.debug_struct("Proxy")
            .field("url", &self.url)
            .field("authorization", &auth)
            .finish()
    }
}

/// The largest proxy response head accepted; real ones are a status line and a few headers.
const MAX_HEAD: usize = 8 * 1024;
/// Header lines accepted in a proxy's answer.
const MAX_HEADERS: usize = 64;

/// A parsed `proxy_url`: where to open the TCP connection that carries the tunnel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyUrl {
    /// Host name or IP literal, without brackets.
    pub host: String,
    pub port: u16,
}

impl ProxyUrl {
    pub fn parse(url: &str) -> Result<ProxyUrl, String> {
        // Checked first and answered without echoing the URL: it would carry the password.
        if url.contains('@') {
            return Err(
                "proxy_url must not contain credentials; put them in proxy_auth or \
                        proxy_auth_env, so they can be redacted and kept out of logs"
                    .into(),
            );
        }
        let Some(rest) = url.strip_prefix("http://") else {
            if url.starts_with("https://") {
                return Err(format!(
                    "{url:?}: TLS to the proxy is not supported; use http:// (TLS to an \
                     https:// upstream still runs end to end inside the tunnel)"
                ));
            }
            return Err(format!("{url:?}: must start with http://"));
        };
        if rest.contains(['?', '#']) || rest.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(format!(
                "{url:?}: only host and port are allowed (no query, fragment or spaces)"
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if !path.is_empty() && path != "/" {
            return Err(format!("{url:?}: a proxy URL has no path"));
        }
        let (host, port) = parse_authority(url, authority, 80)?;
        Ok(ProxyUrl { host, port })
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}", authority(&self.host, self.port))
    }
}

/// The `host:port` a CONNECT names, with an IPv6 host in brackets. Unlike a `Host` header, the
/// port is always there (RFC 9110 §9.3.6), default or not.
pub fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The `Proxy-Authorization` value for `user:password` (RFC 7617 Basic).
///
/// A value without a `:` is rejected rather than sent as a user name with no password: a proxy
/// would answer 407 and the operator would look for a wrong password instead of a missing one.
/// Control characters are rejected too (RFC 7617 forbids them; a stray newline from a secrets
/// file is the usual culprit). Errors never repeat the value.
pub fn basic_authorization(user_pass: &str) -> Result<String, String> {
    if !user_pass.contains(':') {
        return Err("must be user:password (no ':' found); the value is not shown".into());
    }
    if user_pass.chars().any(char::is_control) {
        return Err(
            "contains a control character (a trailing newline?); the value is not shown".into(),
        );
    }
    Ok(format!("Basic {}", STANDARD.encode(user_pass)))
}

/// Why a tunnel could not be opened. No variant carries the credentials.
#[derive(Debug)]
pub enum TunnelError {
    /// The proxy answered something other than 2xx. `credentials_sent` tells a 407 for wrong
    /// credentials from one for missing credentials.
    Refused { status: u16, credentials_sent: bool },
    /// No complete answer before the deadline.
    TimedOut,
    /// The proxy closed the connection (or it failed) before a complete answer.
    Closed(Option<io::Error>),
    /// The answer was not HTTP, too large, or followed by bytes nobody asked for.
    Malformed(String),
    /// The CONNECT request could not be written.
    Io(io::Error),
}

impl fmt::Display for TunnelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunnelError::Refused {
                status: 407,
                credentials_sent: true,
            } => f.write_str("the proxy refused the gateway's proxy credentials (407)"),
            TunnelError::Refused {
                status: 407,
                credentials_sent: false,
            } => f.write_str("the proxy requires authentication (407); set proxy_auth"),
            TunnelError::Refused { status, .. } => {
                write!(f, "the proxy answered {status} to CONNECT")
            }
            TunnelError::TimedOut => f.write_str("the proxy did not answer CONNECT in time"),
            TunnelError::Closed(None) => {
                f.write_str("the proxy closed the connection before answering CONNECT")
            }
            TunnelError::Closed(Some(e)) => {
                write!(
                    f,
                    "the connection to the proxy failed before it answered CONNECT: {e}"
                )
            }
            TunnelError::Malformed(m) => write!(f, "bad answer from the proxy to CONNECT: {m}"),
            TunnelError::Io(e) => write!(f, "could not send CONNECT to the proxy: {e}"),
        }
    }
}

impl std::error::Error for TunnelError {}

/// Asks the proxy at the other end of `stream` for a tunnel to `authority` (`host:port`, see
/// [`authority`]) and reads its answer. On `Ok` the stream is the tunnel: nothing of the proxy's
/// answer is left unread, and the caller goes on with TLS or HTTP as on a direct connection.
/// `authorization` is the whole `Proxy-Authorization` value (see [`basic_authorization`]).
pub async fn open_tunnel<S: AsyncReadRent + AsyncWriteRent>(
    stream: &mut S,
    authority: &str,
    authorization: Option<&str>,
    deadline: Instant,
) -> Result<(), TunnelError> {
    // Both values end up in the request head; a CR or LF would let one forge header lines.
    let unsafe_byte = |s: &str| s.bytes().any(|b| b.is_ascii_control());
    if unsafe_byte(authority) || authorization.is_some_and(unsafe_byte) {
        return Err(TunnelError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the CONNECT authority or Proxy-Authorization contains a control character",
        )));
    }
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(value) = authorization {
        request.push_str("Proxy-Authorization: ");
        request.push_str(value);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    match monoio::time::timeout_at(deadline.into(), write_all(stream, request.into_bytes())).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(TunnelError::Io(e)),
        Err(_) => return Err(TunnelError::TimedOut),
    }

    let mut buf = BytesMut::with_capacity(1024);
    loop {
        match read_more(stream, &mut buf, deadline).await {
            ReadOutcome::Read(0) => return Err(TunnelError::Closed(None)),
            ReadOutcome::Read(_) => {}
            ReadOutcome::Failed(e) => return Err(TunnelError::Closed(Some(e))),
            ReadOutcome::TimedOut => return Err(TunnelError::TimedOut),
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut head = httparse::Response::new(&mut headers);
        match head.parse(&buf) {
            Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => {
                let status = head.code.unwrap_or(0);
                if !(200..300).contains(&status) {
                    // Whatever follows is the refusal's body; the connection is dropped unread.
                    return Err(TunnelError::Refused {
                        status,
                        credentials_sent: authorization.is_some(),
                    });
                }
                if buf.len() > len {
                    return Err(TunnelError::Malformed(format!(
                        "{} bytes followed its {status} before the gateway spoke",
                        buf.len() - len
                    )));
                }
                return Ok(());
            }
            Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => {}
            Ok(_) => return Err(TunnelError::Malformed("head larger than 8 KiB".into())),
            Err(e) => return Err(TunnelError::Malformed(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::block_on as run;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener};
    use std::thread::{self, JoinHandle};
    use std::time::Duration;

    use monoio::io::AsyncWriteRentExt;
    use monoio::net::TcpStream;

    const AUTH: &str = "Basic dXNlcjpzM2NyZXQ=";

    /// A one-connection fake proxy: reads the request head, hands the socket to `then`, and
    /// returns the head it read.
    fn fake_proxy(
        then: impl FnOnce(std::net::TcpStream) + Send + 'static,
    ) -> (SocketAddr, JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
                head.push(byte[0]);
            }
            then(stream);
            String::from_utf8(head).unwrap()
        });
        (addr, handle)
    }

    /// A fake proxy that answers `answer` and then waits for the gateway to hang up.
    fn answering(answer: &'static [u8]) -> (SocketAddr, JoinHandle<String>) {
        fake_proxy(move |mut s| {
            let _ = s.write_all(answer);
            let _ = s.read(&mut [0u8; 1]);
        })
    }

    /// Opens a tunnel to api.example.com:443 through the proxy at `addr`.
    fn tunnel(addr: SocketAddr, auth: Option<&str>, within: Duration) -> Result<(), TunnelError> {
        run(async move {
            let mut stream = TcpStream::connect_addr(addr).await.unwrap();
            let deadline = Instant::now() + within;
            open_tunnel(&mut stream, "api.example.com:443", auth, deadline).await
        })
    }

    const PATIENCE: Duration = Duration::from_secs(5);

    #[test]
    fn a_200_opens_the_tunnel_and_bytes_flow_through() {
        let (addr, proxy) = fake_proxy(|mut s| {
            s.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                .unwrap();
            let mut ping = [0u8; 4];
            s.read_exact(&mut ping).unwrap();
            s.write_all(&ping).unwrap();
        });
        let echoed = run(async move {
            let mut stream = TcpStream::connect_addr(addr).await.unwrap();
            let deadline = Instant::now() + PATIENCE;
            open_tunnel(&mut stream, "api.example.com:443", None, deadline)
                .await
                .unwrap();
            let (r, _) = stream.write_all(b"ping".to_vec()).await;
            r.unwrap();
            let mut buf = BytesMut::new();
            while buf.len() < 4 {
                match read_more(&mut stream, &mut buf, deadline).await {
                    ReadOutcome::Read(n) if n > 0 => {}
                    _ => panic!("tunnel closed before the echo"),
                }
            }
            buf
        });
        assert_eq!(&echoed[..], b"ping");
        assert_eq!(
            proxy.join().unwrap(),
            "CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n"
        );
    }

    #[test]
    fn credentials_go_in_proxy_authorization() {
        let (addr, proxy) = answering(b"HTTP/1.0 200 OK\r\nVia: test\r\n\r\n");
        tunnel(addr, Some(AUTH), PATIENCE).unwrap();
        assert_eq!(
            proxy.join().unwrap(),
            "CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\
             Proxy-Authorization: Basic dXNlcjpzM2NyZXQ=\r\n\r\n"
        );
    }

    #[test]
    fn a_407_says_whether_credentials_were_sent() {
        const ANSWER: &[u8] = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
              Proxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 5\r\n\r\nnope!";
        let (addr, _) = answering(ANSWER);
        let e = tunnel(addr, None, PATIENCE).unwrap_err();
        assert!(matches!(
            e,
            TunnelError::Refused {
                status: 407,
                credentials_sent: false
            }
        ));
        assert_eq!(
            e.to_string(),
            "the proxy requires authentication (407); set proxy_auth"
        );

        let (addr, _) = answering(ANSWER);
        let e = tunnel(addr, Some(AUTH), PATIENCE).unwrap_err();
        assert!(matches!(
            e,
            TunnelError::Refused {
                status: 407,
                credentials_sent: true
            }
        ));
        let message = e.to_string();
        assert_eq!(
            message,
            "the proxy refused the gateway's proxy credentials (407)"
        );
        assert!(!format!("{message} {e:?}").contains("dXNlcjpzM2NyZXQ"));
    }

    #[test]
    fn other_statuses_are_refusals() {
        let (addr, _) = answering(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad");
        let e = tunnel(addr, None, PATIENCE).unwrap_err();
        assert!(matches!(e, TunnelError::Refused { status: 502, .. }));
        assert_eq!(e.to_string(), "the proxy answered 502 to CONNECT");
    }

    #[test]
    fn garbage_is_malformed() {
        let (addr, _) = answering(b"SSH-2.0-OpenSSH_9.6\r\n\r\n");
        let e = tunnel(addr, None, PATIENCE).unwrap_err();
        assert!(matches!(e, TunnelError::Malformed(_)), "{e}");
    }

    #[test]
    fn a_head_over_8_kib_is_malformed() {
        let (addr, _) = fake_proxy(|mut s| {
            // A few long lines, so the size limit trips rather than the header count.
            let line = format!("X-Padding: {}\r\n", "a".repeat(1000));
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n");
            for _ in 0..10 {
                let _ = s.write_all(line.as_bytes());
            }
            let _ = s.read(&mut [0u8; 1]);
        });
        let e = tunnel(addr, None, PATIENCE).unwrap_err();
        assert!(
            matches!(&e, TunnelError::Malformed(m) if m.contains("8 KiB")),
            "{e}"
        );
    }

    #[test]
    fn bytes_after_the_head_are_an_error() {
        let (addr, _) = answering(b"HTTP/1.1 200 OK\r\n\r\nSSH-2.0-x\r\n");
        let e = tunnel(addr, None, PATIENCE).unwrap_err();
        assert!(matches!(e, TunnelError::Malformed(_)), "{e}");
        assert!(e.to_string().contains("11 bytes followed its 200"), "{e}");
    }

    #[test]
    fn a_close_before_the_answer_is_closed() {
        let (addr, _) = fake_proxy(drop);
        let e = tunnel(addr, None, PATIENCE).unwrap_err();
        assert!(matches!(e, TunnelError::Closed(_)), "{e}");
    }

    #[test]
    fn no_answer_times_out() {
        let (addr, proxy) = fake_proxy(|mut s| {
            let _ = s.read(&mut [0u8; 1]); // until the gateway gives up and hangs up
        });
        let start = Instant::now();
        let e = tunnel(addr, None, Duration::from_millis(150)).unwrap_err();
        assert!(matches!(e, TunnelError::TimedOut), "{e}");
        assert!(start.elapsed() < Duration::from_secs(3));
        proxy.join().unwrap();
    }

    #[test]
    fn control_characters_never_reach_the_proxy() {
        let (addr, proxy) = fake_proxy(drop);
        let e = run(async move {
            let mut stream = TcpStream::connect_addr(addr).await.unwrap();
            let deadline = Instant::now() + PATIENCE;
            let forged = Some("Basic x\r\nX-Forged: 1");
            open_tunnel(&mut stream, "h:443", forged, deadline).await
        })
        .unwrap_err();
        assert!(matches!(e, TunnelError::Io(_)), "{e}");
        assert!(!e.to_string().contains("Forged"));
        assert_eq!(proxy.join().unwrap(), "");
    }

    #[test]
    fn parses_proxy_urls() {
        let p = |u: &str| ProxyUrl::parse(u).map(|p| (p.host, p.port));
        assert_eq!(
            p("http://proxy.internal:3128"),
            Ok(("proxy.internal".into(), 3128))
        );
        assert_eq!(
            p("http://proxy.internal"),
            Ok(("proxy.internal".into(), 80))
        );
        assert_eq!(p("http://10.0.0.1:8080/"), Ok(("10.0.0.1".into(), 8080)));
        assert_eq!(p("http://[::1]:3128"), Ok(("::1".into(), 3128)));
        assert_eq!(p("http://[::1]"), Ok(("::1".into(), 80)));
        let u = ProxyUrl::parse("http://[::1]:3128").unwrap();
        assert_eq!(u.to_string(), "http://[::1]:3128");
    }

    #[test]
    fn rejects_proxy_urls_it_cannot_honour() {
        let e = ProxyUrl::parse("https://proxy:3128").unwrap_err();
        assert!(e.contains("TLS to the proxy is not supported"), "{e}");
        let e = ProxyUrl::parse("http://user:hunter2@proxy:3128").unwrap_err();
        assert!(e.contains("proxy_auth") && !e.contains("hunter2"), "{e}");
        let e = ProxyUrl::parse("https://user:hunter2@proxy").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        for bad in [
            "proxy:3128",
            "socks5://proxy:1080",
            "http://",
            "http://:3128",
            "http://proxy:0",
            "http://proxy:99999",
            "http://proxy/path",
            "http://proxy//",
            "http://proxy?x=1",
            "http://proxy#f",
            "http://[::1",
            "http://pro xy",
        ] {
            assert!(ProxyUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn authority_always_has_a_port_and_brackets_ipv6() {
        assert_eq!(authority("api.anthropic.com", 443), "api.anthropic.com:443");
        assert_eq!(authority("10.0.0.1", 80), "10.0.0.1:80");
        assert_eq!(authority("::1", 8443), "[::1]:8443");
    }

    #[test]
    fn basic_authorization_encodes_user_colon_password() {
        assert_eq!(
            basic_authorization("Aladdin:open sesame").unwrap(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(basic_authorization("user:").unwrap(), "Basic dXNlcjo=");
        for bad in ["hunter2", "user:hunter2\n"] {
            let e = basic_authorization(bad).unwrap_err();
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
