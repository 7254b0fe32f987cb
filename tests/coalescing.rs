//! The SSE relay's timing, end to end over real sockets: the first event goes out at once, no
//! event waits much longer than the flush interval, fast streams take far fewer writes than they
//! have events, keep-alive comments fall between events, and a client that leaves aborts the
//! upstream at once without leaking a descriptor.
//!
//! Timing bounds are deliberately loose (this machine is shared); the figures themselves are
//! printed, and `cargo test --release --test coalescing -- --nocapture` shows them.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use support::*;

const STREAM_BODY: &str = r#"{"model":"claude-haiku-4-5","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

/// "At once", for a machine shared with other work.
const AT_ONCE: Duration = Duration::from_millis(100);
/// The default 120 ms flush interval, with room for a busy scheduler.
const WITHIN_INTERVAL: Duration = Duration::from_millis(120 + 250);

/// What one timed stream looked like from both ends.
struct Figures {
    events: usize,
    /// Chunks the client received: one per gateway write.
    writes: usize,
    /// For each event, how long after the upstream wrote it the client had all of it.
    delays: Vec<Duration>,
}

impl Figures {
    fn max_delay(&self) -> Duration {
        self.delays.iter().copied().max().unwrap()
    }

    /// At most one write per `events_per_write` events.
    fn assert_writes_at_most_one_per(&self, events_per_write: usize) {
        assert!(
            self.writes * events_per_write <= self.events,
            "{} writes for {} events",
            self.writes,
            self.events
        );
    }

    /// The first event went out as soon as it arrived.
    fn assert_first_at_once(&self) {
        assert!(
            self.delays[0] < AT_ONCE,
            "first event waited {:?}",
            self.delays[0]
        );
    }

    /// No event waited `limit` or longer.
    fn assert_no_event_waits(&self, limit: Duration) {
        for (i, d) in self.delays.iter().enumerate() {
            assert!(*d < limit, "event {i} waited {d:?}");
        }
    }

    fn report(&self, what: &str) {
        eprintln!(
            "{what}: {} events, {} client writes ({:.3} per event), first event +{:.1} ms, largest added delay {:.1} ms",
            self.events,
            self.writes,
            self.writes as f64 / self.events as f64,
            self.delays[0].as_secs_f64() * 1e3,
            self.max_delay().as_secs_f64() * 1e3,
        );
    }
}

/// An upstream that answers one request with `events`, the i-th written at `i * gap` after the
/// head, and reports when it wrote each.
fn timed_upstream(
    events: Vec<String>,
    gap: Duration,
) -> (SocketAddr, mpsc::Receiver<Vec<Instant>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        read_request(&mut s, &mut Vec::new()).unwrap();
        s.write_all(SSE_HEAD).unwrap();
        let start = Instant::now();
        let mut sent = Vec::new();
        for (i, e) in events.iter().enumerate() {
            let at = start + gap * i as u32;
            thread::sleep(at.saturating_duration_since(Instant::now()));
            s.write_all(&chunk(e.as_bytes())).unwrap();
            sent.push(Instant::now());
        }
        s.write_all(b"0\r\n\r\n").unwrap();
        tx.send(sent).unwrap();
        // Hold the connection until the gateway is done with it.
        let _ = s.read(&mut [0u8; 1]);
    });
    (addr, rx)
}

/// Streams `events` with `gap` between them through a gateway with `stream_config`, reading
/// as a client that timestamps each event and counts chunks.
fn timed_stream(events: Vec<String>, gap: Duration, stream_config: &str) -> Figures {
    timed_stream_on(events, gap, "", stream_config)
}

