//! Each fetched credential form over real sockets: the gateway asks a fake of the real token
//! service (STS web identity, IMDSv2, Google's token endpoint with a service account's JWT, the
//! metadata server) exactly what the real one wants, and the Bedrock or Vertex upstream then gets
//! the fetched value in the header its API reads (a SigV4 signature recomputed here from what
//! the upstream received, or a bearer token).
//!
//! The refresher is one thread per process: every test has fakes of its own, so no two tests
//! share a credential's identity (and so its cell).

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{RsaKeyPair, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivatePkcs8KeyDer;
use support::cloud::*;
use support::*;

const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/ringgate-bedrock";
/// A model id with the `:0` that SigV4 signs encoded twice.
const BEDROCK_MODEL: &str = "anthropic.claude-sonnet-4-5-20250929-v1:0";
const VERTEX_MODEL: &str = "claude-sonnet-4-5@20250929";

/// A Bedrock upstream that answers every request with [`MESSAGE`] (checks are made on what it
/// recorded).
fn bedrock_upstream() -> Upstream {
    Upstream::start(|_| send(json_response(200, MESSAGE, "")))
}

/// Config for one Bedrock upstream at `upstream` in `region` with one credential of `lines`.
fn bedrock_config(upstream: &Upstream, region: &str, lines: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n\
         [[upstreams]]\nname = \"bedrock\"\nkind = \"bedrock\"\nregion = \"{region}\"\n\
         base_url = \"http://{}\"\n\
         [[upstreams.credentials]]\nname = \"fetched\"\n{lines}\n",
        upstream.addr
    )
}

/// Config for one Vertex upstream at `upstream` with one credential of `lines`.
fn vertex_config(upstream: &Upstream, lines: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n\
         [[upstreams]]\nname = \"vertex\"\nkind = \"vertex\"\nregion = \"us-east5\"\n\
         project = \"ringgate-proj\"\nbase_url = \"http://{}\"\n\
         [[upstreams.credentials]]\nname = \"fetched\"\n{lines}\n",
        upstream.addr
    )
}

/// One request for `model`: its answer must be the upstream's message.
fn served(gw: &ringgate::GatewayHandle, model: &str) {
    let r = request(gw.local_addr(), &messages_request(&body(model), ""));
    assert_eq!((r.status, r.text()), (200, MESSAGE.to_string()));
}

#[test]
fn web_identity_keys_from_sts_sign_bedrock_requests_as_they_are_received() {
    let keys = Keys::hour("webidentity1");
    let answer = keys.clone();
    let sts = Upstream::start(move |_| answer.sts_answer());
    let bedrock = bedrock_upstream();
    let dir = TempDir::new("web-identity");
    // The kubelet writes the token with a newline; STS gets it without.
    let token = "eyJhbGciOiJSUzI1NiJ9.web-identity-token-payload.c2lnbmF0dXJl";
    let token_file = dir.write("token", &format!("{token}\n"));
    let config = bedrock_config(
        &bedrock,
        "us-west-2",
        &format!(
            "aws_credentials = \"web-identity\"\nsts_endpoint = \"http://{}/\"",
            sts.addr
        ),
    );
    let gw = gateway_with_env(
        &config,
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap()),
            ("AWS_ROLE_ARN", ROLE_ARN),
            ("AWS_ROLE_SESSION_NAME", "ringgate-test-session"),
        ],
    );
    served(&gw, BEDROCK_MODEL);

    let calls = sts.requests();
    assert_eq!(calls.len(), 1, "fetched once, at start");
    let call = &calls[0];
    assert_eq!(target(call), ("POST".into(), "/".into()));
    assert_eq!(
        header(call, "content-type"),
        "application/x-www-form-urlencoded"
    );
    let fields = form(&call.body);
    let field = |k: &str| fields.get(k).map(String::as_str);
    assert_eq!(field("Action"), Some("AssumeRoleWithWebIdentity"));
    assert_eq!(field("Version"), Some("2011-06-15"));
    assert_eq!(field("RoleArn"), Some(ROLE_ARN));
    assert_eq!(field("RoleSessionName"), Some("ringgate-test-session"));
    assert_eq!(field("WebIdentityToken"), Some(token));
    assert_eq!(fields.len(), 5, "{fields:?}");

    let sent = bedrock.requests();
    assert_eq!(sent.len(), 1);
    let r = &sent[0];
    assert_eq!(
        target(r),
        (
            "POST".into(),
            "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke".into()
        )
    );
    assert_eq!(header(r, "x-amz-security-token"), keys.session_token);
    let authorization = header(r, "authorization");
    let date = &header(r, "x-amz-date")[..8];
    let prefix = format!(
        "AWS4-HMAC-SHA256 Credential={}/{date}/us-west-2/bedrock/aws4_request, \
         SignedHeaders=accept;content-type;host;x-amz-date;x-amz-security-token, Signature=",
        keys.access_key_id
    );
    assert!(authorization.starts_with(&prefix), "{authorization}");
    let signature = &authorization[prefix.len()..];
    assert!(
        signature.len() == 64 && signature.bytes().all(|b| b.is_ascii_hexdigit()),
        "{signature}"
    );
    // What went on the wire is what was signed, with the keys STS gave.
    let signer = check_sigv4(r, &keys.secret_access_key, "us-west-2");
    assert_eq!(signer, keys.access_key_id);
    assert!(r.headers("x-api-key").is_empty(), "no Anthropic key too");
    gw.shutdown();
}

