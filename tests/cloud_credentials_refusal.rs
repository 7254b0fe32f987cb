//! A fetched credential refused over real sockets: the value an upstream refuses is fetched
//! once more before the credential is blamed (the client gets the gateway's 502, never the
//! upstream's 401 or 403, which it would take for its own key's), the next request is served
//! with the new value, and a value refused again disables the credential.
//!
//! The refresher is one thread per process, and a pass it makes for any credential also
//! fetches every refresh asked for meanwhile: a test fetching beside these would hide a refusal
//! that never woke the refresher. So these tests take turns ([`SERIAL`]), and this file holds no
//! other. Waits are polls with a deadline; the cell's generation, read through the gateway's
//! pool, says when a refetch is in.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use ringgate::credentials::Auth;
use ringgate::GatewayHandle;
use support::cloud::*;
use support::*;

const BEDROCK_MODEL: &str = "anthropic.claude-haiku-4-5-20251001-v1:0";
const VERTEX_MODEL: &str = "claude-haiku-4-5@20251001";

const SERVER: &str =
    "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n[admin]\nlisten = \"127.0.0.1:0\"\n";

/// Held for a test's whole run: one at a time in this process (a failed test poisons it, which
/// does not matter to the next).
static SERIAL: Mutex<()> = Mutex::new(());

fn alone() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Google's answer to a token it does not take.
const UNAUTHENTICATED: &str = r#"{"error":{"code":401,"message":"Request had invalid authentication credentials. Expected OAuth 2 access token.","status":"UNAUTHENTICATED"}}"#;

/// Bedrock's answer to keys it does not take.
fn bedrock_refusal() -> Action {
    send(json_response(
        403,
        r#"{"message":"The security token included in the request is invalid."}"#,
        "x-amzn-errortype: UnrecognizedClientException:http://internal.amazon.com/coral/com.amazon.coral.service/\r\n",
    ))
}

/// The gateway's own 502 for a refusal by `upstream` of `status`: never the upstream's 401 or
/// 403, which a client would take for its own key's.
#[track_caller]
fn assert_refused_by(r: &Response, upstream: &str, status: u16) {
    assert_eq!(r.status, 502, "{}", r.text());
    let error: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "api_error");
    let message = error["error"]["message"].as_str().unwrap();
    let said = format!("the upstream \"{upstream}\" refused the gateway's credential ({status})");
    assert!(message.contains(&said), "{message}");
}

/// How many values the cell of the gateway's first credential has held.
fn generation(gw: &GatewayHandle) -> u64 {
    match &gw.pool().credential(0).auth {
        Auth::Token(cell) => cell.latest().map_or(0, |f| f.generation),
        Auth::AwsFetched(cell) => cell.latest().map_or(0, |f| f.generation),
        other => panic!("not a fetched credential: {other:?}"),
    }
}

#[test]
fn a_refused_token_is_fetched_again_and_the_next_request_is_served_with_it() {
    let _alone = alone();
    let issued = AtomicUsize::new(0);
    let token_endpoint = Upstream::start(move |_| {
        let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
        token_answer(&format!("ya29.refresh-{n}"), 3599)
    });
    // Google revoked the first token (say, its account's key was rotated): it refuses that one.
    let vertex = Upstream::start(|r| match header(r, "authorization").as_str() {
        "Bearer ya29.refresh-1" => send(json_response(401, UNAUTHENTICATED, "")),
        _ => send(json_response(200, MESSAGE, "")),
    });
    let dir = TempDir::new("refresh-sa");
    let key_file = dir.service_account(&format!("http://{}/token", token_endpoint.addr));
    let config = format!(
        "{SERVER}[[upstreams]]\nname = \"vertex\"\nkind = \"vertex\"\nregion = \"us-east5\"\n\
         project = \"p\"\nbase_url = \"http://{}\"\n\
         [[upstreams.credentials]]\nname = \"sa\"\nservice_account_file = {:?}\n",
        vertex.addr,
        key_file.to_str().unwrap()
    );
    let gw = gateway_with_env(&config, &[]);
    let admin = gw.admin_addr().unwrap();
    assert_eq!(generation(&gw), 1, "fetched before the gateway serves");

    // The one credential is refused and no other is left: this request gets the gateway's 502.
    // The refusal asked for a refetch, which the refresher does at once.
    let first = request(gw.local_addr(), &messages_request(&body(VERTEX_MODEL), ""));
    assert_refused_by(&first, "vertex", 401);
    wait_until(Duration::from_secs(5), "the token fetched again", || {
        generation(&gw) == 2
    });
    let second = request(gw.local_addr(), &messages_request(&body(VERTEX_MODEL), ""));
    assert_eq!((second.status, second.text()), (200, MESSAGE.to_string()));

    assert_eq!(token_endpoint.requests().len(), 2, "one refetch, no more");
    let bearers: Vec<String> = (vertex.requests().iter())
        .map(|r| header(r, "authorization"))
        .collect();
    assert_eq!(bearers, ["Bearer ya29.refresh-1", "Bearer ya29.refresh-2"]);
    // A refusal answered by a refetch is a passing fault, never the credential's blame.
    assert_eq!(credential_state(admin, "vertex", "sa"), "available");
    let attempts = |outcome| {
        let labels = [
            ("upstream", "vertex"),
            ("credential", "sa"),
            ("outcome", outcome),
        ];
        metric(admin, "ringgate_upstream_attempts_total", &labels)
    };
    // The forgiven refusal still counts as one (attempt.rs, outcome_label).
    assert_eq!(attempts("key_refused"), 1.0);
    assert_eq!(attempts("upstream_error"), 0.0);
    assert_eq!(attempts("success"), 1.0);
    let status = &gw.pool().snapshot()[0];
    assert_eq!(status.disabled_until_unix_ms, None, "{status:?}");
    gw.shutdown();
}

