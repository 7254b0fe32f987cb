//! Service account keys, assertions and token answers.

use super::*;
use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};

/// A key made for these tests (`openssl genpkey -algorithm RSA`), of no account anywhere.
const KEY_FILE: &str = include_str!("../../tests/data/test-service-account.json");

#[test]
fn an_assertion_is_an_rs256_jwt_with_the_claims_google_wants() {
    let sa = ServiceAccount::parse(KEY_FILE).unwrap();
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let jwt = sa.assertion(now).unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let decode = |p: &str| -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
    };
    assert_eq!(
        decode(parts[0]),
        serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "test-key-1"})
    );
    assert_eq!(
        decode(parts[1]),
        serde_json::json!({
            "iss": "ringgate-test@ringgate-test.iam.gserviceaccount.com",
            "scope": SCOPE,
            "aud": "http://127.0.0.1:1/token",
            "iat": 1_800_000_000u64,
            "exp": 1_800_003_600u64,
        })
    );
    let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, sa.key.public().as_ref());
    let signed = &jwt[..parts[0].len() + 1 + parts[1].len()];
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    public
        .verify(signed.as_bytes(), &signature)
        .expect("a valid RS256 signature");
    let shown = format!("{sa:?}");
    assert!(
        !shown.contains("PRIVATE KEY") && shown.contains("<redacted>"),
        "{shown}"
    );
}

#[test]
fn key_files_that_are_not_service_accounts_are_refused_without_showing_them() {
    let user =
        r#"{"type":"authorized_user","client_email":"a","private_key_id":"b","private_key":"c"}"#;
    assert!(ServiceAccount::parse(user)
        .unwrap_err()
        .contains("authorized_user"));
    let bad_key = KEY_FILE.replace("MII", "XXX");
    let e = ServiceAccount::parse(&bad_key).unwrap_err();
    assert!(!e.contains("XXX"), "{e}");
    assert!(ServiceAccount::parse("{").is_err());
}

#[test]
fn token_answers_are_read() {
    let now = UNIX_EPOCH + Duration::from_secs(100);
    let (token, expires) = token_answer(
        r#"{"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"}"#,
        now,
    )
    .unwrap();
    assert_eq!(token, "ya29.x");
    assert_eq!(expires, Some(now + Duration::from_secs(3599)));
    assert!(token_answer(r#"{"access_token":""}"#, now).is_err());
    assert!(token_answer(r#"{"error":"invalid_grant"}"#, now).is_err());
}

/// An `expires_in` past what a `SystemTime` holds is refused, not a panic of the refresher
/// (it overflowed `now + Duration` before; the fuzz target `credentials` checks this parser).
#[test]
fn token_answers_with_an_expiry_out_of_range_are_refused() {
    let now = UNIX_EPOCH + Duration::from_secs(100);
    let answer = format!(r#"{{"access_token":"ya29.x","expires_in":{}}}"#, u64::MAX);
    let e = token_answer(&answer, now).unwrap_err();
    assert!(e.contains("expires_in"), "{e}");
}
