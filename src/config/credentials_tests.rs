//! `[[upstreams.credentials]]` of every form, through `Config::parse` as a file is read: each
//! form parses for the kinds that take it, and no error or `Debug` shows a secret the file or
//! the environment gave. The refusals, field by field, are in `credentials_refusals_tests.rs`.

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError};
use crate::credentials::aws::{AwsKeys, AwsSource};
use crate::credentials::google::METADATA_URL;
use crate::credentials::Secret;

/// The test service account's key file (a key made for the tests, of no account anywhere).
pub(super) const KEY_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/test-service-account.json"
);

/// Secrets the file or the environment give in these tests: never in an error or a `Debug`.
pub(super) const SECRETS: &[&str] = &[
    "sk-key-secret-1",
    "aws-secret-key-2/K7MDENG+bPxRfiCY",
    "aws-session-token-3",
    "ya29.access-token-4",
    "env-secret-5",
];

/// The environment of these tests: variables holding secrets, and a web identity.
pub(super) fn env(name: &str) -> Option<String> {
    let value = match name {
        "SECRET_VAR" => "env-secret-5",
        "AWS_WEB_IDENTITY_TOKEN_FILE" => "/var/run/secrets/eks/token",
        "AWS_ROLE_ARN" => "arn:aws:iam::123456789012:role/r",
        "EMPTY_VAR" => "",
        _ => return None,
    };
    Some(value.to_string())
}

pub(super) fn parse_with(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    Config::parse(text, "test.toml", env)
}

/// A config with one upstream of `kind` (with `upstream` lines) holding one credential of
/// `credential` lines.
pub(super) fn one(kind: &str, upstream: &str, credential: &str) -> String {
    format!(
        "[[upstreams]]\nname = \"u\"\nkind = \"{kind}\"\n{upstream}\n\
         [[upstreams.credentials]]\nname = \"c\"\n{credential}\n"
    )
}

pub(super) const BEDROCK: &str = "region = \"us-west-2\"";
pub(super) const VERTEX: &str = "region = \"us-east5\"\nproject = \"proj\"";

