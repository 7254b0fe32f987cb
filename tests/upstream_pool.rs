//! The upstream keep-alive pool over real sockets: reuse counted by the connections the upstream
//! accepts, upstreams that close idle connections, a pooled connection that dies as the request
//! goes out, responses cut short, idle timeouts, prewarming and the idle limit.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::*;

const BODY: &str = r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
const STREAM_BODY: &str =
    r#"{"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
const OK: &str = r#"{"id":"msg_ok","type":"message"}"#;

/// One worker, so every request meets the same core's pool.
fn one_worker(upstream: SocketAddr, pool: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n[routing]\nmax_attempts = 1\n\
         [pool]\n{pool}\n\
         [[upstreams]]\nname = \"up\"\nkind = \"anthropic\"\nbase_url = \"http://{upstream}\"\n\
         [[upstreams.credentials]]\nname = \"k\"\napi_key = \"sk-upstream\"\n"
    )
}

fn ok() -> Action {
    Action::Send(vec![json_response(200, OK, "")], Duration::ZERO)
}

fn connections(up: &Upstream) -> usize {
    *up.connections.lock().unwrap()
}

/// Waits (up to 5 s) for `f` to hold.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sequential_requests_share_one_upstream_connection() {
    let up = Upstream::start(|r| {
        if String::from_utf8_lossy(&r.body).contains("\"stream\":true") {
            Action::Send(sse_pieces(&sse_events(3)), Duration::ZERO)
        } else {
            ok()
        }
    });
    let gw = gateway(&one_worker(up.addr, ""));
    for i in 0..20 {
        let body = if i % 2 == 0 { BODY } else { STREAM_BODY };
        let resp = request(gw.local_addr(), &messages_request(body, ""));
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert!(resp.complete);
    }
    assert_eq!(connections(&up), 1, "20 requests, one upstream connection");
    let stats = gw.upstream_connections();
    assert_eq!((stats.opened, stats.reused), (1, 19), "{stats:?}");
}

#[test]
fn pooling_off_opens_a_connection_per_request() {
    let up = Upstream::start(|_| ok());
    let gw = gateway(&one_worker(up.addr, "max_idle_per_origin = 0"));
    for _ in 0..5 {
        assert_eq!(
            request(gw.local_addr(), &messages_request(BODY, "")).status,
            200
        );
    }
    assert_eq!(connections(&up), 5);
    let stats = gw.upstream_connections();
    assert_eq!((stats.opened, stats.reused), (5, 0), "{stats:?}");
}

