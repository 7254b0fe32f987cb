//! `GET /metrics` over real sockets: the samples move as requests run (checked through a
//! Prometheus text parser, not by string matching), and no secret ever shows in them.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use prometheus_parse::{Sample, Scrape, Value};
use support::*;

const BODY: &str =
    r#"{"model":"claude-x","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#;
const STREAM_BODY: &str = r#"{"model":"claude-x","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
const SECRETS: &[&str] = &[LIMITED_KEY, SERVED_KEY, "client-key", "other-client-key"];

/// `up` with credentials `a` (rate-limited) and `b`, two client keys, an admin listener.
fn setup(upstream: SocketAddr) -> ringgate::GatewayHandle {
    gateway(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 2\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n{}",
        two_credentials(upstream)
    ))
}

fn scrape_text(admin: SocketAddr) -> String {
    let r = request(
        admin,
        b"GET /metrics HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    r.text()
}

fn scrape(admin: SocketAddr) -> Scrape {
    let text = scrape_text(admin);
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("valid exposition")
}

/// The value of the sample `name` whose labels include all of `labels` (0 if there is none;
/// a histogram's `_count` for a histogram).
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<&Sample> = s
        .samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .collect();
    assert!(
        matching.len() <= 1,
        "{name} {labels:?}: {} samples",
        matching.len()
    );
    match matching.first().map(|x| &x.value) {
        None => 0.0,
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        Some(Value::Histogram(buckets)) => buckets.last().map_or(0.0, |b| b.count),
        Some(other) => panic!("{name}: unexpected {other:?}"),
    }
}