/// [`timed_stream`] with `server_extra` in the gateway's `[server]` section.
fn timed_stream_on(
    events: Vec<String>,
    gap: Duration,
    server_extra: &str,
    stream_config: &str,
) -> Figures {
    let expected = events.concat();
    let n = events.len();
    let (up, sent) = timed_upstream(events, gap);
    let gw = gateway(&format!(
        "{}\n[stream]\n{stream_config}\n",
        config_for(up, server_extra, "")
    ));
    let mut c = TcpStream::connect(gw.local_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(&messages_request(STREAM_BODY, "")).unwrap();

    let mut wire = Vec::new();
    let mut body = Vec::new();
    let mut at = None; // where the next chunk-size line starts, once the head is read
    let mut writes = 0;
    let mut arrivals = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let got = read_retrying(&mut c, &mut buf).unwrap();
        assert!(
            got > 0,
            "the stream ended early: {:?}",
            String::from_utf8_lossy(&wire)
        );
        let now = Instant::now();
        wire.extend_from_slice(&buf[..got]);
        if at.is_none() {
            at = find(&wire, b"\r\n\r\n").map(|i| i + 4);
        }
        let Some(mut pos) = at else { continue };
        let mut finished = false;
        // Take every complete chunk received so far.
        while let Some(line) = find(&wire[pos..], b"\r\n") {
            let size =
                usize::from_str_radix(std::str::from_utf8(&wire[pos..pos + line]).unwrap(), 16)
                    .unwrap();
            let data = pos + line + 2;
            if size == 0 {
                finished = true;
                break;
            }
            if wire.len() < data + size + 2 {
                break;
            }
            writes += 1;
            body.extend_from_slice(&wire[data..data + size]);
            pos = data + size + 2;
        }
        at = Some(pos);
        let complete = body.windows(2).filter(|w| w == b"\n\n").count();
        arrivals.resize(complete, now);
        if finished {
            break;
        }
    }
    assert_eq!(String::from_utf8(body).unwrap(), expected);
    let sent = sent.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(arrivals.len(), n);
    Figures {
        events: n,
        writes,
        delays: arrivals
            .iter()
            .zip(&sent)
            .map(|(a, s)| a.saturating_duration_since(*s))
            .collect(),
    }
}

/// `n` events in all: message_start, a text block of deltas, message_delta, message_stop.
fn events(n: usize) -> Vec<String> {
    sse_events(n - 5)
}

#[test]
fn coalesce_64_events_every_20ms() {
    let f = timed_stream(events(64), Duration::from_millis(20), "");
    f.report("coalesce, 64 events x 20 ms");
    // About one write per flush interval (6 events) plus the first; a per-event relay would
    // make 64.
    f.assert_writes_at_most_one_per(3);
    f.assert_first_at_once();
    f.assert_no_event_waits(WITHIN_INTERVAL);
}

#[test]
fn immediate_64_events_every_20ms() {
    let f = timed_stream(
        events(64),
        Duration::from_millis(20),
        "mode = \"immediate\"",
    );
    f.report("immediate, 64 events x 20 ms");
    // Events 20 ms apart each get their own write (a few may share one on a slow scheduler).
    assert!(
        f.writes * 4 >= f.events * 3,
        "{} writes for {} events",
        f.writes,
        f.events
    );
    f.assert_no_event_waits(AT_ONCE);
}

#[test]
fn the_epoll_driver_coalesces_the_same_way() {
    // Deadlines interrupt reads through the epoll driver's cancellation too.
    let f = timed_stream_on(
        events(24),
        Duration::from_millis(20),
        "io_driver = \"epoll\"",
        "",
    );
    f.report("coalesce on epoll, 24 events x 20 ms");
    f.assert_writes_at_most_one_per(3);
    f.assert_no_event_waits(WITHIN_INTERVAL);
}

#[test]
fn slow_stream_events_arrive_within_the_interval() {
    let f = timed_stream(
        events(12),
        Duration::from_millis(50),
        "flush_interval_ms = 120",
    );
    f.report("coalesce, 12 events x 50 ms");
    f.assert_first_at_once();
    f.assert_no_event_waits(WITHIN_INTERVAL);
    assert!(
        f.writes < f.events,
        "{} writes for {} events",
        f.writes,
        f.events
    );
}

