//! Fetched credentials over time, over real sockets: a value an upstream refuses is fetched
//! once more before the credential is blamed (the client gets the gateway's 502, never the
//! upstream's 401 or 403), a value refused again disables it, a credential with no value fails
//! over to another upstream (or, alone, gets the client a 502 that says nothing of why while the
//! log does), and keys about to expire are renewed before they do.
//!
//! The refresher is one thread per process: every test has fakes of its own, so no two tests
//! share a credential's identity (and so its cell). Waits are polls with a deadline; the cell's
//! generation, read through the gateway's pool, says when a refetch is in.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ringgate::credentials::Auth;
use ringgate::GatewayHandle;
use support::cloud::*;
use support::process::Process;
use support::*;

const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/ringgate-refresh";
const BEDROCK_MODEL: &str = "anthropic.claude-haiku-4-5-20251001-v1:0";
const VERTEX_MODEL: &str = "claude-haiku-4-5@20251001";

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

/// A web-identity token file and the environment that names it.
struct WebIdentity {
    // Kept for the file's life.
    _dir: TempDir,
    token_file: String,
}

impl WebIdentity {
    fn new(tag: &str) -> WebIdentity {
        let dir = TempDir::new(tag);
        let token_file = dir.write("token", &format!("web-identity-token-{tag}-eyJhbGciOi"));
        let token_file = token_file.to_str().unwrap().to_string();
        WebIdentity {
            _dir: dir,
            token_file,
        }
    }

    fn env(&self) -> [(&str, &str); 2] {
        [
            ("AWS_WEB_IDENTITY_TOKEN_FILE", self.token_file.as_str()),
            ("AWS_ROLE_ARN", ROLE_ARN),
        ]
    }
}

/// Config lines for a Bedrock upstream `name` at `upstream` with a web-identity credential `wi`
/// fetched from `sts`.
fn bedrock_lines(name: &str, upstream: &str, sts: &str, extra: &str) -> String {
    format!(
        "[[upstreams]]\nname = \"{name}\"\nkind = \"bedrock\"\nregion = \"us-east-1\"\n\
         base_url = \"http://{upstream}\"\n{extra}\n\
         [[upstreams.credentials]]\nname = \"wi\"\naws_credentials = \"web-identity\"\n\
         sts_endpoint = \"http://{sts}/\"\n"
    )
}

const SERVER: &str =
    "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n[admin]\nlisten = \"127.0.0.1:0\"\n";

#[test]
fn a_refused_token_is_fetched_again_and_the_next_request_is_served_with_it() {
    let issued = Arc::new(AtomicUsize::new(0));
    let counter = issued.clone();
    let token_endpoint = Upstream::start(move |_| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
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
    let issued = Arc::new(AtomicUsize::new(0));
    let counter = issued.clone();
    let sts = Upstream::start(move |_| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        Keys::hour(&format!("refused{n}")).sts_answer()
    });
    // The role lost its Bedrock permission: every key STS gives is refused.
    let bedrock = Upstream::start(|_| bedrock_refusal());
    let identity = WebIdentity::new("refused-twice");
    let config = format!(
        "{SERVER}{}",
        bedrock_lines(
            "bedrock",
            &bedrock.addr.to_string(),
            &sts.addr.to_string(),
            ""
        )
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
        .map(|r| check_sigv4(r, &Keys::hour(&akid_tag(r)).secret_access_key, "us-east-1"))
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

/// The tag `Keys::hour` made the request's access key id from (`ASIAREFUSED1` → `refused1`).
fn akid_tag(r: &Received) -> String {
    let authorization = header(r, "authorization");
    let akid = authorization
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').next())
        .unwrap();
    akid.trim_start_matches("ASIA").to_lowercase()
}

/// STS failing whatever it is asked, with an error body that must not reach a client.
fn failing_sts() -> Upstream {
    Upstream::start(|_| {
        send(json_response(
            500,
            "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code>\
             <Message>sts-failure-marker-7f3a</Message></Error></ErrorResponse>",
            "",
        ))
    })
}

#[test]
fn a_bedrock_credential_sts_cannot_fetch_fails_over_to_another_upstream() {
    let sts = failing_sts();
    let bedrock = Upstream::start(|_| send(json_response(200, MESSAGE, "")));
    let anthropic = Upstream::start(|_| send(json_response(200, MESSAGE, "")));
    let identity = WebIdentity::new("sts-down-mixed");
    // Bedrock first (higher priority), the Anthropic API behind it.
    let config = format!(
        "{SERVER}[routing]\nstrategy = \"fill-first\"\n{}\
         [[upstreams]]\nname = \"anthropic\"\nkind = \"anthropic\"\nbase_url = \"http://{}\"\n\
         [[upstreams.credentials]]\nname = \"key\"\napi_key = \"sk-fallback\"\n",
        bedrock_lines(
            "bedrock",
            &bedrock.addr.to_string(),
            &sts.addr.to_string(),
            "priority = 1"
        ),
        anthropic.addr
    );
    let gw = gateway_with_env(&config, &identity.env());
    let admin = gw.admin_addr().unwrap();
    for _ in 0..2 {
        let r = request(gw.local_addr(), &messages_request(&body(BEDROCK_MODEL), ""));
        assert_eq!((r.status, r.text()), (200, MESSAGE.to_string()));
    }
    assert!(bedrock.requests().is_empty(), "nothing unsigned went out");
    assert!(!sts.requests().is_empty());
    let keys: Vec<String> = (anthropic.requests().iter())
        .map(|r| header(r, "x-api-key"))
        .collect();
    assert_eq!(keys, ["sk-fallback", "sk-fallback"]);
    // The first request found no value and failed over; then the credential cooled, and the
    // second went straight to the other upstream.
    let attempts = |upstream, credential, outcome| {
        let labels = [
            ("upstream", upstream),
            ("credential", credential),
            ("outcome", outcome),
        ];
        metric(admin, "ringgate_upstream_attempts_total", &labels)
    };
    assert_eq!(attempts("bedrock", "wi", "no_credential"), 1.0);
    assert_eq!(attempts("anthropic", "key", "success"), 2.0);
    assert_eq!(credential_state(admin, "bedrock", "wi"), "cooling");
    gw.shutdown();
}

#[test]
fn alone_a_credential_sts_cannot_fetch_gets_a_502_that_hides_why_and_a_log_that_says_it() {
    let sts = failing_sts();
    let bedrock = Upstream::start(|_| send(json_response(200, MESSAGE, "")));
    let identity = WebIdentity::new("sts-down-alone");
    let token = std::fs::read_to_string(&identity.token_file).unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n{}",
        bedrock_lines(
            "bedrock-alone",
            &bedrock.addr.to_string(),
            &sts.addr.to_string(),
            ""
        )
    );
    let gw = Process::start_with(
        &config,
        &[
            ("RUST_LOG", Some("info")),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", Some(&identity.token_file)),
            ("AWS_ROLE_ARN", Some(ROLE_ARN)),
            ("AWS_ROLE_SESSION_NAME", None),
        ],
    );
    for _ in 0..2 {
        let r = request(gw.addr, &messages_request(&body(BEDROCK_MODEL), ""));
        assert_eq!(r.status, 502, "{}", r.text());
        let error: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(error["type"], "error");
        assert_eq!(error["error"]["type"], "api_error");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("no usable credential") && message.contains("\"bedrock-alone\""),
            "{message}"
        );
        let text = format!("{}{}", r.head, r.text());
        for hidden in [
            "sts-failure-marker",
            "InternalFailure",
            &sts.addr.to_string(),
            token.as_str(),
        ] {
            assert!(!text.contains(hidden), "{hidden} in {text}");
        }
    }
    assert!(bedrock.requests().is_empty());
    // The log names the credential and what STS said; the request's line says it had none.
    assert!(
        gw.wait_log(
            "credential bedrock-alone/wi: fetching failed (STS AssumeRoleWithWebIdentity answered 500",
            1,
            Duration::from_secs(5)
        ),
        "{}",
        gw.log()
    );
    assert!(
        gw.wait_log("has no valid credential", 2, Duration::from_secs(5)),
        "{}",
        gw.log()
    );
    let log = gw.log();
    assert!(log.contains("sts-failure-marker-7f3a"), "{log}");
    assert!(!log.contains(&token), "the web identity token in the log");
}

