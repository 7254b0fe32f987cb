//! The headers that prove the gateway to an upstream: a credential's value as the upstream's
//! dialect takes it.
//!
//! A key goes as it is, in the header its API reads (`x-api-key`, `Authorization: Bearer`,
//! `x-goog-api-key`); a Google access token as a bearer token; AWS keys sign the request with
//! SigV4 instead, over exactly the bytes that go (its host, path, `accept`, `content-type` and
//! body), so a signed request cannot be changed on the way without Bedrock refusing it.

use std::time::SystemTime;

use crate::credentials::Held;
use crate::dialect::bedrock::sigv4::{self, Credentials, Scope, BEDROCK};
use crate::dialect::Dialect;

/// The request a signature covers.
pub struct Signing<'a> {
    pub host: &'a str,
    /// The path and query as sent, the base URL's prefix included.
    pub target: &'a str,
    /// The request's own headers that are signed with it.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    /// The upstream's region (Bedrock's).
    pub region: &'a str,
    pub now: SystemTime,
}

/// The credential's headers, for an upstream of `dialect` (the Anthropic API's `x-api-key` is
/// written with its other headers).
pub fn headers(
    dialect: Dialect,
    held: &Held<'_>,
    signing: &Signing<'_>,
) -> Vec<(&'static str, String)> {
    if let Some(keys) = held.aws() {
        let (path, query) = signing
            .target
            .split_once('?')
            .unwrap_or((signing.target, ""));
        let request = sigv4::Request {
            method: "POST",
            host: signing.host,
            path,
            query,
            headers: signing.headers,
            body: signing.body,
        };
        let creds = Credentials {
            access_key_id: &keys.access_key_id,
            secret_access_key: &keys.secret_access_key,
            session_token: keys.session_token.as_deref(),
        };
        let scope = Scope {
            region: signing.region,
            service: BEDROCK,
        };
        let signed = sigv4::sign(&request, &creds, &scope, signing.now);
        return signed.headers().map(|(n, v)| (n, v.to_string())).collect();
    }
    let Some(key) = held.bearer() else {
        return Vec::new();
    };
    match dialect {
        Dialect::Anthropic => vec![("x-api-key", key.to_string())],
        Dialect::Gemini => vec![("x-goog-api-key", key.to_string())],
        // OpenAI's keys, Bedrock's API keys, Google's access tokens.
        Dialect::OpenAi | Dialect::Bedrock | Dialect::Vertex => {
            vec![("authorization", format!("Bearer {key}"))]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::aws::AwsKeys;

    fn signing(now: SystemTime) -> Signing<'static> {
        Signing {
            host: "bedrock-runtime.us-east-1.amazonaws.com",
            target: "/model/anthropic.claude-x-v1%3A0/invoke",
            headers: &[
                ("accept", "application/json"),
                ("content-type", "application/json"),
            ],
            body: b"{}",
            region: "us-east-1",
            now,
        }
    }

    #[test]
    fn keys_go_where_each_dialect_reads_them() {
        let s = signing(SystemTime::UNIX_EPOCH);
        let key = Held::Key("k1");
        assert_eq!(
            headers(Dialect::Anthropic, &key, &s),
            [("x-api-key", "k1".into())]
        );
        assert_eq!(
            headers(Dialect::Gemini, &key, &s),
            [("x-goog-api-key", "k1".into())]
        );
        for d in [Dialect::OpenAi, Dialect::Bedrock, Dialect::Vertex] {
            assert_eq!(
                headers(d, &key, &s),
                [("authorization", "Bearer k1".into())]
            );
        }
        assert!(headers(Dialect::OpenAi, &Held::None, &s).is_empty());
    }

    #[test]
    fn aws_keys_sign_what_is_sent() {
        let keys = AwsKeys {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("tok".into()),
        };
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let h = headers(Dialect::Bedrock, &Held::AwsKeys(&keys), &signing(at));
        let names: Vec<&str> = h.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            ["x-amz-date", "x-amz-security-token", "authorization"]
        );
        assert_eq!(h[0].1, "20231114T221320Z");
        let auth = &h[2].1;
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/bedrock/aws4_request, \
             SignedHeaders=accept;content-type;host;x-amz-date;x-amz-security-token, Signature="
            ),
            "{auth}"
        );
        // The signature covers the body: another body, another signature.
        let mut other = signing(at);
        other.body = b"{ }";
        let h2 = headers(Dialect::Bedrock, &Held::AwsKeys(&keys), &other);
        assert_ne!(h[2].1, h2[2].1);
    }
}