#[test]
fn keys_refused_again_after_their_refetch_disable_the_credential() {
    let _alone = alone();
    let (sts, issued) = numbered_sts("refused");
    // The role lost its Bedrock permission: every key STS gives is refused.
    let bedrock = Upstream::start(|_| bedrock_refusal());
    let identity = WebIdentity::new("refused-twice");
    let config = format!(
        "{SERVER}{}",
        bedrock_lines("bedrock", bedrock.addr, sts.addr, "")
    );
    let gw = gateway_with_env(&config, &identity.env());
    let admin = gw.admin_addr().unwrap();

    let first = request(gw.local_addr(), &messages_request(&body(BEDROCK_MODEL), ""));
    assert_refused_by(&first, "bedrock", 403);
    assert_eq!(credential_state(admin, "bedrock", "wi"), "cooling");
    wait_until(Duration::from_secs(5), "the keys fetched again", || {
        generation(&gw) == 2
    });
    // The keys fetched for the refusal are refused too: the credential is at fault, and
    // disabled. It was the only one, so the gateway answers for the pool as for any disabled
    // key (forward.rs: every candidate rate-limited or disabled): its own 429, with the
    // disabled credential's time to wait, never the upstream's 403.
    let second = request(gw.local_addr(), &messages_request(&body(BEDROCK_MODEL), ""));
    assert_eq!(second.status, 429, "{}", second.text());
    let error: serde_json::Value = serde_json::from_slice(&second.body).unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "rate_limit_error");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("1 disabled after the upstream refused them"),
        "{message}"
    );
    let retry: u64 = second.header("retry-after").unwrap().parse().unwrap();
    assert!(
        (1790..=1800).contains(&retry),
        "auth_failure_cooldown_ms: {retry}"
    );
    let akids: Vec<String> = (bedrock.requests().iter())
        .map(|r| check_sigv4_by(r, &issued.lock().unwrap(), "us-east-1"))
        .collect();
    assert_eq!(akids, ["ASIAREFUSED1", "ASIAREFUSED2"]);

    assert_eq!(credential_state(admin, "bedrock", "wi"), "disabled");
    let labels = [
        ("upstream", "bedrock"),
        ("credential", "wi"),
        ("outcome", "key_refused"),
    ];
    assert_eq!(
        metric(admin, "ringgate_upstream_attempts_total", &labels),
        2.0,
        "the forgiven refusal and the blamed one"
    );
    // Disabled: no more refetches, and no request spends another refusal.
    let third = request(gw.local_addr(), &messages_request(&body(BEDROCK_MODEL), ""));
    assert_eq!(third.status, 429, "{}", third.text());
    assert!(third.text().contains("1 disabled"), "{}", third.text());
    assert_eq!(bedrock.requests().len(), 2);
    assert_eq!(sts.requests().len(), 2);
    gw.shutdown();
}