#[test]
fn keys_about_to_expire_are_renewed_before_they_do_and_no_request_fails() {
    // The first keys live about 4 s, so the refresher renews them a quarter of that (about 1 s)
    // before they expire (schedule::renew_at); the second live an hour.
    let first = Keys {
        expires: whole_seconds_ahead(Duration::from_secs(4)),
        ..Keys::hour("expiring")
    };
    let second = Keys::hour("renewed");
    let fetched_at = Arc::new(Mutex::new(Vec::new()));
    let (log, a, b) = (fetched_at.clone(), first.clone(), second.clone());
    let sts = Upstream::start(move |_| {
        let mut log = log.lock().unwrap();
        log.push(SystemTime::now());
        if log.len() == 1 { &a } else { &b }.sts_answer()
    });
    // As Bedrock does: keys past their expiry are refused.
    let expiring = first.clone();
    let bedrock = Upstream::start(move |r| {
        let expired = SystemTime::now() >= expiring.expires;
        if header(r, "x-amz-security-token") == expiring.session_token && expired {
            send(json_response(
                403,
                r#"{"message":"The security token included in the request is expired"}"#,
                "x-amzn-errortype: ExpiredTokenException:\r\n",
            ))
        } else {
            send(json_response(200, MESSAGE, ""))
        }
    });
    let identity = WebIdentity::new("expiring");
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n{}",
        bedrock_lines(
            "bedrock",
            &bedrock.addr.to_string(),
            &sts.addr.to_string(),
            ""
        )
    );
    let gw = gateway_with_env(&config, &identity.env());
    // Requests all along, until the first keys are well past their expiry.
    let until = first.expires + Duration::from_millis(500);
    let mut statuses = Vec::new();
    while SystemTime::now() < until {
        let r = request(gw.local_addr(), &messages_request(&body(BEDROCK_MODEL), ""));
        statuses.push(r.status);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");

    let fetches = fetched_at.lock().unwrap().clone();
    assert_eq!(fetches.len(), 2, "one renewal: {fetches:?}");
    assert!(
        fetches[1] < first.expires,
        "renewed at {:?}, after the expiry at {:?}",
        fetches[1],
        first.expires
    );
    // Signed with the first keys, then with the renewed ones, each by its own secret.
    let used: Vec<String> = (bedrock.requests().iter())
        .map(|r| {
            let keys = match header(r, "x-amz-security-token") {
                t if t == first.session_token => &first,
                _ => &second,
            };
            check_sigv4(r, &keys.secret_access_key, "us-east-1")
        })
        .collect();
    let switched = used.iter().position(|k| *k == second.access_key_id);
    let switched = switched.expect("the renewed keys were used");
    assert!(switched > 0, "the first keys were used first: {used:?}");
    assert!(
        used[switched..].iter().all(|k| *k == second.access_key_id),
        "{used:?}"
    );
    gw.shutdown();
}
