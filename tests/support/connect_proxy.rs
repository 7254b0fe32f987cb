//! A small HTTP CONNECT proxy for tests of upstreams reached through `proxy_url`.
//!
//! Blocking std sockets and a thread per direction, sharing no code with the gateway: it records
//! what the gateway asked for (request line and `Proxy-Authorization`) so tests can check it, and
//! relays bytes untouched, so TLS to an upstream behind it works end to end.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::read_request;

pub struct ConnectProxy {
    pub addr: SocketAddr,
    /// Request lines in arrival order, e.g. "CONNECT 127.0.0.1:4443 HTTP/1.1".
    pub connects: Arc<Mutex<Vec<String>>>,
    /// The `Proxy-Authorization` value of each request, in the same order.
    pub authorizations: Arc<Mutex<Vec<Option<String>>>>,
}

impl ConnectProxy {
    /// Starts the proxy on a free port. With `required_auth` (the whole header value, e.g.
    /// "Basic dXNlcjpwdw=="), a request without exactly that value gets 407 and is closed.
    pub fn start(required_auth: Option<&str>) -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connects = Arc::new(Mutex::new(Vec::new()));
        let authorizations = Arc::new(Mutex::new(Vec::new()));
        let required = required_auth.map(str::to_string);
        let (c, a) = (connects.clone(), authorizations.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (c, a, required) = (c.clone(), a.clone(), required.clone());
                thread::spawn(move || serve(stream, &c, &a, required.as_deref()));
            }
        });
        ConnectProxy {
            addr,
            connects,
            authorizations,
        }
    }

    pub fn connects(&self) -> Vec<String> {
        self.connects.lock().unwrap().clone()
    }

    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.authorizations.lock().unwrap().clone()
    }
}

fn serve(
    mut client: TcpStream,
    connects: &Mutex<Vec<String>>,
    authorizations: &Mutex<Vec<Option<String>>>,
    required: Option<&str>,
) {
    let mut early = Vec::new();
    let Some(request) = read_request(&mut client, &mut early) else {
        return;
    };
    let line = request.request_line().to_string();
    let auth = request.headers("proxy-authorization").into_iter().next();
    connects.lock().unwrap().push(line.clone());
    authorizations.lock().unwrap().push(auth.clone());

    if required.is_some_and(|r| auth.as_deref() != Some(r)) {
        let _ = client.write_all(
            b"HTTP/1.1 407 Proxy Authentication Required\r\n\
              Proxy-Authenticate: Basic realm=\"test\"\r\n\
              Content-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    let mut parts = line.split(' ');
    let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
        let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    let Some(mut upstream) = dial(target) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    // A client should wait for the 200, but whatever it sent early belongs to the tunnel.
    if client
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .and_then(|_| upstream.write_all(&early))
        .is_err()
    {
        return;
    }
    let (Ok(client_in), Ok(upstream_out)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let up = thread::spawn(move || relay(client_in, upstream_out));
    relay(upstream, client);
    let _ = up.join();
}

fn dial(target: &str) -> Option<TcpStream> {
    let addrs = target.to_socket_addrs().ok()?;
    addrs
        .into_iter()
        .find_map(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok())
}

/// Copies until `from` ends, then passes the end on (a half close, so the other direction
/// keeps flowing); on a failure both sides are closed.
fn relay(mut from: TcpStream, mut to: TcpStream) {
    match io::copy(&mut from, &mut to) {
        Ok(_) => {
            let _ = to.shutdown(Shutdown::Write);
        }
        Err(_) => {
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        }
    }
}
