//! `/v1/models` from the configuration over real sockets, and forwarded when it names none.

mod support;

use std::time::Duration;

use support::*;

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: g\r\nx-api-key: client-key\r\n\r\n").into_bytes()
}

#[test]
fn the_configured_models_and_aliases_are_listed_without_asking_the_upstream() {
    let up = Upstream::start(|_| Action::Send(vec![json_response(200, "{}", "")], Duration::ZERO));
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[models.aliases]\nsonnet = \"claude-sonnet-4-5\"\n\
         [[upstreams]]\nname = \"u\"\nkind = \"anthropic\"\nbase_url = \"http://{}\"\n\
         models = [\"claude-sonnet-4-5\", \"claude-haiku-*\"]\n\
         [[upstreams.credentials]]\nname = \"c\"\napi_key = \"k\"\n",
        up.addr
    );
    let gw = gateway(&toml);
    let list = request(gw.local_addr(), &get("/v1/models?limit=1"));
    assert_eq!(list.status, 200);
    assert_eq!(
        list.header("content-type").as_deref(),
        Some("application/json")
    );
    let text = list.text();
    assert!(text.contains(r#""id":"claude-sonnet-4-5""#) && !text.contains("sonnet (alias"));
    assert!(text.contains(r#""has_more":true"#), "{text}");
    let next = request(
        gw.local_addr(),
        &get("/v1/models?after_id=claude-sonnet-4-5"),
    );
    assert!(next
        .text()
        .contains(r#""display_name":"sonnet (alias of claude-sonnet-4-5)""#));
    let one = request(gw.local_addr(), &get("/v1/models/sonnet"));
    assert_eq!(one.status, 200);
    assert!(one.text().starts_with(r#"{"type":"model","id":"sonnet""#));
    let missing = request(gw.local_addr(), &get("/v1/models/claude-opus-4-1"));
    assert_eq!(missing.status, 404);
    assert!(missing.text().contains("not_found_error"));
    let bad = request(gw.local_addr(), &get("/v1/models?limit=0"));
    assert_eq!(bad.status, 400);
    assert!(up.requests().is_empty(), "answered by the gateway");
    // A model served through a pattern but not listed: the upstream knows it.
    let served = request(gw.local_addr(), &get("/v1/models/claude-haiku-4-5"));
    assert_eq!(served.status, 200);
    let sent = up.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].request_line(),
        "GET /v1/models/claude-haiku-4-5 HTTP/1.1"
    );
}

#[test]
fn without_named_models_the_list_is_forwarded() {
    let up = Upstream::start(|_| {
        Action::Send(
            vec![json_response(200, r#"{"data":[]}"#, "")],
            Duration::ZERO,
        )
    });
    let gw = gateway(&config_for(up.addr, "", ""));
    let resp = request(gw.local_addr(), &get("/v1/models"));
    assert_eq!(resp.text(), r#"{"data":[]}"#);
    assert_eq!(up.requests()[0].request_line(), "GET /v1/models HTTP/1.1");
}