#[test]
fn instance_role_keys_come_from_imdsv2_with_its_session_token_on_every_read() {
    const IMDS_TOKEN: &str = "imds-session-token-AQAEAFTB";
    const ROLE: &str = "ringgate-node-role";
    let keys = Keys::hour("instancerole1");
    // It refuses a read without its session token: no header, no keys.
    let imds = fake_imds(&keys, IMDS_TOKEN, ROLE);
    let bedrock = bedrock_upstream();
    let config = bedrock_config(
        &bedrock,
        "eu-central-1",
        &format!(
            "aws_credentials = \"instance\"\nimds_endpoint = \"http://{}\"",
            imds.addr
        ),
    );
    let gw = gateway_with_env(&config, &[]);
    served(&gw, BEDROCK_MODEL);

    let calls: Vec<(String, String, Vec<String>)> = (imds.requests().iter())
        .map(|r| {
            let (method, path) = target(r);
            (method, path, r.headers("x-aws-ec2-metadata-token"))
        })
        .collect();
    let with_token = vec![IMDS_TOKEN.to_string()];
    assert_eq!(
        calls,
        [
            ("PUT".into(), "/latest/api/token".into(), vec![]),
            (
                "GET".into(),
                "/latest/meta-data/iam/security-credentials/".into(),
                with_token.clone()
            ),
            (
                "GET".into(),
                format!("/latest/meta-data/iam/security-credentials/{ROLE}"),
                with_token
            ),
        ]
    );
    let ttl = header(&imds.requests()[0], "x-aws-ec2-metadata-token-ttl-seconds");
    assert!(ttl.parse::<u32>().is_ok_and(|s| s > 0), "{ttl}");

    let r = &bedrock.requests()[0];
    assert_eq!(header(r, "x-amz-security-token"), keys.session_token);
    let signer = check_sigv4(r, &keys.secret_access_key, "eu-central-1");
    assert_eq!(signer, keys.access_key_id);
    gw.shutdown();
}

