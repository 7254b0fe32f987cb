//! Fetched credentials over time, over real sockets: a credential whose source cannot give it a
//! value fails over to another upstream (or, alone, gets the client a 502 that says nothing of
//! why while the log does), keys about to expire are renewed before they do, keys that come
//! already expired are not fetched again in a loop, and a stopped gateway's credentials are not
//! fetched any more. (Refusals are in `cloud_credentials_refusal.rs`.)
//!
//! The refresher is one thread per process: every test has fakes of its own, so no two tests
//! share a credential's identity (and so its cell). Waits are polls with a deadline.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use support::cloud::*;
use support::process::Process;
use support::*;

const BEDROCK_MODEL: &str = "anthropic.claude-haiku-4-5-20251001-v1:0";

const SERVER: &str =
    "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n[admin]\nlisten = \"127.0.0.1:0\"\n";

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
        bedrock_lines("bedrock", bedrock.addr, sts.addr, "priority = 1"),
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
        bedrock_lines("bedrock-alone", bedrock.addr, sts.addr, "")
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
        bedrock_lines("bedrock", bedrock.addr, sts.addr, "")
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
    let issued = [first.clone(), second.clone()];
    let used: Vec<String> = (bedrock.requests().iter())
        .map(|r| check_sigv4_by(r, &issued, "us-east-1"))
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

#[test]
fn keys_that_come_already_expired_are_fetched_again_with_a_backoff_not_in_a_loop() {
    // A host clock ahead of STS's by more than the keys' life sees every answer expired on
    // arrival. Such a value is no use, and fetching it again at once gets the same: the next
    // attempt must wait as after a failed fetch (schedule::retry_after: 1 s, then 2 s, …).
    let stale = Keys {
        expires: SystemTime::now() - Duration::from_secs(60),
        ..Keys::hour("expiredonarrival")
    };
    let sts = Upstream::start(move |_| stale.sts_answer());
    let bedrock = Upstream::start(|_| send(json_response(200, MESSAGE, "")));
    let identity = WebIdentity::new("expired-on-arrival");
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n{}",
        bedrock_lines("bedrock", bedrock.addr, sts.addr, "")
    );
    let gw = gateway_with_env(&config, &identity.env());
    // The window the count is taken over (no request is sent: nothing here waits on one).
    std::thread::sleep(Duration::from_secs(2));
    let calls = sts.requests().len();
    gw.shutdown();
    assert!(
        (1..=4).contains(&calls),
        "STS called {calls} times in 2 s for keys that came expired"
    );
}

#[test]
fn a_stopped_gateway_lets_go_of_its_fetched_credentials() {
    // The refresher fetches a credential for as long as a configuration holds its cell
    // (refresher.rs: "forgets a credential once no configuration holds it"). A gateway that was
    // shut down holds none: were its pool kept, its keys would be fetched for the life of the
    // process, a gateway embedded in another program (or a test binary) fetching for nothing.
    let (sts, _) = numbered_sts("stopped");
    let bedrock = Upstream::start(|_| send(json_response(200, MESSAGE, "")));
    let identity = WebIdentity::new("stopped");
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n{}",
        bedrock_lines("bedrock", bedrock.addr, sts.addr, "")
    );
    let gw = gateway_with_env(&config, &identity.env());
    let r = request(gw.local_addr(), &messages_request(&body(BEDROCK_MODEL), ""));
    assert_eq!(r.status, 200, "{}", r.text());
    let cell = match &gw.pool().credential(0).auth {
        ringgate::credentials::Auth::AwsFetched(cell) => cell.clone(),
        other => panic!("not fetched AWS keys: {other:?}"),
    };
    gw.shutdown();
    // Ours, and the refresher's registry's until its next pass: no other.
    let held = || Arc::strong_count(&cell);
    wait_until(
        Duration::from_secs(2),
        "the stopped gateway's pool let go of the cell",
        || held() <= 2,
    );
}