/// The one credential's secret, for a config that must parse.
fn secret_of(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Secret {
    let config = parse_with(text, env).unwrap_or_else(|e| panic!("{text}\n-> {}", e.message));
    config.upstreams[0].credentials[0].secret.clone()
}

fn aws_keys(secret: Secret) -> AwsKeys {
    match secret {
        Secret::AwsKeys(keys) => keys,
        other => panic!("not AWS keys: {other:?}"),
    }
}

fn aws_source(secret: Secret) -> AwsSource {
    match secret {
        Secret::AwsFetched(source) => source,
        other => panic!("not fetched AWS keys: {other:?}"),
    }
}

#[test]
fn keys_and_aws_keys_parse_for_the_kinds_that_take_them() {
    for kind in ["anthropic", "openai", "gemini"] {
        let text = one(kind, "", "api_key = \"sk-key-secret-1\"");
        assert_eq!(secret_of(&text, &env).identity(), "key:sk-key-secret-1");
    }
    // A Bedrock API key, inline or from the environment.
    let text = one("bedrock", BEDROCK, "api_key_env = \"SECRET_VAR\"");
    assert_eq!(secret_of(&text, &env).identity(), "key:env-secret-5");

    let text = one(
        "bedrock",
        BEDROCK,
        "aws_access_key_id = \"AKIAEXAMPLE\"\naws_secret_access_key = \"aws-secret-key-2/K7MDENG+bPxRfiCY\"",
    );
    let keys = aws_keys(secret_of(&text, &env));
    assert_eq!(
        keys,
        AwsKeys {
            access_key_id: "AKIAEXAMPLE".into(),
            secret_access_key: "aws-secret-key-2/K7MDENG+bPxRfiCY".into(),
            session_token: None,
        }
    );
    let text = one(
        "bedrock",
        BEDROCK,
        "aws_access_key_id_env = \"SECRET_VAR\"\naws_secret_access_key = \"aws-secret-key-2/K7MDENG+bPxRfiCY\"\n\
         aws_session_token = \"aws-session-token-3\"",
    );
    let keys = aws_keys(secret_of(&text, &env));
    assert_eq!(keys.access_key_id, "env-secret-5");
    assert_eq!(keys.session_token.as_deref(), Some("aws-session-token-3"));
    let text = one(
        "bedrock",
        BEDROCK,
        "aws_access_key_id = \"AKIAEXAMPLE\"\naws_secret_access_key_env = \"SECRET_VAR\"\n\
         aws_session_token_env = \"SECRET_VAR\"",
    );
    let keys = aws_keys(secret_of(&text, &env));
    assert_eq!(
        (
            keys.secret_access_key.as_str(),
            keys.session_token.as_deref()
        ),
        ("env-secret-5", Some("env-secret-5"))
    );
}

#[test]
fn fetched_aws_keys_parse_with_their_defaults_and_overrides() {
    let text = one("bedrock", BEDROCK, "aws_credentials = \"web-identity\"");
    assert_eq!(
        aws_source(secret_of(&text, &env)),
        AwsSource::WebIdentity {
            // The region's own STS endpoint, as the AWS SDKs use by default now.
            sts_endpoint: "https://sts.us-west-2.amazonaws.com/".into(),
            token_file: PathBuf::from("/var/run/secrets/eks/token"),
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            session_name: "ringgate".into(),
        }
    );
    let named = |name: &str| match name {
        "AWS_ROLE_SESSION_NAME" => Some("my-session".to_string()),
        other => env(other),
    };
    let text = one(
        "bedrock",
        BEDROCK,
        "aws_credentials = \"web-identity\"\nsts_endpoint = \"http://127.0.0.1:9/\"",
    );
    match aws_source(secret_of(&text, &named)) {
        AwsSource::WebIdentity {
            sts_endpoint,
            session_name,
            ..
        } => assert_eq!(
            (sts_endpoint.as_str(), session_name.as_str()),
            ("http://127.0.0.1:9/", "my-session")
        ),
        other => panic!("{other:?}"),
    }

    let text = one("bedrock", BEDROCK, "aws_credentials = \"instance\"");
    assert_eq!(
        aws_source(secret_of(&text, &env)),
        AwsSource::Instance {
            imds_endpoint: "http://169.254.169.254".into()
        }
    );
    let text = one(
        "bedrock",
        BEDROCK,
        "aws_credentials = \"instance\"\nimds_endpoint = \"http://127.0.0.1:9\"",
    );
    assert_eq!(
        aws_source(secret_of(&text, &env)),
        AwsSource::Instance {
            imds_endpoint: "http://127.0.0.1:9".into()
        }
    );
}

#[test]
fn google_credentials_parse_for_vertex() {
    let text = one(
        "vertex",
        VERTEX,
        &format!("service_account_file = {KEY_FILE:?}"),
    );
    match secret_of(&text, &env) {
        Secret::ServiceAccount(path, sa) => {
            assert_eq!(path, Path::new(KEY_FILE));
            assert_eq!(
                (sa.client_email.as_str(), sa.private_key_id.as_str()),
                (
                    "ringgate-test@ringgate-test.iam.gserviceaccount.com",
                    "test-key-1"
                )
            );
        }
        other => panic!("{other:?}"),
    }
    let text = one("vertex", VERTEX, "gcp_credentials = \"metadata\"");
    assert_eq!(
        secret_of(&text, &env).identity(),
        format!("metadata:{METADATA_URL}")
    );
    let text = one(
        "vertex",
        VERTEX,
        "gcp_credentials = \"metadata\"\nmetadata_url = \"http://127.0.0.1:9\"",
    );
    assert_eq!(
        secret_of(&text, &env).identity(),
        "metadata:http://127.0.0.1:9"
    );
    // A token someone else refreshes goes as it is.
    let text = one("vertex", VERTEX, "access_token = \"ya29.access-token-4\"");
    assert_eq!(secret_of(&text, &env).identity(), "key:ya29.access-token-4");
    let text = one("vertex", VERTEX, "access_token_env = \"SECRET_VAR\"");
    assert_eq!(secret_of(&text, &env).identity(), "key:env-secret-5");
}

#[test]
fn bedrock_and_vertex_find_their_real_hosts_by_region_unless_told() {
    let host = |kind: &str, upstream: &str, credential: &str| {
        let config = parse_with(&one(kind, upstream, credential), &env).unwrap();
        let url = config.upstreams[0].base_url.clone().unwrap();
        (url.host, url.port)
    };
    let key = "api_key = \"k\"";
    let token = "access_token = \"t\"";
    assert_eq!(
        host("bedrock", BEDROCK, key),
        ("bedrock-runtime.us-west-2.amazonaws.com".into(), 443)
    );
    assert_eq!(
        host("vertex", VERTEX, token),
        ("us-east5-aiplatform.googleapis.com".into(), 443)
    );
    let global = "region = \"global\"\nproject = \"p\"";
    assert_eq!(
        host("vertex", global, token),
        ("aiplatform.googleapis.com".into(), 443)
    );
    let local = format!("{BEDROCK}\nbase_url = \"http://127.0.0.1:9\"");
    assert_eq!(host("bedrock", &local, key), ("127.0.0.1".into(), 9));
}

#[test]
fn errors_and_debug_never_show_a_secret_the_file_or_the_environment_gave() {
    let keys = "aws_access_key_id = \"AKIAEXAMPLE\"\n\
                aws_secret_access_key = \"aws-secret-key-2/K7MDENG+bPxRfiCY\"\n\
                aws_session_token = \"aws-session-token-3\"";
    // Every secret given, and an error caused elsewhere in the same credential or upstream.
    let failing = [
        one("anthropic", "", keys),
        one(
            "bedrock",
            BEDROCK,
            &format!("{keys}\napi_key = \"sk-key-secret-1\""),
        ),
        one(
            "bedrock",
            BEDROCK,
            &format!("{keys}\nsts_endpoint = \"http://x/\""),
        ),
        one("bedrock", "", keys),
        one(
            "bedrock",
            BEDROCK,
            "aws_access_key_id_env = \"SECRET_VAR\"\n\
             aws_secret_access_key = \"aws-secret-key-2/K7MDENG+bPxRfiCY\"\n\
             aws_session_token = \"aws-session-token-3 with a space\"",
        ),
        one(
            "vertex",
            VERTEX,
            "access_token = \"ya29.access-token-4\"\nmetadata_url = \"http://x\"",
        ),
        one(
            "vertex",
            "region = \"us-east5\"",
            "access_token = \"ya29.access-token-4\"",
        ),
        one(
            "gemini",
            "",
            "api_key = \"sk-key-secret-1\"\naccess_token = \"ya29.access-token-4\"",
        ),
        one("anthropic", "", "api_key = \"sk-key-secret-1\"\nweight = 0"),
    ];
    for text in &failing {
        let message = match parse_with(text, &env) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.message,
        };
        for secret in SECRETS {
            assert!(!message.contains(secret), "{secret} in {message}");
        }
    }
    // A config with every form parses, and its Debug shows no secret either.
    let text = [
        one("bedrock", BEDROCK, keys),
        one("bedrock", BEDROCK, "aws_credentials = \"web-identity\"")
            .replace("name = \"u\"", "name = \"u2\""),
        one("bedrock", BEDROCK, "api_key_env = \"SECRET_VAR\"")
            .replace("name = \"u\"", "name = \"u3\""),
        one("vertex", VERTEX, "access_token = \"ya29.access-token-4\"")
            .replace("name = \"u\"", "name = \"u4\""),
        one(
            "vertex",
            VERTEX,
            &format!("service_account_file = {KEY_FILE:?}"),
        )
        .replace("name = \"u\"", "name = \"u5\""),
    ]
    .concat();
    let config = parse_with(&text, &env).unwrap_or_else(|e| panic!("{}", e.message));
    let debug = format!("{config:?}");
    for secret in SECRETS.iter().chain(&["PRIVATE KEY"]) {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
}