#[test]
fn a_service_account_signs_an_rs256_jwt_whose_token_goes_as_the_bearer() {
    const TOKEN: &str = "ya29.service-account-token-1";
    let token_endpoint = Upstream::start(|_| token_answer(TOKEN, 3599));
    let token_uri = format!("http://{}/token", token_endpoint.addr);
    let dir = TempDir::new("service-account");
    let key_file = dir.service_account(&token_uri);
    let vertex = Upstream::start(|_| send(json_response(200, MESSAGE, "")));
    let config = vertex_config(
        &vertex,
        &format!("service_account_file = {:?}", key_file.to_str().unwrap()),
    );
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let gw = gateway_with_env(&config, &[]);
    served(&gw, VERTEX_MODEL);
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();

    let calls = token_endpoint.requests();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(target(call), ("POST".into(), "/token".into()));
    assert_eq!(
        header(call, "content-type"),
        "application/x-www-form-urlencoded"
    );
    let fields = form(&call.body);
    assert_eq!(
        fields.get("grant_type").map(String::as_str),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    );
    assert_eq!(fields.len(), 2, "{fields:?}");
    let jwt = &fields["assertion"];
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "{jwt}");
    let decode = |p: &str| -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).expect("base64url")).expect("JSON")
    };
    let (head, claims) = (decode(parts[0]), decode(parts[1]));
    assert_eq!(
        head,
        serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "test-key-1"})
    );
    assert_eq!(
        claims["iss"],
        "ringgate-test@ringgate-test.iam.gserviceaccount.com"
    );
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/cloud-platform"
    );
    assert_eq!(claims["aud"], token_uri.as_str());
    let iat = claims["iat"].as_u64().unwrap();
    assert!(
        (before..=after).contains(&iat),
        "{iat} in {before}..={after}"
    );
    assert_eq!(claims["exp"].as_u64(), Some(iat + 3600));
    // Verified with the public half of the test key: Google would take it.
    let key: serde_json::Value = serde_json::from_str(SERVICE_ACCOUNT).unwrap();
    let pem = key["private_key"].as_str().unwrap();
    let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).unwrap();
    let pair = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap();
    let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pair.public().as_ref());
    let signed = &jwt[..parts[0].len() + 1 + parts[1].len()];
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    public
        .verify(signed.as_bytes(), &signature)
        .expect("an RS256 signature by the service account's key");

    let sent = vertex.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        target(&sent[0]),
        (
            "POST".into(),
            // The model id is one path segment: its `@` goes encoded.
            "/v1/projects/ringgate-proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict".to_string()
        )
    );
    assert_eq!(header(&sent[0], "authorization"), format!("Bearer {TOKEN}"));
    gw.shutdown();
}

#[test]
fn the_metadata_server_is_asked_with_metadata_flavor_and_its_token_is_the_bearer() {
    const TOKEN: &str = "ya29.metadata-token-1";
    // The metadata server refuses a request without `Metadata-Flavor: Google` (403), as GCE's
    // does: a gateway that left it out would have no token.
    let metadata = Upstream::start(|r| match r.headers("metadata-flavor").as_slice() {
        [flavor] if flavor == "Google" => token_answer(TOKEN, 3599),
        _ => send(json_response(403, "{}", "")),
    });
    let vertex = Upstream::start(|_| send(json_response(200, MESSAGE, "")));
    let config = vertex_config(
        &vertex,
        &format!(
            "gcp_credentials = \"metadata\"\nmetadata_url = \"http://{}\"",
            metadata.addr
        ),
    );
    let gw = gateway_with_env(&config, &[]);
    served(&gw, VERTEX_MODEL);
    let asked: Vec<_> = metadata.requests().iter().map(target).collect();
    assert_eq!(
        asked,
        [(
            "GET".to_string(),
            "/computeMetadata/v1/instance/service-accounts/default/token".to_string()
        )]
    );
    let sent = vertex.requests();
    assert_eq!(header(&sent[0], "authorization"), format!("Bearer {TOKEN}"));
    // Fetched once, used for every request while it is valid.
    served(&gw, VERTEX_MODEL);
    assert_eq!(metadata.requests().len(), 1);
    assert_eq!(
        header(&vertex.requests()[1], "authorization"),
        format!("Bearer {TOKEN}")
    );
    gw.shutdown();
}
