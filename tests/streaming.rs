//! Streaming relay over real sockets: events arrive whole and in order however the upstream
//! fragments them, and an upstream failure mid-stream ends the stream with an in-band error.

mod support;

use std::time::{Duration, Instant};

use support::*;

const STREAM_BODY: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

#[test]
fn fragmented_upstream_stream_arrives_identical() {
    let events = sse_events(40);
    let expected: String = events.concat();
    for seed in 0..4u64 {
        let wire = chunked_body(&events);
        let up = Upstream::start(move |_| {
            let mut pieces = vec![SSE_HEAD.to_vec()];
            pieces.extend(fragments(&wire, 7, seed));
            Action::Send(pieces, Duration::ZERO)
        });
        let gw = gateway(&config_for(up.addr, "", ""));
        let r = request(gw.local_addr(), &messages_request(STREAM_BODY, ""));
        assert_eq!(r.status, 200);
        assert!(r.complete, "terminated with the last chunk");
        assert_eq!(r.text(), expected, "seed {seed}");
        assert_eq!(r.header("cache-control").as_deref(), Some("no-cache"));
        assert_eq!(r.header("x-accel-buffering").as_deref(), Some("no"));
        // Every chunk the client got holds whole events only.
        let mut at = 0;
        while at < r.raw_body.len() {
            let line_end = find(&r.raw_body[at..], b"\r\n").unwrap() + at;
            let size =
                usize::from_str_radix(std::str::from_utf8(&r.raw_body[at..line_end]).unwrap(), 16)
                    .unwrap();
            if size == 0 {
                break;
            }
            let data = &r.raw_body[line_end + 2..line_end + 2 + size];
            assert!(
                data.ends_with(b"\n\n"),
                "chunk cuts an event: {:?}",
                String::from_utf8_lossy(data)
            );
            at = line_end + 2 + size + 2;
        }
    }
}

#[test]
fn slow_stream_events_are_relayed_as_they_come() {
    let events = sse_events(5);
    let up =
        Upstream::start(move |_| Action::Send(sse_pieces(&events), Duration::from_millis(100)));
    let gw = gateway(&config_for(up.addr, "", ""));
    let mut c = Client::connect(gw.local_addr());
    c.send(&messages_request(STREAM_BODY, ""));
    // The first event must not wait for the rest of the stream (10 pieces × 100 ms).
    let start = Instant::now();
    let mut first = [0u8; 256];
    let n = read_retrying(&mut c.stream, &mut first).unwrap();
    assert!(n > 0);
    assert!(
        start.elapsed() < Duration::from_millis(700),
        "first bytes took {:?}",
        start.elapsed()
    );
}

