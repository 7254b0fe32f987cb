//! Hot reload, in-process through the control handle and on the binary through SIGHUP: a stream in
//! flight finishes on the configuration it started with while new requests (and the next request
//! of a kept-alive connection) get the new one; a configuration that cannot be served is refused
//! and the old one goes on; a cooling credential is still cooling after; `listen` changes rebind;
//! keys that cannot change keep their running value.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use ringgate::Config;
use support::process::{refused_within, wait_for_bytes, Process};
use support::*;

/// A gateway config in front of the built-in mock serving the `models` pattern; `listen` is a
/// TOML value.
fn mock_config(listen: &str, models: &str, extra: &str) -> String {
    format!(
        "[server]\nlisten = {listen}\nworkers = 2\n{extra}\n\n\
         [[upstreams]]\nname = \"mock\"\nkind = \"mock\"\nmodels = [\"{models}\"]\n"
    )
}

const ANY_PORT: &str = "\"127.0.0.1:0\"";

fn parse(text: &str) -> Config {
    Config::parse(text, "reload.toml", &|_| None).expect("valid test config")
}

fn body(model: &str, stream: bool) -> String {
    format!(
        r#"{{"model":"{model}","max_tokens":32,"stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#
    )
}

/// The status of a non-streaming request for `model`.
fn status_for(addr: SocketAddr, model: &str) -> u16 {
    request(addr, &messages_request(&body(model, false), "")).status
}

/// A mock stream of `deltas` deltas, 100 ms apart, whose head and first event have arrived.
fn stream_under_way(addr: SocketAddr, model: &str, deltas: usize) -> Client {
    let mut c = Client::connect(addr);
    let pace = format!("x-mock-deltas: {deltas}\r\nx-mock-event-interval-ms: 100\r\n");
    c.send(&messages_request(&body(model, true), &pace));
    wait_for_bytes(&c.stream, b"message_start", Duration::from_secs(10));
    c
}

/// Reads the rest of a stream and checks that it ended as the upstream ended it.
fn completes(c: &mut Client) {
    let r = c.response();
    let text = r.text();
    assert_eq!(r.status, 200, "{text}");
    assert!(r.complete && text.contains("event: message_stop"), "{text}");
    assert!(!text.contains("event: error"), "{text}");
}

#[test]
fn a_stream_in_flight_across_a_reload_completes_and_new_requests_get_the_new_config() {
    let gw = gateway(&mock_config(ANY_PORT, "claude-a-*", ""));
    let (addr, control) = (gw.local_addr(), gw.control());
    let mocks = gw.mock_upstreams();
    assert_eq!(status_for(addr, "claude-b-1"), 404);
    let mut streaming = stream_under_way(addr, "claude-a-1", 20);

    let report = control
        .reload(parse(&mock_config(ANY_PORT, "claude-b-*", "")))
        .unwrap();
    assert_eq!(report.generation, 2);
    assert_eq!(control.generation(), 2);
    assert!(!report.rebound && report.kept.is_empty(), "{report:?}");
    assert_eq!(report.listening, [addr]);
    assert_eq!(gw.mock_upstreams(), mocks, "the same mock goes on serving");

    assert_eq!(status_for(addr, "claude-b-1"), 200);
    assert_eq!(status_for(addr, "claude-a-1"), 404);
    completes(&mut streaming);
    // The connection the stream came on gets the new configuration for its next request.
    streaming.send(&messages_request(&body("claude-b-1", false), ""));
    assert_eq!(streaming.response().status, 200);
}

#[test]
fn a_config_that_cannot_be_served_is_refused_and_the_running_one_goes_on() {
    let gw = gateway(&mock_config(ANY_PORT, "claude-a-*", ""));
    let (addr, control) = (gw.local_addr(), gw.control());

    // Its address is taken (by a socket without SO_REUSEPORT).
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap();
    let listen = format!("\"{busy}\"");
    let e = control
        .reload(parse(&mock_config(&listen, "claude-b-*", "")))
        .unwrap_err();
    assert!(e.contains(&busy.to_string()), "{e}");

    // A CA file that cannot be read.
    let tls =
        "[[upstreams]]\nname = \"tls\"\nkind = \"anthropic\"\nbase_url = \"https://127.0.0.1:9\"\n\
               ca_file = \"/nonexistent/ringgate-ca.pem\"\nmodels = [\"claude-b-*\"]\n\
               [[upstreams.credentials]]\nname = \"k\"\napi_key = \"k\"\n";
    let e = control
        .reload(parse(&format!(
            "{}{tls}",
            mock_config(ANY_PORT, "claude-a-*", "")
        )))
        .unwrap_err();
    assert!(e.contains("ringgate-ca.pem"), "{e}");

    assert_eq!(control.generation(), 1);
    assert_eq!(gw.local_addr(), addr);
    assert_eq!(status_for(addr, "claude-a-1"), 200);
    assert_eq!(status_for(addr, "claude-b-1"), 404);
    drop(taken);
}

