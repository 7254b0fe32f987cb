//! `[[upstreams.credentials]]` refused, field by field: two forms at once, a form of another
//! kind, a field that goes with another form, a missing region or project, a missing variable,
//! a service account file that cannot be used. Each error names the key at fault (and its
//! line), and shows no secret.

use std::path::{Path, PathBuf};

use super::tests::{env, one, parse_with, BEDROCK, KEY_FILE, SECRETS, VERTEX};

/// Parses `text`, which must fail; its message, which must name `needle` and show no secret.
fn refused(text: &str, env: &dyn Fn(&str) -> Option<String>, needle: &str) -> String {
    let message = match parse_with(text, env) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.message,
    };
    assert!(
        message.contains(needle),
        "{text}\n-> {message}\n(wanted {needle:?})"
    );
    for secret in SECRETS {
        assert!(!message.contains(secret), "{secret} in {message}");
    }
    message
}

#[test]
fn two_forms_or_a_form_of_another_kind_are_refused_naming_the_field() {
    let secret = "aws_secret_access_key = \"aws-secret-key-2/K7MDENG+bPxRfiCY\"";
    let cases = [
        // Two forms at once.
        (
            one(
                "bedrock",
                BEDROCK,
                "api_key = \"sk-key-secret-1\"\naws_credentials = \"instance\"",
            ),
            "credentials[0].api_key: set one of api_key, aws_access_key_id with \
             aws_secret_access_key, or aws_credentials, not several",
        ),
        (
            one(
                "bedrock",
                BEDROCK,
                &format!(
                    "aws_access_key_id = \"AKIA\"\n{secret}\naws_credentials = \"web-identity\""
                ),
            ),
            "credentials[0].aws_access_key_id: set one of",
        ),
        (
            one(
                "vertex",
                VERTEX,
                &format!("service_account_file = {KEY_FILE:?}\ngcp_credentials = \"metadata\""),
            ),
            "credentials[0].service_account_file: set one of service_account_file, \
             gcp_credentials or access_token, not several",
        ),
        (
            one(
                "vertex",
                VERTEX,
                "access_token = \"ya29.access-token-4\"\ngcp_credentials = \"metadata\"",
            ),
            "credentials[0].access_token: set one of",
        ),
        // A form of another kind.
        (
            one(
                "anthropic",
                "",
                &format!("aws_access_key_id = \"AKIA\"\n{secret}"),
            ),
            "credentials[0].aws_access_key_id: an upstream of this kind takes api_key",
        ),
        (
            one("anthropic", "", "aws_credentials = \"instance\""),
            "credentials[0].aws_credentials: an upstream of this kind takes api_key",
        ),
        (
            one("gemini", "", "gcp_credentials = \"metadata\""),
            "credentials[0].gcp_credentials: an upstream of this kind takes api_key",
        ),
        (
            one("openai", "", "access_token = \"ya29.access-token-4\""),
            "credentials[0].access_token: an upstream of this kind takes api_key",
        ),
        (
            one("vertex", VERTEX, "aws_credentials = \"web-identity\""),
            "credentials[0].aws_credentials: an upstream of this kind takes \
             service_account_file, gcp_credentials or access_token",
        ),
        (
            one("vertex", VERTEX, "api_key = \"sk-key-secret-1\""),
            "credentials[0].api_key: an upstream of this kind takes service_account_file",
        ),
        (
            one(
                "bedrock",
                BEDROCK,
                &format!("service_account_file = {KEY_FILE:?}"),
            ),
            "credentials[0].service_account_file: an upstream of this kind takes api_key, \
             aws_access_key_id with aws_secret_access_key, or aws_credentials",
        ),
        (
            one("bedrock", BEDROCK, "access_token = \"ya29.access-token-4\""),
            "credentials[0].access_token: an upstream of this kind takes api_key, aws_",
        ),
        // None at all.
        (
            one("bedrock", BEDROCK, ""),
            "credentials[0].api_key: missing: set api_key, aws_access_key_id with",
        ),
        (
            one("vertex", VERTEX, ""),
            "missing: set service_account_file, gcp_credentials or access_token",
        ),
    ];
    for (text, needle) in cases {
        let message = refused(&text, &env, needle);
        // The line is the credential's own.
        let line = text
            .lines()
            .position(|l| l == "[[upstreams.credentials]]")
            .unwrap()
            + 1;
        let at = format!("test.toml (line {line}): upstreams[0].credentials[0].");
        assert!(message.starts_with(&at), "{message}");
    }
}

