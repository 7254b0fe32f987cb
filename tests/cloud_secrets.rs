//! No cloud secret leaves the gateway: a run of the binary at debug level with every Bedrock and
//! Vertex credential form (static AWS keys with a session token, web identity, an instance role,
//! a Bedrock API key, a service account, the metadata server, a static access token), each
//! served once and refused twice, then a reload, then a grep of everything it said (its log, its
//! admin answers, its metrics, its error responses) and of the `Debug` of the same
//! configuration, for every secret it was given or fetched. The fakes' answers carry secrets
//! only where the real services' do.

mod support;

use std::time::Duration;

use ringgate::Config;
use support::cloud::*;
use support::process::Process;
use support::*;

const ADMIN_TOKEN: &str = "admin-token-cloud-0123456789";
const STATIC_AKID: &str = "AKIASTATICEXAMPLE7Q";
const STATIC_SECRET: &str = "static-secret-wJalrXUtnFEMI/K7MDENG+bPxRfiCYzz";
const STATIC_SESSION_TOKEN: &str = "static-session-token-IQoJb3JpZ2luX2VjEHYaCXVz";
const BEDROCK_API_KEY: &str = "ABSKbedrock-api-key-secret-0123";
const VERTEX_ACCESS_TOKEN: &str = "ya29.static-access-token-secret";
const SA_TOKEN: &str = "ya29.service-account-fetched-secret";
const METADATA_TOKEN: &str = "ya29.metadata-fetched-secret";
const WEB_IDENTITY_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.web-identity-secret.c2ln";
const IMDS_TOKEN: &str = "imds-session-token-secret-AQAE";

/// A distinctive piece of the service account's private key (a line of its PEM body).
fn private_key_piece() -> String {
    let key: serde_json::Value = serde_json::from_str(SERVICE_ACCOUNT).unwrap();
    let pem = key["private_key"].as_str().unwrap();
    pem.lines().nth(5).unwrap().to_string()
}

/// The cloud upstream of every credential: serves a model whose id ends in `-ok`, refuses any
/// other the way its API does (Bedrock's paths start with `/model/`).
fn cloud_upstream() -> Upstream {
    Upstream::start(|r| {
        let (_, path) = target(r);
        let bedrock = path.starts_with("/model/");
        match (path.contains("-ok"), bedrock) {
            (true, _) => send(json_response(200, MESSAGE, "")),
            (false, true) => send(json_response(
                403,
                r#"{"message":"The security token included in the request is invalid."}"#,
                "x-amzn-errortype: UnrecognizedClientException:\r\n",
            )),
            (false, false) => send(json_response(
                401,
                r#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#,
                "",
            )),
        }
    })
}

