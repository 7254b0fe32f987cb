//! Upstream host names: resolved (off the worker threads) and connected to, and a name that does
//! not resolve is a clear 502 rather than a gateway that will not start.

mod support;

use std::time::Duration;

use support::*;

const BODY: &str = r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
const OK: &str = r#"{"id":"msg_ok","type":"message"}"#;

fn config(base_url: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 2\n[routing]\nmax_attempts = 1\n\
         [[upstreams]]\nname = \"named\"\nkind = \"anthropic\"\nbase_url = \"{base_url}\"\n\
         connect_timeout_ms = 3000\n\
         [[upstreams.credentials]]\nname = \"k\"\napi_key = \"sk-upstream\"\n"
    )
}

#[test]
fn a_host_name_is_resolved_and_connected_to() {
    let up = Upstream::start(|_| Action::Send(vec![json_response(200, OK, "")], Duration::ZERO));
    let gw = gateway(&config(&format!("http://localhost:{}", up.addr.port())));
    for _ in 0..4 {
        let resp = request(gw.local_addr(), &messages_request(BODY, ""));
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    let r = &up.requests()[0];
    assert_eq!(r.headers("host"), [format!("localhost:{}", up.addr.port())]);
}

#[test]
fn a_name_that_does_not_resolve_is_a_502_naming_it() {
    // RFC 6761: .invalid never resolves.
    let gw = gateway(&config("http://no-such-host.invalid:8080"));
    let resp = request(gw.local_addr(), &messages_request(BODY, ""));
    assert_eq!(resp.status, 502, "{}", resp.text());
    let text = resp.text();
    assert!(text.contains(r#"upstream \"named\""#), "{text}");
    assert!(
        text.contains("cannot resolve no-such-host.invalid"),
        "{text}"
    );
}