#[test]
fn aws_key_fields_are_checked_one_by_one() {
    let cases = [
        (
            "aws_access_key_id = \"AKIA\"",
            "credentials[0].aws_secret_access_key: missing: set aws_secret_access_key or \
             aws_secret_access_key_env",
        ),
        (
            "aws_secret_access_key = \"aws-secret-key-2/K7MDENG+bPxRfiCY\"",
            "credentials[0].aws_access_key_id: missing: set aws_access_key_id or \
             aws_access_key_id_env",
        ),
        (
            "aws_access_key_id = \"AKIA\"\naws_access_key_id_env = \"SECRET_VAR\"\n\
             aws_secret_access_key = \"aws-secret-key-2/K7MDENG+bPxRfiCY\"",
            "credentials[0].aws_access_key_id: set aws_access_key_id or \
             aws_access_key_id_env, not both",
        ),
        (
            "aws_access_key_id = \"AKIA\"\naws_secret_access_key = \"aws-secret-key-2 with a space\"",
            "credentials[0].aws_secret_access_key: must be non-empty, without spaces",
        ),
        (
            "aws_access_key_id = \"AKIA\"\naws_secret_access_key = \"aws-secret-key-2/K7MDENG+bPxRfiCY\"\n\
             aws_session_token = \"\"",
            "credentials[0].aws_session_token: must be non-empty",
        ),
        (
            "aws_access_key_id = \"AKIA\"\naws_secret_access_key = \"aws-secret-key-2/K7MDENG+bPxRfiCY\"\n\
             aws_session_token = \"aws-session-token-3\"\naws_session_token_env = \"SECRET_VAR\"",
            "credentials[0].aws_session_token: set aws_session_token or aws_session_token_env, \
             not both",
        ),
        (
            "aws_credentials = \"sso\"",
            "credentials[0].aws_credentials: \"sso\": expected \"web-identity\" or \"instance\"",
        ),
    ];
    for (lines, needle) in cases {
        refused(&one("bedrock", BEDROCK, lines), &env, needle);
    }
}

#[test]
fn endpoint_overrides_apply_only_to_their_own_form() {
    let web = "aws_credentials = \"web-identity\"";
    let instance = "aws_credentials = \"instance\"";
    let keys =
        "aws_access_key_id = \"AKIA\"\naws_secret_access_key = \"aws-secret-key-2/K7MDENG+bPxRfiCY\"";
    let sts = "sts_endpoint = \"http://127.0.0.1:9/\"";
    let imds = "imds_endpoint = \"http://127.0.0.1:9\"";
    let metadata = "metadata_url = \"http://127.0.0.1:9\"";
    let sts_only =
        "credentials[0].sts_endpoint: only applies with aws_credentials = \"web-identity\"";
    let imds_only =
        "credentials[0].imds_endpoint: only applies with aws_credentials = \"instance\"";
    let metadata_only =
        "credentials[0].metadata_url: only applies with gcp_credentials = \"metadata\"";
    let sa = format!("service_account_file = {KEY_FILE:?}");
    let cases = [
        (
            one("bedrock", BEDROCK, &format!("{instance}\n{sts}")),
            sts_only,
        ),
        (one("bedrock", BEDROCK, &format!("{keys}\n{sts}")), sts_only),
        (
            one("anthropic", "", &format!("api_key = \"k\"\n{sts}")),
            sts_only,
        ),
        (
            one("bedrock", BEDROCK, &format!("{web}\n{imds}")),
            imds_only,
        ),
        (
            one("bedrock", BEDROCK, &format!("api_key = \"k\"\n{imds}")),
            imds_only,
        ),
        (
            one("vertex", VERTEX, &format!("{sa}\n{metadata}")),
            metadata_only,
        ),
        (
            one(
                "vertex",
                VERTEX,
                &format!("access_token = \"t\"\n{metadata}"),
            ),
            metadata_only,
        ),
        (
            one("gemini", "", &format!("api_key = \"k\"\n{metadata}")),
            metadata_only,
        ),
    ];
    for (text, needle) in cases {
        refused(&text, &env, needle);
    }
}