#[test]
fn an_upstream_that_closes_idle_connections_costs_the_client_nothing() {
    // Answers with keep-alive framing, then closes anyway, as servers do when their idle
    // timeout is shorter than the gateway's.
    let up =
        Upstream::start(|_| Action::SendAndClose(vec![json_response(200, OK, "")], Duration::ZERO));
    let gw = gateway(&one_worker(up.addr, ""));
    for _ in 0..5 {
        let resp = request(gw.local_addr(), &messages_request(BODY, ""));
        assert_eq!(resp.status, 200, "{}", resp.text());
        // Let the close arrive before the next request looks at the pool.
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(connections(&up), 5);
    let stats = gw.upstream_connections();
    assert_eq!(
        stats.reused, 0,
        "a closed connection is never handed out: {stats:?}"
    );
    assert!(stats.dropped_idle >= 4, "{stats:?}");
}

/// An upstream whose first connection answers one request, then reads the next and closes
/// without a word (the race of a server closing an idle connection as a request arrives);
/// every later connection answers everything.
struct ClosesOnSecondRequest {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
}

impl ClosesOnSecondRequest {
    fn start() -> ClosesOnSecondRequest {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let (reqs, conns) = (requests.clone(), connections.clone());
        thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { return };
                conns.fetch_add(1, Ordering::SeqCst);
                let reqs = reqs.clone();
                thread::spawn(move || {
                    let mut buf = Vec::new();
                    for i in 0.. {
                        if read_request(&mut stream, &mut buf).is_none() {
                            return;
                        }
                        reqs.fetch_add(1, Ordering::SeqCst);
                        if n == 0 && i == 1 {
                            return; // dropped: closed with the request unanswered
                        }
                        let answer = json_response(200, OK, "");
                        if stream.write_all(&answer).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        ClosesOnSecondRequest {
            addr,
            requests,
            connections,
        }
    }
}

#[test]
fn a_pooled_connection_that_dies_under_a_request_is_retried_once_on_a_new_one() {
    let up = ClosesOnSecondRequest::start();
    let gw = gateway(&one_worker(up.addr, ""));
    for _ in 0..3 {
        let resp = request(gw.local_addr(), &messages_request(BODY, ""));
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    // Request 2 went out twice: on the dying connection, then on a new one.
    assert_eq!(up.requests.load(Ordering::SeqCst), 4);
    assert_eq!(up.connections.load(Ordering::SeqCst), 2);
    let stats = gw.upstream_connections();
    assert_eq!(stats.stale_retries, 1, "{stats:?}");
    assert_eq!((stats.opened, stats.reused), (2, 2), "{stats:?}");
}

#[test]
fn a_fresh_connection_that_fails_is_not_retried() {
    // Every connection reads the request and closes: only a reused connection may be retried.
    let up = Upstream::start(|_| Action::SendAndClose(Vec::new(), Duration::ZERO));
    let gw = gateway(&one_worker(up.addr, ""));
    let resp = request(gw.local_addr(), &messages_request(BODY, ""));
    assert_eq!(resp.status, 502, "{}", resp.text());
    assert!(resp.text().contains("connection closed before a response"));
    assert_eq!(up.requests().len(), 1);
    assert_eq!(gw.upstream_connections().stale_retries, 0);
}

#[test]
fn a_response_cut_mid_body_poisons_nothing() {
    let count = AtomicUsize::new(0);
    let up = Upstream::start(move |r| {
        let first = count.fetch_add(1, Ordering::SeqCst) == 0;
        let stream = String::from_utf8_lossy(&r.body).contains("\"stream\":true");
        match (first, stream) {
            // Promises 100 bytes, sends 10, closes.
            (true, _) => Action::SendAndClose(
                vec![b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":\"msg".to_vec()],
                Duration::ZERO,
            ),
            (false, true) => Action::Send(sse_pieces(&sse_events(2)), Duration::ZERO),
            (false, false) => ok(),
        }
    });
    let gw = gateway(&one_worker(up.addr, ""));
    let cut = request(gw.local_addr(), &messages_request(BODY, ""));
    assert!(!cut.complete, "the client sees the cut: {cut:?}");
    for body in [BODY, STREAM_BODY, BODY] {
        let resp = request(gw.local_addr(), &messages_request(body, ""));
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert!(resp.complete);
    }
    assert_eq!(connections(&up), 2, "the cut connection was not reused");
}

#[test]
fn a_response_the_client_abandons_is_not_pooled() {
    let up = Upstream::start(|r| {
        if String::from_utf8_lossy(&r.body).contains("\"stream\":true") {
            Action::Send(sse_pieces(&sse_events(20)), Duration::from_millis(20))
        } else {
            ok()
        }
    });
    let gw = gateway(&one_worker(up.addr, ""));
    let mut c = Client::connect(gw.local_addr());
    c.send(&messages_request(STREAM_BODY, ""));
    let mut first = [0u8; 64];
    let _ = read_retrying(&mut c.stream, &mut first);
    drop(c);
    thread::sleep(Duration::from_millis(100));
    assert_eq!(
        request(gw.local_addr(), &messages_request(BODY, "")).status,
        200
    );
    assert_eq!(connections(&up), 2);
}

#[test]
fn idle_connections_time_out() {
    let up = Upstream::start(|_| ok());
    let gw = gateway(&one_worker(up.addr, "idle_timeout_ms = 100"));
    assert_eq!(
        request(gw.local_addr(), &messages_request(BODY, "")).status,
        200
    );
    // The sweep closes it without waiting for a request.
    eventually("the idle connection to be closed", || {
        gw.upstream_connections().dropped_idle == 1
    });
    assert_eq!(
        request(gw.local_addr(), &messages_request(BODY, "")).status,
        200
    );
    assert_eq!(connections(&up), 2);
}

#[test]
fn prewarmed_connections_serve_the_first_requests() {
    let up = Upstream::start(|_| ok());
    let gw = gateway(&one_worker(up.addr, "prewarm = 2"));
    eventually("two prewarmed connections", || connections(&up) == 2);
    for _ in 0..3 {
        assert_eq!(
            request(gw.local_addr(), &messages_request(BODY, "")).status,
            200
        );
    }
    assert_eq!(connections(&up), 2, "no connection opened for a request");
    let stats = gw.upstream_connections();
    assert_eq!((stats.opened, stats.reused), (0, 3), "{stats:?}");
}

#[test]
fn the_pool_keeps_at_most_max_idle_per_origin() {
    // Four requests in flight at once need four connections; only two stay idle after.
    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().unwrap();
    let slow = Upstream::start({
        let gate = gate.clone();
        move |_| {
            drop(gate.lock().unwrap());
            Action::Send(vec![json_response(200, OK, "")], Duration::ZERO)
        }
    });
    let gw = gateway(&one_worker(slow.addr, "max_idle_per_origin = 2"));
    let addr = gw.local_addr();
    let clients: Vec<_> = (0..4)
        .map(|_| thread::spawn(move || request(addr, &messages_request(BODY, "")).status))
        .collect();
    eventually("four requests upstream", || slow.requests().len() == 4);
    drop(held);
    for c in clients {
        assert_eq!(c.join().unwrap(), 200);
    }
    // A connection goes back to the pool just after its response's last write.
    eventually("two of four returned connections dropped", || {
        gw.upstream_connections().dropped_idle == 2
    });
    assert_eq!(gw.upstream_connections().opened, 4);
    for _ in 0..4 {
        assert_eq!(request(addr, &messages_request(BODY, "")).status, 200);
    }
    assert_eq!(
        connections(&slow),
        4,
        "sequential requests reuse the two kept"
    );
}

#[test]
fn bytes_after_a_bodiless_answer_spoil_its_connection() {
    let count = AtomicUsize::new(0);
    let up = Upstream::start(move |_| {
        if count.fetch_add(1, Ordering::SeqCst) == 0 {
            // A 204 with bytes after it: they belong to no response.
            let spoiled = b"HTTP/1.1 204 No Content\r\n\r\nstray bytes".to_vec();
            Action::Send(vec![spoiled], Duration::ZERO)
        } else {
            ok()
        }
    });
    let gw = gateway(&one_worker(up.addr, ""));
    assert_eq!(
        request(gw.local_addr(), &messages_request(BODY, "")).status,
        204
    );
    let resp = request(gw.local_addr(), &messages_request(BODY, ""));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(connections(&up), 2);
}

#[test]
fn a_pooled_connection_dropped_while_the_upstream_works_is_not_retried() {
    // The second request on the first connection is read, worked on for 1.5 s, then dropped:
    // that is not an idle connection closing, and sending it again would do the work twice.
    let count = AtomicUsize::new(0);
    let up = Upstream::start(move |_| {
        if count.fetch_add(1, Ordering::SeqCst) == 1 {
            thread::sleep(Duration::from_millis(1_500));
            Action::SendAndClose(Vec::new(), Duration::ZERO)
        } else {
            ok()
        }
    });
    let gw = gateway(&one_worker(up.addr, ""));
    assert_eq!(
        request(gw.local_addr(), &messages_request(BODY, "")).status,
        200
    );
    let resp = request(gw.local_addr(), &messages_request(BODY, ""));
    assert_eq!(resp.status, 502, "{}", resp.text());
    assert_eq!(up.requests().len(), 2, "sent once");
    assert_eq!(gw.upstream_connections().stale_retries, 0);
}