#[test]
fn a_credential_cooled_before_a_reload_is_still_cooled_after() {
    let up = Upstream::start(|r| {
        let answer = match r.headers("x-api-key").concat().as_str() {
            "key-a" => json_response(429, r#"{"type":"error"}"#, "retry-after: 60\r\n"),
            _ => json_response(200, r#"{"id":"msg_ok"}"#, ""),
        };
        Action::Send(vec![answer], Duration::ZERO)
    });
    let config = |more: &str| {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 2\n[routing]\nstrategy = \"fill-first\"\n\
             [[upstreams]]\nname = \"up\"\nkind = \"anthropic\"\nbase_url = \"http://{}\"\n\
             [[upstreams.credentials]]\nname = \"a\"\napi_key = \"key-a\"\n\
             [[upstreams.credentials]]\nname = \"b\"\napi_key = \"key-b\"\n{more}",
            up.addr
        )
    };
    let gw = gateway(&config(""));
    let addr = gw.local_addr();
    let keys = || -> Vec<String> {
        (up.requests().iter())
            .map(|r| r.headers("x-api-key").concat())
            .collect()
    };
    let cooling = |name: &str| {
        let snapshot = gw.pool().snapshot();
        let c = snapshot.iter().find(|c| c.credential == name).unwrap();
        c.models.iter().any(|m| m.cooling)
    };
    assert_eq!(status_for(addr, "claude-sonnet-4-5"), 200);
    assert_eq!(keys(), ["key-a", "key-b"]);
    assert!(cooling("a"));

    let more = "[[upstreams.credentials]]\nname = \"c\"\napi_key = \"key-c\"\n";
    gw.control().reload(parse(&config(more))).unwrap();
    assert_eq!(gw.pool().snapshot().len(), 3, "the new pool");
    assert!(cooling("a"), "still cooling after the reload");
    assert!(!cooling("b") && !cooling("c"));
    assert_eq!(status_for(addr, "claude-sonnet-4-5"), 200);
    assert_eq!(keys(), ["key-a", "key-b", "key-b"], "a is not asked again");
}

#[test]
fn a_listen_change_rebinds_and_an_unchanged_one_keeps_its_sockets() {
    let gw = gateway(&mock_config(ANY_PORT, "claude-*", ""));
    let (old, control) = (gw.local_addr(), gw.control());

    let r = control
        .reload(parse(&mock_config(ANY_PORT, "claude-*", "")))
        .unwrap();
    assert!(!r.rebound);
    assert_eq!(r.listening, [old], "port 0 as before is the port it got");

    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let r = control
        .reload(parse(&mock_config(&format!("\"{free}\""), "claude-*", "")))
        .unwrap();
    assert!(r.rebound);
    assert_eq!((r.listening, gw.local_addr()), (vec![free], free));
    assert_eq!(status_for(free, "claude-x"), 200);
    assert!(
        refused_within(old, Duration::from_secs(5)),
        "the old address is closed"
    );

    let two = format!("[\"{free}\", \"127.0.0.1:0\"]");
    let r = control
        .reload(parse(&mock_config(&two, "claude-*", "")))
        .unwrap();
    assert!(r.rebound);
    assert_eq!((r.listening.len(), r.listening[0]), (2, free));
    for addr in r.listening {
        assert_eq!(status_for(addr, "claude-x"), 200);
    }
}

#[test]
fn keys_that_cannot_change_keep_their_running_value_and_a_mock_with_a_new_pace_is_restarted() {
    let gw = gateway(&mock_config(ANY_PORT, "claude-*", ""));
    let (addr, control) = (gw.local_addr(), gw.control());
    let old_mock = gw.mock_upstreams()[0].1;

    let text = mock_config(
        ANY_PORT,
        "claude-*",
        "io_driver = \"epoll\"\nidle_timeout_ms = 5000",
    )
    .replace("workers = 2", "workers = 3")
        + "[upstreams.mock]\nevent_interval_ms = 1\n";
    let r = control.reload(parse(&text)).unwrap();
    assert_eq!(r.kept.len(), 2, "{:?}", r.kept);
    assert!(r.kept[0].contains("server.workers stays 2"), "{:?}", r.kept);
    assert!(r.kept[1].contains("server.io_driver"), "{:?}", r.kept);
    let running = control.config();
    assert_eq!(running.server.workers, 2);
    assert_eq!(running.server.idle_timeout_ms, 5000, "the rest is reloaded");
    assert_eq!(gw.workers(), 2);

    let new_mock = gw.mock_upstreams()[0].1;
    assert_ne!(new_mock, old_mock);
    let mut c = stream_under_way(addr, "claude-x", 5);
    completes(&mut c);
    assert!(
        refused_within(old_mock, Duration::from_secs(5)),
        "the mock with the old pace is stopped"
    );
}

#[test]
fn sighup_reloads_the_file_and_a_broken_file_is_refused() {
    let mut gw = Process::start(&mock_config(ANY_PORT, "claude-a-*", ""));
    let addr = gw.addr;
    assert_eq!(status_for(addr, "claude-b-1"), 404);
    // Three seconds of stream, across both reloads.
    let mut streaming = stream_under_way(addr, "claude-a-1", 30);

    gw.write_config("[server]\nlisten = \n");
    gw.signal(libc::SIGHUP);
    assert!(
        gw.wait_log("reload refused", 1, Duration::from_secs(10)),
        "{}",
        gw.log()
    );
    assert_eq!(status_for(addr, "claude-a-1"), 200, "{}", gw.log());
    assert_eq!(status_for(addr, "claude-b-1"), 404);

    gw.write_config(&mock_config(ANY_PORT, "claude-b-*", ""));
    gw.signal(libc::SIGHUP);
    assert!(
        gw.wait_log("reloaded: generation 2", 1, Duration::from_secs(10)),
        "{}",
        gw.log()
    );
    assert_eq!(status_for(addr, "claude-b-1"), 200);
    assert_eq!(status_for(addr, "claude-a-1"), 404);
    completes(&mut streaming);

    gw.signal(libc::SIGTERM);
    let status = gw.wait_exit(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", gw.log());
}