#[test]
fn fast_stream_takes_far_fewer_writes_than_events() {
    let f = timed_stream(events(600), Duration::ZERO, "");
    f.report("coalesce, 600 events at once");
    f.assert_writes_at_most_one_per(10);
}

#[test]
fn keep_alive_comments_fall_between_events() {
    let events = sse_events(2);
    // The third event arrives in two halves with a long pause inside it.
    let third = events[2].as_bytes();
    let (a, b) = third.split_at(third.len() / 2);
    let pieces = vec![
        SSE_HEAD.to_vec(),
        chunk(events[0].as_bytes()),
        chunk(events[1].as_bytes()),
        chunk(a),
    ];
    let mut rest = vec![chunk(b)];
    rest.extend(event_chunks(&events[3..]));
    rest.push(b"0\r\n\r\n".to_vec());
    let up = Upstream::start(move |_| {
        let mut p = pieces.clone();
        p.push(Vec::new()); // two pauses (220 ms) inside the event
        p.extend(rest.clone());
        Action::Send(p, Duration::from_millis(110))
    });
    let gw = gateway(&format!(
        "{}\n[stream]\nkeepalive_interval_ms = 100\n",
        config_for(up.addr, "", "")
    ));
    let r = request(gw.local_addr(), &messages_request(STREAM_BODY, ""));
    assert!(r.complete);
    let text = r.text();
    assert!(
        text.contains(": keep-alive\n\n"),
        "no keep-alive in {text:?}"
    );
    // Taking the keep-alive comments out leaves exactly the upstream's events.
    assert_eq!(text.replace(": keep-alive\n\n", ""), events.concat());
    // Each comment sits at an event boundary.
    for (i, _) in text.match_indices(": keep-alive") {
        assert!(
            text[..i].ends_with("\n\n"),
            "keep-alive inside an event: {text:?}"
        );
    }
}

#[test]
fn a_stream_that_keeps_flowing_gets_no_keep_alive() {
    // An event every 40 ms, each written within the 20 ms flush interval: the client never goes
    // 150 ms without a write, so no keep-alive comment is due, however long the stream.
    let events = sse_events(12);
    let pieces = sse_pieces(&events);
    let up = Upstream::start(move |_| Action::Send(pieces.clone(), Duration::from_millis(40)));
    let gw = gateway(&format!(
        "{}\n[stream]\nkeepalive_interval_ms = 150\nflush_interval_ms = 20\n",
        config_for(up.addr, "", "")
    ));
    let r = request(gw.local_addr(), &messages_request(STREAM_BODY, ""));
    assert!(r.complete);
    assert_eq!(r.text(), events.concat());
}

#[test]
fn keep_alive_can_be_turned_off() {
    let events = sse_events(1);
    let pieces = sse_pieces(&events);
    let up = Upstream::start(move |_| Action::Send(pieces.clone(), Duration::from_millis(60)));
    let gw = gateway(&format!(
        "{}\n[stream]\nkeepalive_interval_ms = 0\n",
        config_for(up.addr, "", "")
    ));
    let r = request(gw.local_addr(), &messages_request(STREAM_BODY, ""));
    assert_eq!(r.text(), events.concat());
}

#[test]
fn a_client_that_leaves_aborts_the_upstream_at_once() {
    client_leaves_mid_stream("");
}

#[test]
fn a_client_that_leaves_aborts_the_upstream_at_once_on_epoll() {
    client_leaves_mid_stream("io_driver = \"epoll\"");
}