#[test]
fn upstream_drop_mid_stream_ends_with_in_band_error() {
    let events = sse_events(10);
    let wire = chunked_body(&events);
    // Cut inside the sixth event, mid-chunk.
    let cut = find(&wire, b"word3").unwrap();
    let partial = wire[..cut].to_vec();
    let up = Upstream::start(move |_| {
        Action::SendAndClose(vec![SSE_HEAD.to_vec(), partial.clone()], Duration::ZERO)
    });
    let gw = gateway(&config_for(up.addr, "", ""));
    let mut c = Client::connect(gw.local_addr());
    c.send(&messages_request(STREAM_BODY, ""));
    let r = c.response();
    assert_eq!(r.status, 200);
    assert!(r.complete, "the chunked body is terminated properly");
    let text = r.text();
    let (before, error) = text.split_at(text.find("event: error").expect("in-band error event"));
    assert_eq!(
        before,
        events[..5].concat(),
        "whole events before the cut, and no partial event"
    );
    assert!(error.starts_with("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":"), "{error}");
    assert!(error.ends_with("}}\n\n"));
    assert!(
        c.is_closed(),
        "a failed stream closes the client connection"
    );
}

#[test]
fn garbage_chunk_framing_mid_stream_is_an_in_band_error() {
    let events = sse_events(3);
    let mut wire = chunk(events[0].as_bytes());
    wire.extend_from_slice(b"zz\r\nnot hex\r\n");
    let up = Upstream::start(move |_| {
        Action::Send(vec![SSE_HEAD.to_vec(), wire.clone()], Duration::ZERO)
    });
    let gw = gateway(&config_for(up.addr, "", ""));
    let r = request(gw.local_addr(), &messages_request(STREAM_BODY, ""));
    assert!(r.complete);
    assert!(r.text().starts_with(&events[0]), "{:?}", r.text());
    assert!(r.text().contains("event: error\n"), "{}", r.text());
}

#[test]
fn stream_idle_timeout_ends_the_stream() {
    let events = sse_events(3);
    let first = chunk(events[0].as_bytes());
    let up = Upstream::start(move |_| {
        Action::Send(
            vec![[SSE_HEAD, &first[..]].concat(), vec![]],
            Duration::from_secs(5),
        )
    });
    let gw = gateway(&format!(
        "{}\n[stream]\nupstream_idle_timeout_ms = 300\n",
        config_for(up.addr, "", "")
    ));
    let start = Instant::now();
    let r = request(gw.local_addr(), &messages_request(STREAM_BODY, ""));
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "ended by the idle timeout"
    );
    assert!(r.complete);
    assert!(r.text().starts_with(&events[0]), "{:?}", r.text());
    assert!(
        r.text().contains("event: error\n") && r.text().contains("sent nothing"),
        "{}",
        r.text()
    );
}

#[test]
fn content_length_body_cut_short_is_not_completed() {
    let up = Upstream::start(|_| {
        Action::SendAndClose(vec![b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"partial\":".to_vec()], Duration::ZERO)
    });
    let gw = gateway(&config_for(up.addr, "", ""));
    let r = request(
        gw.local_addr(),
        &messages_request(STREAM_BODY.replace("true", "false").as_str(), ""),
    );
    assert_eq!(r.header("content-length").as_deref(), Some("100"));
    assert!(
        !r.complete,
        "the client sees a truncated body, not a short success"
    );
}

#[test]
fn event_larger_than_the_buffer_is_split_but_complete() {
    let big = format!(
        "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{}\"}}}}\n\n",
        "x".repeat(5000)
    );
    let mut events = sse_events(1);
    events.insert(2, big);
    let expected = events.concat();
    let wire = chunked_body(&events);
    let up = Upstream::start(move |_| {
        Action::Send(vec![SSE_HEAD.to_vec(), wire.clone()], Duration::ZERO)
    });
    let gw = gateway(&format!(
        "{}\n[stream]\nbuffer_bytes = 1024\n",
        config_for(up.addr, "", "")
    ));
    let r = request(gw.local_addr(), &messages_request(STREAM_BODY, ""));
    assert!(r.complete);
    assert_eq!(r.text(), expected);
}

#[test]
fn http10_client_gets_the_stream_until_close() {
    let events = sse_events(3);
    let wire = chunked_body(&events);
    let up = Upstream::start(move |_| {
        Action::Send(vec![SSE_HEAD.to_vec(), wire.clone()], Duration::ZERO)
    });
    let gw = gateway(&config_for(up.addr, "", ""));
    let raw = String::from_utf8(messages_request(STREAM_BODY, ""))
        .unwrap()
        .replacen("HTTP/1.1", "HTTP/1.0", 1);
    let r = request(gw.local_addr(), raw.as_bytes());
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.text(), events.concat());
}

#[test]
fn many_clients_abandoning_streams_leave_the_gateway_healthy() {
    let events = sse_events(200);
    let wire = chunked_body(&events);
    let up = Upstream::start(move |_| {
        let mut pieces = vec![SSE_HEAD.to_vec()];
        pieces.extend(wire.chunks(512).map(<[u8]>::to_vec));
        Action::Send(pieces, Duration::from_millis(2))
    });
    let gw = gateway(&config_for(up.addr, "", ""));
    for _ in 0..50 {
        let mut c = Client::connect(gw.local_addr());
        c.send(&messages_request(STREAM_BODY, ""));
        let mut some = [0u8; 64];
        let _ = read_retrying(&mut c.stream, &mut some);
        drop(c);
    }
    let r = request(gw.local_addr(), b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
}