/// Waits until the sample reaches `want` (a request's metrics are recorded just after its
/// last byte reaches the client).
fn eventually(admin: SocketAddr, name: &str, labels: &[(&str, &str)], want: f64) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = scrape(admin);
        let v = value(&s, name, labels);
        if v == want {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{name} {labels:?} = {v}, want {want}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn samples_move_as_requests_run() {
    let up = rate_limiting_upstream();
    let gw = setup(up.addr);
    let admin = gw.admin_addr().unwrap();
    let before = scrape(admin);
    assert_eq!(value(&before, "ringgate_requests_total", &[]), 0.0);
    assert_eq!(
        value(&before, "ringgate_credentials", &[("state", "available")]),
        2.0
    );

    // Fails over from a (429) to b; the alias is resolved in the labels.
    let r = request(
        gw.local_addr(),
        &messages_request(&BODY.replace("claude-x", "x"), ""),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = request(
        gw.local_addr(),
        &with_key(messages_request(STREAM_BODY, ""), "other-client-key"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = request(
        gw.local_addr(),
        &with_key(messages_request(BODY, ""), "wrong-key"),
    );
    assert_eq!(r.status, 401);
    let r = request(gw.local_addr(), b"GET /nowhere HTTP/1.1\r\nHost: g\r\n\r\n");
    assert_eq!(r.status, 404);
    let r = request(gw.local_addr(), b"BAD\r\n\r\n");
    assert_eq!(r.status, 400);

    let ok = [
        ("route", "messages"),
        ("status", "200"),
        ("model", "claude-x"),
    ];
    let s = eventually(admin, "ringgate_requests_total", &ok, 2.0);
    let requests = |labels: &[(&str, &str)]| value(&s, "ringgate_requests_total", labels);
    assert_eq!(requests(&[("route", "messages"), ("status", "401")]), 1.0);
    assert_eq!(requests(&[("route", "unknown"), ("status", "404")]), 1.0);
    assert_eq!(requests(&[("route", "unknown"), ("status", "400")]), 1.0);
    let attempts = |c: &str, outcome: &str| {
        let labels = [("upstream", "up"), ("credential", c), ("outcome", outcome)];
        value(&s, "ringgate_upstream_attempts_total", &labels)
    };
    // The stream went to b directly: a was cooling by then.
    assert_eq!(attempts("a", "rate_limited"), 1.0);
    assert_eq!(attempts("b", "success"), 2.0);
    let failovers = [("upstream", "up"), ("credential", "a")];
    assert_eq!(value(&s, "ringgate_failovers_total", &failovers), 1.0);
    assert_eq!(
        value(&s, "ringgate_credentials", &[("state", "cooling")]),
        1.0
    );
    assert_eq!(
        value(&s, "ringgate_credentials", &[("state", "available")]),
        1.0
    );

    // Tokens by client key name: the non-stream answer's top-level usage (not the tool input's),
    // and the stream's message_start and message_delta.
    let tokens = |client: &str, kind: &str| {
        let labels = [("client", client), ("model", "claude-x"), ("kind", kind)];
        value(&s, "ringgate_tokens_total", &labels)
    };
    assert_eq!(
        [tokens("team-a", "input"), tokens("team-a", "output")],
        [11.0, 7.0]
    );
    assert_eq!(
        [
            tokens("team-a", "cache_creation"),
            tokens("team-a", "cache_read")
        ],
        [2.0, 5.0]
    );
    assert_eq!(
        [tokens("team-b", "input"), tokens("team-b", "output")],
        [3.0, 9.0]
    );

    // 9 events in the stream, each written within the coalescing rules: fewer writes than events.
    assert_eq!(value(&s, "ringgate_stream_events_total", &[]), 9.0);
    let writes = value(&s, "ringgate_stream_client_writes_total", &[]);
    assert!((1.0..=9.0).contains(&writes), "{writes}");
    let histogram = |name: &str, stream: &str| value(&s, name, &[("stream", stream)]);
    assert_eq!(histogram("ringgate_request_duration_seconds", "true"), 1.0);
    assert_eq!(histogram("ringgate_request_duration_seconds", "false"), 4.0);
    assert_eq!(histogram("ringgate_gateway_overhead_seconds", "false"), 4.0);
    assert_eq!(
        histogram("ringgate_time_to_first_byte_seconds", "true"),
        1.0
    );
    assert!(value(&s, "ringgate_request_body_bytes_total", &[]) >= (3 * BODY.len()) as f64);
    assert!(value(&s, "ringgate_response_body_bytes_total", &[]) > 0.0);
    // Two requests reached the upstream on one worker's connections at least once.
    assert!(value(&s, "ringgate_upstream_pool_misses_total", &[]) >= 1.0);
    assert_eq!(value(&s, "ringgate_active_streams", &[]), 0.0);
    assert_eq!(value(&s, "ringgate_config_generation", &[]), 1.0);

    // A reload serves a new generation and resets nothing.
    let config = ringgate::Config::parse(
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 2\n[admin]\nlisten = \"127.0.0.1:0\"\n{}",
            two_credentials(up.addr)
        ),
        "reload.toml",
        &|_| None,
    )
    .unwrap();
    gw.control().reload(config).unwrap();
    let after = scrape(admin);
    assert_eq!(value(&after, "ringgate_config_generation", &[]), 2.0);
    assert_eq!(value(&after, "ringgate_requests_total", &ok), 2.0);
    assert_eq!(
        value(&after, "ringgate_credentials", &[("state", "cooling")]),
        1.0
    );

    let text = scrape_text(admin);
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} in the metrics");
    }
}

#[test]
fn gauges_count_what_is_open_now() {
    // The upstream sends the head and one event, then waits before it ends the stream.
    let up = Upstream::start(|_| {
        let events = sse_events(1);
        let mut pieces = vec![SSE_HEAD.to_vec(), chunk(events[0].as_bytes())];
        pieces.extend(events[1..].iter().map(|e| chunk(e.as_bytes())));
        pieces.push(b"0\r\n\r\n".to_vec());
        Action::Send(pieces, Duration::from_millis(300))
    });
    let gw = setup(up.addr);
    let admin = gw.admin_addr().unwrap();
    let mut c = Client::connect(gw.local_addr());
    c.send(&messages_request(STREAM_BODY, ""));
    // a is tried first and answers a stream too: this upstream rate-limits no one.
    eventually(admin, "ringgate_active_streams", &[], 1.0);
    let s = scrape(admin);
    assert_eq!(value(&s, "ringgate_active_connections", &[]), 1.0);
    let r = c.response();
    assert_eq!(r.status, 200);
    drop(c);
    eventually(admin, "ringgate_active_streams", &[], 0.0);
    eventually(admin, "ringgate_active_connections", &[], 0.0);
}

#[test]
fn translated_answers_count_their_tokens_too() {
    // An OpenAI-compatible upstream: a streamed answer (usage in its last chunk) and a whole one.
    let up = Upstream::start(|req| {
        let stream = String::from_utf8_lossy(&req.body).contains("\"stream\":true");
        if !stream {
            let body = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":4,"prompt_tokens_details":{"cached_tokens":6}}}"#;
            return Action::Send(vec![json_response(200, body, "")], Duration::ZERO);
        }
        let chunks = [
            r#"{"choices":[{"index":0,"delta":{"content":"hi"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":8,"completion_tokens":3}}"#,
            "[DONE]",
        ];
        let mut pieces = vec![SSE_HEAD.to_vec()];
        pieces.extend(
            chunks
                .iter()
                .map(|c| chunk(format!("data: {c}\n\n").as_bytes())),
        );
        pieces.push(b"0\r\n\r\n".to_vec());
        Action::Send(pieces, Duration::ZERO)
    });
    let gw = gateway(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n[admin]\nlisten = \"127.0.0.1:0\"\n\
         [[upstreams]]\nname = \"vllm\"\nkind = \"openai\"\nbase_url = \"http://{}/v1\"\n",
        up.addr
    ));
    let admin = gw.admin_addr().unwrap();
    assert_eq!(
        request(gw.local_addr(), &messages_request(BODY, "")).status,
        200
    );
    assert_eq!(
        request(gw.local_addr(), &messages_request(STREAM_BODY, "")).status,
        200
    );
    let ok = [("route", "messages"), ("status", "200")];
    let s = eventually(admin, "ringgate_requests_total", &ok, 2.0);
    let tokens = |kind: &str| {
        let labels = [("model", "claude-x"), ("kind", kind)];
        value(&s, "ringgate_tokens_total", &labels)
    };
    assert_eq!(
        [tokens("input"), tokens("output"), tokens("cache_read")],
        [14.0 + 8.0, 4.0 + 3.0, 6.0]
    );
    // message_start, a block's start, delta and stop, message_delta, message_stop.
    assert_eq!(value(&s, "ringgate_stream_events_total", &[]), 6.0);
}