#[test]
fn region_and_project_are_required_where_they_apply_and_refused_elsewhere() {
    let key = "api_key = \"k\"";
    let token = "access_token = \"t\"";
    let cases = [
        (
            one("bedrock", "", key),
            "upstreams[0].region: required for this kind",
        ),
        (
            one("bedrock", "region = \" \"", key),
            "upstreams[0].region: required for this kind",
        ),
        (
            one("vertex", "project = \"p\"", token),
            "upstreams[0].region: required for this kind",
        ),
        (
            one("vertex", "region = \"us-east5\"", token),
            "upstreams[0].project: required for kind = \"vertex\"",
        ),
        (
            one("anthropic", "region = \"us-east-1\"", key),
            "upstreams[0].region: only applies to kind = \"bedrock\" or \"vertex\"",
        ),
        (
            one("gemini", "project = \"p\"", key),
            "upstreams[0].project: only applies to kind = \"vertex\"",
        ),
        (
            one("bedrock", &format!("{BEDROCK}\nproject = \"p\""), key),
            "upstreams[0].project: only applies to kind = \"vertex\"",
        ),
        (
            "[[upstreams]]\nname = \"u\"\nkind = \"bedrock\"\nregion = \"us-east-1\"\n".into(),
            "upstreams[0].credentials: an upstream of kind \"bedrock\" needs at least one",
        ),
        (
            format!("[[upstreams]]\nname = \"u\"\nkind = \"vertex\"\n{VERTEX}\n"),
            "upstreams[0].credentials: an upstream of kind \"vertex\" needs at least one",
        ),
    ];
    for (text, needle) in cases {
        refused(&text, &env, needle);
    }
}

#[test]
fn missing_variables_are_named_with_the_field_that_wants_them() {
    let secret = "aws_secret_access_key = \"aws-secret-key-2/K7MDENG+bPxRfiCY\"";
    let cases = [
        (
            one("bedrock", BEDROCK, "api_key_env = \"UNSET_VAR\""),
            "credentials[0].api_key_env: environment variable UNSET_VAR is not set",
        ),
        (
            one(
                "bedrock",
                BEDROCK,
                &format!("aws_access_key_id_env = \"UNSET_VAR\"\n{secret}"),
            ),
            "credentials[0].aws_access_key_id_env: environment variable UNSET_VAR is not set",
        ),
        (
            one(
                "bedrock",
                BEDROCK,
                "aws_access_key_id = \"AKIA\"\naws_secret_access_key_env = \"EMPTY_VAR\"",
            ),
            "credentials[0].aws_secret_access_key_env: environment variable EMPTY_VAR is not set",
        ),
        (
            one(
                "bedrock",
                BEDROCK,
                &format!(
                    "aws_access_key_id = \"AKIA\"\n{secret}\naws_session_token_env = \"UNSET_VAR\""
                ),
            ),
            "credentials[0].aws_session_token_env: environment variable UNSET_VAR is not set",
        ),
        (
            one("vertex", VERTEX, "access_token_env = \"UNSET_VAR\""),
            "credentials[0].access_token_env: environment variable UNSET_VAR is not set",
        ),
    ];
    for (text, needle) in cases {
        refused(&text, &env, needle);
    }
    // Web identity reads the variables the EKS pod identity webhook sets.
    let text = one("bedrock", BEDROCK, "aws_credentials = \"web-identity\"");
    let without =
        |missing: &'static str| move |name: &str| if name == missing { None } else { env(name) };
    refused(
        &text,
        &without("AWS_ROLE_ARN"),
        "credentials[0].aws_credentials: \"web-identity\" needs the environment variable \
         AWS_ROLE_ARN",
    );
    refused(
        &text,
        &without("AWS_WEB_IDENTITY_TOKEN_FILE"),
        "credentials[0].aws_credentials: \"web-identity\" needs the environment variable \
         AWS_WEB_IDENTITY_TOKEN_FILE",
    );
    let empty_arn = |name: &str| match name {
        "AWS_ROLE_ARN" => Some(String::new()),
        other => env(other),
    };
    refused(
        &text,
        &empty_arn,
        "needs the environment variable AWS_ROLE_ARN",
    );
}