fn client_leaves_mid_stream(server_extra: &str) {
    let (tx, rx) = mpsc::channel();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        read_request(&mut s, &mut Vec::new()).unwrap();
        let first = &sse_events(1)[0];
        s.write_all(&[SSE_HEAD, &chunk(first.as_bytes())].concat())
            .unwrap();
        // The answer continues "later"; the gateway should hang up first.
        let n = s.read(&mut [0u8; 64]).unwrap_or(0);
        tx.send((n, Instant::now())).unwrap();
    });
    let gw = gateway(&config_for(up, server_extra, ""));
    let mut c = TcpStream::connect(gw.local_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(&messages_request(STREAM_BODY, "")).unwrap();
    let mut got = Vec::new();
    while find(&got, b"message_start").is_none() {
        let mut buf = [0u8; 4096];
        let n = read_retrying(&mut c, &mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    drop(c);
    let left = Instant::now();
    let (n, closed) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the upstream connection stays open");
    assert_eq!(n, 0, "the upstream connection was closed, not sent more");
    let after = closed.saturating_duration_since(left);
    eprintln!(
        "upstream closed {:.2} ms after the client left",
        after.as_secs_f64() * 1e3
    );
    assert!(after < Duration::from_secs(1), "took {after:?}");
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn thousands_of_abandoned_streams_leak_no_descriptor() {
    let events = sse_events(50);
    let mut pieces = sse_pieces(&events);
    pieces.pop(); // no end: the stream is still going when each client leaves
                  // Events trickle, so every client leaves mid-stream.
    let up = Upstream::start(move |_| Action::Send(pieces.clone(), Duration::from_millis(2)));
    let gw = gateway(&config_for(up.addr, "", ""));
    let abandon = || {
        let mut c = TcpStream::connect(gw.local_addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(&messages_request(STREAM_BODY, "")).unwrap();
        let mut buf = [0u8; 4096];
        let n = read_retrying(&mut c, &mut buf).unwrap();
        assert!(n > 0 && find(&buf[..n], b"200 OK").is_some());
    };
    abandon();
    thread::sleep(Duration::from_millis(300));
    let before = open_fds();
    let rounds = 2000;
    for _ in 0..rounds {
        abandon();
    }
    // The scripted upstream notices each hang-up at its next write (2 ms) and ends its thread.
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_fds() > before + 4 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    let after = open_fds();
    assert!(
        after <= before + 4,
        "{before} descriptors before {rounds} abandoned streams, {after} after"
    );
    // And the gateway still serves.
    let r = request(gw.local_addr(), &messages_request(STREAM_BODY, ""));
    assert_eq!(r.status, 200);
}

#[test]
fn an_upstream_that_fails_before_its_first_event_gets_an_http_error() {
    // 200 and an event-stream head, then the connection closes: nothing was committed, so the
    // client gets a proper 502 instead of a 200 with an error inside.
    let up = Upstream::start(|_| Action::SendAndClose(vec![SSE_HEAD.to_vec()], Duration::ZERO));
    let gw = gateway(&config_for(up.addr, "", ""));
    let r = request(gw.local_addr(), &messages_request(STREAM_BODY, ""));
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("\"type\":\"api_error\""), "{}", r.text());
    assert!(
        r.text().contains("before") || r.text().contains("closed"),
        "{}",
        r.text()
    );

    // The same head, then silence past the idle limit: 504.
    let up = Upstream::start(|_| {
        Action::Send(vec![SSE_HEAD.to_vec(), Vec::new()], Duration::from_secs(5))
    });
    let gw = gateway(&format!(
        "{}\n[stream]\nupstream_idle_timeout_ms = 300\n",
        config_for(up.addr, "", "")
    ));
    let r = request(gw.local_addr(), &messages_request(STREAM_BODY, ""));
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(
        r.text().contains("\"type\":\"timeout_error\""),
        "{}",
        r.text()
    );
}

#[test]
fn a_stream_that_ends_without_message_stop_ends_with_an_error_event() {
    let events = sse_events(3);
    let cut = &events[..events.len() - 1]; // no message_stop
    let wire = [SSE_HEAD, &chunked_body(cut)].concat();
    let up = Upstream::start(move |_| Action::Send(vec![wire.clone()], Duration::ZERO));
    let gw = gateway(&config_for(up.addr, "", ""));
    let r = request(gw.local_addr(), &messages_request(STREAM_BODY, ""));
    assert_eq!(r.status, 200);
    assert!(r.complete, "ended with a proper last chunk");
    let text = r.text();
    assert!(
        text.starts_with(&cut.concat()),
        "every whole event is kept: {text:?}"
    );
    let tail = &text[cut.concat().len()..];
    assert!(
        tail.starts_with(
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\""
        ),
        "{tail:?}"
    );
    assert!(tail.contains("without message_stop"), "{tail:?}");
}

#[test]
fn a_connection_lost_after_message_stop_still_ends_cleanly() {
    let events = sse_events(3);
    let wire = [SSE_HEAD.to_vec(), event_chunks(&events).concat()].concat();
    // No terminating chunk: the upstream just closes after the last event.
    let up = Upstream::start(move |_| Action::SendAndClose(vec![wire.clone()], Duration::ZERO));
    let gw = gateway(&config_for(up.addr, "", ""));
    let r = request(gw.local_addr(), &messages_request(STREAM_BODY, ""));
    assert!(r.complete);
    assert_eq!(
        r.text(),
        events.concat(),
        "the answer was whole; no error is added"
    );
}

#[test]
fn an_event_stream_with_a_content_length_is_reframed_so_nothing_is_injected_into_it() {
    let events = sse_events(1);
    let body = events.concat();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (first, rest) = body.split_at(events[0].len());
    let pieces = vec![
        [head.as_bytes(), first.as_bytes()].concat(),
        rest.as_bytes().to_vec(),
    ];
    let up = Upstream::start(move |_| Action::Send(pieces.clone(), Duration::from_millis(300)));
    let gw = gateway(&format!(
        "{}\n[stream]\nkeepalive_interval_ms = 100\n",
        config_for(up.addr, "", "")
    ));
    let mut c = Client::connect(gw.local_addr());
    for _ in 0..2 {
        // Twice on one connection: the first response must end exactly where it says.
        c.send(&messages_request(STREAM_BODY, ""));
        let r = c.response();
        assert_eq!(
            r.header("transfer-encoding").as_deref(),
            Some("chunked"),
            "{}",
            r.head
        );
        assert_eq!(r.header("content-length"), None);
        assert!(r.complete);
        assert_eq!(r.text().replace(": keep-alive\n\n", ""), body);
    }
}

#[test]
fn a_client_that_stops_reading_is_dropped_and_the_upstream_released() {
    let (tx, rx) = mpsc::channel();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        read_request(&mut s, &mut Vec::new()).unwrap();
        s.write_all(SSE_HEAD).unwrap();
        let event = format!(
            "event: content_block_delta\ndata: {}\n\n",
            "y".repeat(16_000)
        );
        let event = chunk(event.as_bytes());
        let started = Instant::now();
        // Far more than the socket buffers on the way hold; stops when the gateway hangs up.
        let mut sent = 0usize;
        while sent < 1 << 30 && started.elapsed() < Duration::from_secs(20) {
            if s.write_all(&event).is_err() {
                break;
            }
            sent += event.len();
        }
        tx.send(Instant::now()).unwrap();
    });
    let gw = gateway(&format!(
        "{}\n[stream]\nclient_write_timeout_ms = 300\n",
        config_for(up, "", "")
    ));
    let mut c = TcpStream::connect(gw.local_addr()).unwrap();
    c.write_all(&messages_request(STREAM_BODY, "")).unwrap();
    let asked = Instant::now();
    // Never read. The gateway gives up on this client and lets the upstream go.
    let released = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the upstream is never released");
    let after = released.saturating_duration_since(asked);
    eprintln!(
        "upstream released {:.0} ms after the client stopped reading",
        after.as_secs_f64() * 1e3
    );
    assert!(after < Duration::from_secs(15), "took {after:?}");
    drop(c);
}