#[test]
fn no_cloud_secret_in_logs_admin_answers_metrics_errors_or_config_debug() {
    let sts_keys = Keys::hour("leakwebidentity");
    let imds_keys = Keys::hour("leakinstance");
    let sts_answer = sts_keys.clone();
    let sts = Upstream::start(move |_| sts_answer.sts_answer());
    let imds = fake_imds(&imds_keys, IMDS_TOKEN, "leak-role");
    let token_endpoint = Upstream::start(|_| token_answer(SA_TOKEN, 3599));
    let metadata = Upstream::start(|_| token_answer(METADATA_TOKEN, 3599));
    let cloud = cloud_upstream();
    let dir = TempDir::new("cloud-secrets");
    let key_file = dir.service_account(&format!("http://{}/token", token_endpoint.addr));
    let token_file = dir.write("web-identity-token", WEB_IDENTITY_TOKEN);

    let upstream = |name: &str, kind: &str, prefix: &str, credential: String| {
        let place = match kind {
            "bedrock" => "region = \"us-east-1\"\n",
            _ => "region = \"us-east5\"\nproject = \"ringgate-proj\"\n",
        };
        format!(
            "[[upstreams]]\nname = \"{name}\"\nkind = \"{kind}\"\n{place}base_url = \"http://{}\"\n\
             models = [\"{prefix}-*\"]\n\
             [[upstreams.credentials]]\nname = \"{name}-credential\"\n{credential}\n",
            cloud.addr
        )
    };
    let upstreams = [
        upstream(
            "bedrock-static",
            "bedrock",
            "static",
            format!(
                "aws_access_key_id = \"{STATIC_AKID}\"\naws_secret_access_key = \"{STATIC_SECRET}\"\n\
                 aws_session_token_env = \"STATIC_SESSION_TOKEN\""
            ),
        ),
        upstream(
            "bedrock-wi",
            "bedrock",
            "wi",
            format!(
                "aws_credentials = \"web-identity\"\nsts_endpoint = \"http://{}/\"",
                sts.addr
            ),
        ),
        upstream(
            "bedrock-imds",
            "bedrock",
            "imds",
            format!(
                "aws_credentials = \"instance\"\nimds_endpoint = \"http://{}\"",
                imds.addr
            ),
        ),
        upstream(
            "bedrock-key",
            "bedrock",
            "bkey",
            format!("api_key = \"{BEDROCK_API_KEY}\""),
        ),
        upstream(
            "vertex-sa",
            "vertex",
            "sa",
            format!("service_account_file = {:?}", key_file.to_str().unwrap()),
        ),
        upstream(
            "vertex-meta",
            "vertex",
            "meta",
            format!(
                "gcp_credentials = \"metadata\"\nmetadata_url = \"http://{}\"",
                metadata.addr
            ),
        ),
        upstream(
            "vertex-token",
            "vertex",
            "token",
            "access_token_env = \"VERTEX_ACCESS_TOKEN\"".into(),
        ),
    ];
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n\
         [admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{ADMIN_TOKEN}\"\n{}",
        upstreams.concat()
    );
    let env = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap()),
        (
            "AWS_ROLE_ARN",
            "arn:aws:iam::123456789012:role/ringgate-leak",
        ),
        ("STATIC_SESSION_TOKEN", STATIC_SESSION_TOKEN),
        ("VERTEX_ACCESS_TOKEN", VERTEX_ACCESS_TOKEN),
    ];
    let mut process_env: Vec<(&str, Option<&str>)> =
        vec![("RUST_LOG", Some("debug")), ("AWS_ROLE_SESSION_NAME", None)];
    process_env.extend(env.iter().map(|(k, v)| (*k, Some(*v))));
    let mut gw = Process::start_with(&config, &process_env);
    let admin_addr = gw.admin_addr();

    let mut said = Vec::new();
    let mut ask = |addr, raw: Vec<u8>| {
        let r = request(addr, &raw);
        said.push(format!("{}\n{}", r.head, r.text()));
        r.status
    };
    for prefix in ["static", "wi", "imds", "bkey", "sa", "meta", "token"] {
        let ok = messages_request(&body(&format!("{prefix}-ok")), "");
        assert_eq!(ask(gw.addr, ok), 200, "{prefix}: {said:?}");
        // Refused until the credential is blamed, which the log says: a fixed key at once, a
        // fetched one once its refetched value is refused too (the first refusal asks for it).
        let blamed = gw.log().matches("refused credential").count() + 1;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let refused = messages_request(&body(&format!("{prefix}-refused")), "");
            let status = ask(gw.addr, refused);
            assert!(matches!(status, 502 | 429), "{prefix}: {said:?}");
            if gw.wait_log("refused credential", blamed, Duration::from_millis(200)) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{prefix} never blamed: {}",
                gw.log()
            );
        }
    }
    let admin = |method: &str, path: &str| {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    };
    for (method, path) in [
        ("GET", "/admin/config"),
        ("GET", "/admin/credentials"),
        ("GET", "/metrics"),
        ("POST", "/admin/reload"),
    ] {
        assert_eq!(ask(admin_addr, admin(method, path)), 200, "{path}");
    }
    let config_view = &said[said.len() - 4];
    for source in [
        "aws web identity, role arn:aws:iam::123456789012:role/ringgate-leak",
        "aws instance role via http://",
        "service account ringgate-test@ringgate-test.iam.gserviceaccount.com",
        "metadata server http://",
        // Given keys by the end of their id: enough to tell them apart.
        "aws keys …LE7Q",
    ] {
        assert!(config_view.contains(source), "{source} in {config_view}");
    }
    // The whole key id is no secret, but the admin answers and the log need not show it.
    let answers = said.join("\n");
    assert!(!answers.contains(STATIC_AKID), "{answers}");

    gw.signal(libc::SIGTERM);
    assert!(gw
        .wait_exit(Duration::from_secs(10))
        .is_some_and(|s| s.success()));
    let log = gw.log();
    assert!(!log.contains(STATIC_AKID), "{log}");
    // The same configuration, parsed in-process, as `Debug` shows it.
    let lookup = |name: &str| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    let parsed = Config::parse(&config, "cloud-secrets.toml", &lookup).unwrap();
    let debug = format!("{parsed:?}");
    assert!(debug.contains("<redacted>"), "{debug}");

    let secrets = [
        STATIC_SECRET.to_string(),
        STATIC_SESSION_TOKEN.into(),
        sts_keys.secret_access_key.clone(),
        sts_keys.session_token.clone(),
        imds_keys.secret_access_key.clone(),
        imds_keys.session_token.clone(),
        IMDS_TOKEN.into(),
        WEB_IDENTITY_TOKEN.into(),
        BEDROCK_API_KEY.into(),
        VERTEX_ACCESS_TOKEN.into(),
        SA_TOKEN.into(),
        METADATA_TOKEN.into(),
        private_key_piece(),
        "PRIVATE KEY".into(),
        ADMIN_TOKEN.into(),
    ];
    for (what, text) in [
        ("the log", log.as_str()),
        ("the answers", &said.join("\n")),
        ("the config's Debug", debug.as_str()),
    ] {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{secret} in {what}:\n{text}"
            );
        }
    }
}
