//! No secret leaves the gateway: a run of the binary at debug level that uses every kind of
//! secret (client keys, upstream keys, a refused key, a proxy password, the admin token) and
//! fails in every way that names a credential, then a grep of everything it said: its log, its
//! metrics, its admin answers and its error responses.

mod support;

use std::time::Duration;

use base64::Engine;
use support::connect_proxy::ConnectProxy;
use support::process::Process;
use support::*;

const REFUSED_KEY: &str = "sk-upstream-refused-secret";
const ADMIN_TOKEN: &str = "admin-token-secret-0123456789";
const PROXY_PASSWORD: &str = "proxy-password-secret";
const WRONG_KEY: &str = "presented-wrong-key-secret";

fn secrets() -> Vec<String> {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("user:{PROXY_PASSWORD}"));
    [
        REFUSED_KEY,
        LIMITED_KEY,
        SERVED_KEY,
        "client-key",
        ADMIN_TOKEN,
        PROXY_PASSWORD,
        WRONG_KEY,
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([basic])
    .collect()
}

#[test]
fn no_secret_in_logs_metrics_admin_answers_or_errors() {
    let up = Upstream::start(|r| {
        let key = r.headers("x-api-key").concat();
        let error = |status, kind| {
            let body = format!(r#"{{"type":"error","error":{{"type":"{kind}","message":"no"}}}}"#);
            Action::Send(
                vec![json_response(status, &body, "retry-after: 60\r\n")],
                Duration::ZERO,
            )
        };
        match key.as_str() {
            REFUSED_KEY => error(401, "authentication_error"),
            LIMITED_KEY => error(429, "rate_limit_error"),
            _ if String::from_utf8_lossy(&r.body).contains("\"stream\":true") => {
                Action::Send(sse_pieces(&sse_events(2)), Duration::ZERO)
            }
            _ => Action::Send(
                vec![json_response(
                    200,
                    r#"{"id":"m","usage":{"input_tokens":1}}"#,
                    "",
                )],
                Duration::ZERO,
            ),
        }
    });
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("user:{PROXY_PASSWORD}"));
    let proxy = ConnectProxy::start(Some(&format!("Basic {basic}")));
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n\
         [routing]\nstrategy = \"fill-first\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{ADMIN_TOKEN}\"\n\
         [log]\nformat = \"json\"\n\
         [[api_keys]]\nname = \"team-a\"\nkey = \"client-key\"\n\
         [[upstreams]]\nname = \"direct\"\nkind = \"anthropic\"\nbase_url = \"http://{}\"\nmodels = [\"claude-*\"]\n\
         [[upstreams.credentials]]\nname = \"refused\"\napi_key = \"{REFUSED_KEY}\"\n\
         [[upstreams.credentials]]\nname = \"limited\"\napi_key = \"{LIMITED_KEY}\"\n\
         [[upstreams.credentials]]\nname = \"served\"\napi_key = \"{SERVED_KEY}\"\n\
         [[upstreams]]\nname = \"proxied\"\nkind = \"anthropic\"\nbase_url = \"http://{}\"\n\
         proxy_url = \"http://{}\"\nproxy_auth = \"user:{PROXY_PASSWORD}\"\nmodels = [\"proxied-*\"]\n\
         [[upstreams.credentials]]\nname = \"via-proxy\"\napi_key = \"{SERVED_KEY}\"\n",
        up.addr, up.addr, proxy.addr
    );
    let mut gw = Process::start_with(&config, &[("RUST_LOG", Some("debug"))]);
    let admin_addr = gw.admin_addr();
    let mut said = Vec::new();
    let mut ask = |addr, raw: Vec<u8>| {
        let r = request(addr, &raw);
        said.push(format!("{}\n{}", r.head, r.text()));
        r.status
    };
    let body = |model: &str, stream: bool| {
        format!(r#"{{"model":"{model}","max_tokens":4,"stream":{stream},"messages":[]}}"#)
    };
    // refused (401, disabled) -> limited (429) -> served.
    assert_eq!(
        ask(gw.addr, messages_request(&body("claude-x", false), "")),
        200
    );
    assert_eq!(
        ask(gw.addr, messages_request(&body("claude-x", true), "")),
        200
    );
    assert_eq!(
        ask(gw.addr, messages_request(&body("proxied-x", false), "")),
        200
    );
    let wrong = with_key(messages_request(&body("claude-x", false), ""), WRONG_KEY);
    assert_eq!(ask(gw.addr, wrong), 401);
    let bearer = format!("Authorization: Bearer {WRONG_KEY}\r\n");
    let raw = messages_request(&body("claude-x", false), &bearer);
    let raw = String::from_utf8(raw)
        .unwrap()
        .replace("x-api-key: client-key\r\n", "");
    assert_eq!(ask(gw.addr, raw.into_bytes()), 401);
    let in_query = format!(
        "GET /v1/messages?key=client-key HTTP/1.1\r\nHost: g\r\nx-api-key: {WRONG_KEY}\r\n\r\n"
    );
    assert_eq!(ask(gw.addr, in_query.into_bytes()), 405);

    let admin = |method: &str, path: &str, token: &str| {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    };
    assert_eq!(ask(admin_addr, admin("GET", "/metrics", ADMIN_TOKEN)), 200);
    assert_eq!(
        ask(admin_addr, admin("GET", "/admin/credentials", ADMIN_TOKEN)),
        200
    );
    assert_eq!(
        ask(admin_addr, admin("GET", "/admin/config", ADMIN_TOKEN)),
        200
    );
    assert_eq!(
        ask(admin_addr, admin("POST", "/admin/reload", ADMIN_TOKEN)),
        200
    );
    assert_eq!(ask(admin_addr, admin("GET", "/metrics", WRONG_KEY)), 401);
    assert!(said[6].contains("ringgate_tokens_total"), "{}", said[6]);
    assert!(said[8].contains("<redacted>"), "{}", said[8]);

    gw.signal(libc::SIGTERM);
    assert!(gw
        .wait_exit(Duration::from_secs(10))
        .is_some_and(|s| s.success()));
    assert!(gw.wait_log("\"type\":\"access\"", 6, Duration::from_secs(2)));
    let log = gw.log();
    // The refused key was said loudly, by name.
    assert!(log.contains("refused credential \\\"refused\\\""), "{log}");
    let everything = format!("{log}\n{}", said.join("\n"));
    for secret in secrets() {
        assert!(
            !everything.contains(&secret),
            "{secret} leaked:\n{everything}"
        );
    }
}
