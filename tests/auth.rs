//! Inbound authentication over real sockets: configured client keys are accepted from either
//! header the SDKs use, anything else is a 401 that never reaches the upstream, and a gateway
//! exposed beyond loopback refuses to start without keys.

mod support;

use std::time::Duration;

use ringgate::{Config, Gateway};
use support::*;

const BODY: &str =
    r#"{"model":"claude-haiku-4-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
const KEYS: &str = "\n[[api_keys]]\nname = \"team-a\"\nkey = \"rg-secret-a\"\n[[api_keys]]\nname = \"team-b\"\nkey = \"rg-secret-b\"\n";

/// A POST /v1/messages carrying exactly these extra header lines (no key of its own).
fn post(headers: &str) -> Vec<u8> {
    format!(
        "POST /v1/messages HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    )
    .into_bytes()
}

fn ok_upstream() -> Upstream {
    Upstream::start(|_| {
        Action::Send(
            vec![json_response(200, r#"{"type":"message"}"#, "")],
            Duration::ZERO,
        )
    })
}

#[test]
fn configured_keys_are_accepted_from_either_header() {
    let up = ok_upstream();
    let gw = gateway(&format!("{}{KEYS}", config_for(up.addr, "", "")));
    for header in [
        "x-api-key: rg-secret-a\r\n",
        "authorization: Bearer rg-secret-b\r\n",
    ] {
        let r = request(gw.local_addr(), &post(header));
        assert_eq!(r.status, 200, "{header}: {}", r.text());
    }
    // The upstream got its own credential, never the client's key.
    for req in up.requests() {
        assert_eq!(req.headers("x-api-key"), vec!["sk-upstream-secret"]);
        assert!(req.headers("authorization").is_empty());
    }
    assert_eq!(up.requests().len(), 2);
}

#[test]
fn anything_else_is_a_401_that_never_reaches_the_upstream() {
    let up = ok_upstream();
    let gw = gateway(&format!("{}{KEYS}", config_for(up.addr, "", "")));
    for header in [
        "",
        "x-api-key: rg-secret-c\r\n",
        "x-api-key: rg-secret-ab\r\n",
        "authorization: Basic rg-secret-a\r\n",
        "authorization: Bearer rg-secret-\r\n",
    ] {
        let r = request(gw.local_addr(), &post(header));
        assert_eq!(r.status, 401, "{header:?}");
        let text = r.text();
        assert!(text.contains("\"type\":\"authentication_error\""), "{text}");
        assert!(text.contains("\"request_id\":\"req_"), "{text}");
        assert!(!text.contains("rg-secret"), "{text}");
    }
    assert!(up.requests().is_empty());
    // Health checks need no key.
    let r = request(gw.local_addr(), b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
    assert_eq!(r.status, 200);
}

#[test]
fn a_gateway_exposed_beyond_loopback_needs_client_keys() {
    let up = ok_upstream();
    let open = config_for(up.addr, "", "").replace("127.0.0.1:0", "0.0.0.0:0");
    let config = Config::parse(&open, "test", &|_| None).unwrap();
    let e = Gateway::start(config).err().expect("refused to start");
    assert!(e.to_string().contains("[[api_keys]]"), "{e}");
    let config = Config::parse(&format!("{open}{KEYS}"), "test", &|_| None).unwrap();
    let gw = Gateway::start(config).expect("starts with keys");
    gw.shutdown();
}
