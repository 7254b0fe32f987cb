//! The admin listener over real sockets: its token, the credential view and reset, and the
//! redacted configuration. The upstream is the scripted one of the test support, so a
//! credential can be made to cool on purpose.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use simd_json::prelude::*;
use simd_json::OwnedValue;
use support::*;

const BODY: &str =
    r#"{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#;
const TOKEN: &str = "admin-token-0123456789";
const SECRETS: &[&str] = &[
    "sk-upstream-a-secret",
    "sk-upstream-b-secret",
    "client-key",
    TOKEN,
];

/// A gateway with two credentials, a client key and an admin listener (with `admin` lines).
fn gateway_with_admin(upstream: SocketAddr, admin: &str) -> ringgate::GatewayHandle {
    gateway(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n[routing]\nstrategy = \"fill-first\"\n\
         [admin]\n{admin}\n\
         [[api_keys]]\nname = \"team\"\nkey = \"client-key\"\n\
         [[upstreams]]\nname = \"up\"\nkind = \"anthropic\"\nbase_url = \"http://{upstream}\"\n\
         [[upstreams.credentials]]\nname = \"a\"\napi_key = \"sk-upstream-a-secret\"\n\
         [[upstreams.credentials]]\nname = \"b\"\napi_key = \"sk-upstream-b-secret\"\n"
    ))
}