/// A file of its own in the temp dir, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, contents: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "ringgate-credentials-test-{}-{tag}.json",
            std::process::id()
        ));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn service_account_files_that_cannot_be_used_are_refused_without_showing_them() {
    let key_file = std::fs::read_to_string(KEY_FILE).unwrap();
    let key: serde_json::Value = serde_json::from_str(&key_file).unwrap();
    let pem = key["private_key"].as_str().unwrap().to_string();
    // A line of the key's PEM body: what must never show.
    let key_piece = pem.lines().nth(3).unwrap().to_string();
    let with = |field: &str, value: serde_json::Value| {
        let mut k = key.clone();
        k[field] = value;
        k.to_string()
    };
    let not_json = TempFile::new("not-json", &format!("{{\"private_key\": {pem:?},"));
    let user = TempFile::new("user", &with("type", "authorized_user".into()));
    let bad_key = TempFile::new(
        "bad-key",
        &with("private_key", pem.replace(&key_piece, "AAAA").into()),
    );
    let not_pem = TempFile::new("not-pem", &with("private_key", "not a key".into()));
    let missing = std::env::temp_dir().join("ringgate-credentials-test-no-such-file.json");
    let cases: [(&Path, &str); 5] = [
        (&missing, "credentials[0].service_account_file: cannot read"),
        (
            &not_json.0,
            "credentials[0].service_account_file: not a service account key file (line",
        ),
        (
            &user.0,
            "credentials[0].service_account_file: a key file of type \"authorized_user\"",
        ),
        (
            &bad_key.0,
            "credentials[0].service_account_file: its private_key is not",
        ),
        (
            &not_pem.0,
            "credentials[0].service_account_file: its private_key is not a PKCS#8 PEM key",
        ),
    ];
    for (path, needle) in cases {
        let text = one(
            "vertex",
            VERTEX,
            &format!("service_account_file = {:?}", path.to_str().unwrap()),
        );
        let message = refused(&text, &env, needle);
        if path == missing {
            assert!(message.contains(path.to_str().unwrap()), "{message}");
        }
        for shown in [key_piece.as_str(), "PRIVATE KEY"] {
            assert!(!message.contains(shown), "{message}");
        }
    }
}

#[test]
fn a_session_token_on_a_kind_that_takes_no_aws_keys_is_named_as_the_field_at_fault() {
    // The file has no api_key: an error naming one sends the reader looking for what is not
    // there.
    for lines in [
        "aws_session_token = \"aws-session-token-3\"",
        "aws_session_token_env = \"SECRET_VAR\"",
    ] {
        refused(
            &one("anthropic", "", lines),
            &env,
            "credentials[0].aws_session_token: an upstream of this kind takes api_key",
        );
        refused(
            &one("vertex", VERTEX, lines),
            &env,
            "credentials[0].aws_session_token: an upstream of this kind takes \
             service_account_file",
        );
    }
}

#[test]
fn an_unknown_gcp_credentials_value_is_quoted_as_written() {
    refused(
        &one("vertex", VERTEX, "gcp_credentials = \"adc\""),
        &env,
        "credentials[0].gcp_credentials: \"adc\": the one value taken is \"metadata\"",
    );
}
