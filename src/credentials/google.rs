//! Google access tokens for Vertex AI: from a service account's key (a JWT signed RS256 with it,
//! exchanged at the key file's `token_uri`) or from the metadata server of a GCE VM or a GKE pod.
//!
//! The JWT is built here with `ring` (RSA PKCS#1 v1.5 with SHA-256, as RS256 is), not with a
//! JWT library: it is one header, one claim set and one signature. The OAuth client libraries
//! need an async runtime of their own, and the refresher needs none.

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivatePkcs8KeyDer;
use serde::Deserialize;

use super::http::{call, form};

/// The scope Vertex AI's endpoints accept.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// How long an assertion asks its token to live (Google's maximum).
const ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);
/// Where the metadata server is, on GCE and GKE.
pub const METADATA_URL: &str = "http://metadata.google.internal";

/// A service account's key, read from its JSON key file.
pub struct ServiceAccount {
    pub client_email: String,
    pub private_key_id: String,
    pub token_uri: String,
    key: RsaKeyPair,
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("token_uri", &self.token_uri)
            .field("key", &"<redacted>")
            .finish()
    }
}

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: String,
    client_email: String,
    private_key_id: String,
    private_key: String,
    #[serde(default = "default_token_uri")]
    token_uri: String,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

impl ServiceAccount {
    /// Reads a key file; errors say what is wrong with it, never what it holds.
    pub fn load(path: &Path) -> Result<ServiceAccount, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        ServiceAccount::parse(&text)
    }

    pub fn parse(text: &str) -> Result<ServiceAccount, String> {
        let file: KeyFile = serde_json::from_str(text).map_err(|e| {
            format!(
                "not a service account key file (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        if file.kind != "service_account" {
            return Err(format!(
                "a key file of type {:?}, not \"service_account\"",
                file.kind
            ));
        }
        let der = PrivatePkcs8KeyDer::from_pem_slice(file.private_key.as_bytes())
            .map_err(|_| "its private_key is not a PKCS#8 PEM key".to_string())?;
        let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
            .map_err(|_| "its private_key is not an RSA key ring can sign with".to_string())?;
        Ok(ServiceAccount {
            client_email: file.client_email,
            private_key_id: file.private_key_id,
            token_uri: file.token_uri,
            key,
        })
    }

    /// The signed assertion asking for a token, issued at `now`.
    pub fn assertion(&self, now: SystemTime) -> Result<String, String> {
        let iat = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": self.private_key_id});
        let claims = serde_json::json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": iat,
            "exp": iat + ASSERTION_LIFETIME.as_secs(),
        });
        let mut jwt = URL_SAFE_NO_PAD.encode(header.to_string());
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                jwt.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "the service account key could not sign".to_string())?;
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(jwt)
    }

    /// An access token for the account, and when it expires.
    pub fn fetch(&self) -> Result<(String, Option<SystemTime>), String> {
        let now = SystemTime::now();
        let assertion = self.assertion(now)?;
        let body = form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &assertion),
        ]);
        let headers = [("content-type", "application/x-www-form-urlencoded")];
        let answer = call("POST", &self.token_uri, &headers, Some(body.as_bytes()))?;
        token_answer(&answer.ok("the token endpoint")?, now)
    }
}

/// Fetches the default service account's token from the metadata server at `base`.
pub fn metadata_token(base: &str) -> Result<(String, Option<SystemTime>), String> {
    let now = SystemTime::now();
    let url = format!(
        "{}/computeMetadata/v1/instance/service-accounts/default/token",
        base.trim_end_matches('/')
    );
    let answer = call("GET", &url, &[("metadata-flavor", "Google")], None)?;
    token_answer(&answer.ok("the metadata server")?, now)
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

/// The token in an OAuth token answer received at `now`.
pub fn token_answer(json: &str, now: SystemTime) -> Result<(String, Option<SystemTime>), String> {
    let t: TokenAnswer = serde_json::from_str(json)
        .map_err(|e| format!("a token answer that cannot be read: {e}"))?;
    if t.access_token.is_empty() {
        return Err("a token answer with an empty access_token".into());
    }
    // `expires_in` is the endpoint's number: one past what a `SystemTime` can hold (`u64::MAX`,
    // say) would overflow the addition and panic the refresher thread, so such an answer is
    // refused like any other malformed one.
    let expires = match t.expires_in {
        None => None,
        Some(s) => Some(
            now.checked_add(Duration::from_secs(s))
                .ok_or("a token answer whose expires_in is out of range")?,
        ),
    };
    Ok((t.access_token, expires))
}

#[cfg(test)]
#[path = "google_tests.rs"]
mod tests;