/// `a` is rate-limited for a minute; `b` answers.
fn upstream() -> Upstream {
    Upstream::start(|r| {
        let raw = if r.headers("x-api-key").concat() == "sk-upstream-a-secret" {
            json_response(
                429,
                r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
                "retry-after: 60\r\n",
            )
        } else {
            json_response(200, r#"{"id":"msg_ok","type":"message"}"#, "")
        };
        Action::Send(vec![raw], Duration::ZERO)
    })
}

fn admin(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> Response {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    request(
        addr,
        format!("{method} {path} HTTP/1.1\r\nHost: admin\r\n{auth}Content-Length: 0\r\n\r\n")
            .as_bytes(),
    )
}

fn json(r: &Response) -> OwnedValue {
    simd_json::from_slice(&mut r.body.clone()).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

fn state_of(addr: SocketAddr, credential: &str) -> String {
    let doc = json(&admin(addr, "GET", "/admin/credentials", Some(TOKEN)));
    let all = doc["credentials"].as_array().unwrap();
    let c = all
        .iter()
        .find(|c| c["credential"].as_str() == Some(credential))
        .unwrap();
    c["state"].as_str().unwrap().to_string()
}

#[test]
fn credentials_show_a_cooldown_and_a_reset_clears_it() {
    let up = upstream();
    let gw = gateway_with_admin(
        up.addr,
        &format!("listen = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\""),
    );
    let addr = gw.admin_addr().expect("admin listener started");
    assert_eq!(state_of(addr, "a"), "available");

    let r = request(gw.local_addr(), &messages_request(BODY, ""));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(state_of(addr, "a"), "cooling");
    assert_eq!(state_of(addr, "b"), "available");
    let doc = json(&admin(addr, "GET", "/admin/credentials", Some(TOKEN)));
    let a = &doc["credentials"][0];
    assert_eq!(a["models"][0]["reason"].as_str(), Some("rate_limited"));
    let until = a["models"][0]["cooling_until"]["unix_ms"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        until > now + 50_000 && until <= now + 61_000,
        "{until} vs {now}"
    );

    let r = admin(addr, "POST", "/admin/credentials/up/a/reset", Some(TOKEN));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json(&r)["reset"].as_bool(), Some(true));
    assert_eq!(state_of(addr, "a"), "available");

    let r = admin(
        addr,
        "POST",
        "/admin/credentials/up/nope/reset",
        Some(TOKEN),
    );
    assert_eq!(r.status, 404);
    assert!(r.text().contains("not_found_error"), "{}", r.text());
    gw.shutdown();
}

#[test]
fn a_token_guards_every_endpoint() {
    let up = upstream();
    let gw = gateway_with_admin(
        up.addr,
        &format!("listen = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\""),
    );
    let addr = gw.admin_addr().unwrap();
    for (method, path) in [
        ("GET", "/metrics"),
        ("GET", "/admin/credentials"),
        ("GET", "/admin/config"),
        ("POST", "/admin/reload"),
        ("POST", "/admin/credentials/up/a/reset"),
    ] {
        for token in [None, Some("wrong-token-0123456789"), Some("")] {
            let r = admin(addr, method, path, token);
            assert_eq!(r.status, 401, "{method} {path} with {token:?}");
            assert!(r.text().contains("authentication_error"));
        }
    }
    assert_eq!(admin(addr, "GET", "/healthz", Some(TOKEN)).status, 200);
    assert_eq!(
        admin(addr, "GET", "/admin/nothing", Some(TOKEN)).status,
        404
    );
    assert_eq!(admin(addr, "GET", "/admin/reload", Some(TOKEN)).status, 405);
    gw.shutdown();
}

#[test]
fn the_config_is_shown_without_a_secret() {
    let up = upstream();
    let gw = gateway_with_admin(
        up.addr,
        &format!("listen = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\""),
    );
    let r = admin(
        gw.admin_addr().unwrap(),
        "GET",
        "/admin/config",
        Some(TOKEN),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let text = r.text();
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let doc = json(&r);
    assert_eq!(doc["upstreams"][0]["name"].as_str(), Some("up"));
    assert_eq!(
        doc["upstreams"][0]["credentials"][1]["api_key"].as_str(),
        Some("<redacted>")
    );
    assert_eq!(doc["api_keys"][0]["name"].as_str(), Some("team"));
    assert_eq!(doc["admin"]["token"].as_str(), Some("<redacted>"));
    assert_eq!(doc["stream"]["flush_interval_ms"].as_u64(), Some(120));
    assert_eq!(
        doc["upstreams"][0]["base_url"].as_str(),
        Some(format!("http://{}", up.addr).as_str())
    );
    gw.shutdown();
}

#[test]
fn off_unless_configured_and_open_on_loopback_without_a_token() {
    let up = upstream();
    let gw = gateway(&config_for(up.addr, "", ""));
    assert!(gw.admin_addr().is_none());
    gw.shutdown();

    let gw = gateway_with_admin(up.addr, "listen = \"127.0.0.1:0\"");
    let r = admin(gw.admin_addr().unwrap(), "GET", "/admin/credentials", None);
    assert_eq!(r.status, 200, "{}", r.text());
    gw.shutdown();
}

#[test]
fn reload_reads_the_source_again_and_refuses_a_broken_one() {
    let up = upstream();
    let text = |extra: &str| {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n[admin]\nlisten = \"127.0.0.1:0\"\n\
             [[upstreams]]\nname = \"up\"\nkind = \"anthropic\"\nbase_url = \"http://{}\"\n\
             [[upstreams.credentials]]\nname = \"a\"\napi_key = \"sk-upstream-a-secret\"\n{extra}",
            up.addr
        )
    };
    let dir = std::env::temp_dir().join(format!("ringgate-admin-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ringgate.toml");
    std::fs::write(&path, text("")).unwrap();
    let gw = ringgate::Gateway::start(ringgate::Config::load(&path).unwrap()).unwrap();
    let addr = gw.admin_addr().unwrap();

    let r = admin(addr, "POST", "/admin/reload", None);
    assert_eq!(r.status, 400, "no source yet: {}", r.text());
    assert!(r.text().contains("without --config"), "{}", r.text());

    let source = path.clone();
    gw.control().set_source(std::sync::Arc::new(move || {
        ringgate::Config::load(&source).map_err(|e| e.to_string())
    }));
    std::fs::write(
        &path,
        text("[[upstreams.credentials]]\nname = \"b\"\napi_key = \"sk-upstream-b-secret\"\n"),
    )
    .unwrap();
    let r = admin(addr, "POST", "/admin/reload", None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(json(&r)["summary"]
        .as_str()
        .unwrap()
        .contains("generation 2"));
    assert_eq!(state_of_untokened(addr, "b"), "available");

    std::fs::write(&path, "[server\nbroken").unwrap();
    let r = admin(addr, "POST", "/admin/reload", None);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("the running configuration stays"),
        "{}",
        r.text()
    );
    assert_eq!(state_of_untokened(addr, "b"), "available");
    let r = request(gw.local_addr(), &messages_request(BODY, ""));
    assert_eq!(r.status, 200, "still serving: {}", r.text());
    gw.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

fn state_of_untokened(addr: SocketAddr, credential: &str) -> String {
    let doc = json(&admin(addr, "GET", "/admin/credentials", None));
    let all = doc["credentials"].as_array().unwrap();
    let c = all
        .iter()
        .find(|c| c["credential"].as_str() == Some(credential))
        .unwrap_or_else(|| panic!("no credential {credential} in {doc:?}"));
    c["state"].as_str().unwrap().to_string()
}
