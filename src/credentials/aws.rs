//! AWS credentials for signing Bedrock requests: given in the configuration, or fetched where
//! a sidecar really finds them — an EKS pod's web identity (IRSA: `AssumeRoleWithWebIdentity`
//! at STS with the token the kubelet writes to a file) or an EC2 instance's role (IMDSv2).
//!
//! Fetching is blocking and runs on the refresher's thread ([`super::refresher`]). The answers
//! are read here: STS answers in XML, of which four elements matter, found by name (no XML
//! library for four tags); IMDS in JSON. The web-identity token file is read again at every
//! fetch, since the kubelet rotates it.

use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::Deserialize;

use super::http::{call, form};

/// Keys that sign a request.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Present with temporary credentials; sent as `x-amz-security-token`.
    pub session_token: Option<String>,
}

impl fmt::Debug for AwsKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKeys")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Where temporary AWS credentials are fetched from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AwsSource {
    /// `AssumeRoleWithWebIdentity` with the token in `token_file`.
    WebIdentity {
        sts_endpoint: String,
        token_file: PathBuf,
        role_arn: String,
        session_name: String,
    },
    /// The instance's role, through IMDSv2.
    Instance { imds_endpoint: String },
}

/// Fresh keys and when they expire.
pub type Fetched = (AwsKeys, Option<SystemTime>);

impl AwsSource {
    pub fn fetch(&self) -> Result<Fetched, String> {
        match self {
            AwsSource::WebIdentity {
                sts_endpoint,
                token_file,
                role_arn,
                session_name,
            } => {
                let token = std::fs::read_to_string(token_file).map_err(|e| {
                    format!(
                        "cannot read the web identity token {}: {e}",
                        token_file.display()
                    )
                })?;
                let body = form(&[
                    ("Action", "AssumeRoleWithWebIdentity"),
                    ("Version", "2011-06-15"),
                    ("RoleArn", role_arn),
                    ("RoleSessionName", session_name),
                    ("WebIdentityToken", token.trim()),
                ]);
                let headers = [("content-type", "application/x-www-form-urlencoded")];
                let answer = call("POST", sts_endpoint, &headers, Some(body.as_bytes()))?;
                sts_answer(&answer.ok("STS AssumeRoleWithWebIdentity")?)
            }
            AwsSource::Instance { imds_endpoint } => {
                let base = imds_endpoint.trim_end_matches('/');
                let ttl = [("x-aws-ec2-metadata-token-ttl-seconds", "21600")];
                let token = call("PUT", &format!("{base}/latest/api/token"), &ttl, Some(b""))?
                    .ok("IMDS token")?;
                let auth = [("x-aws-ec2-metadata-token", token.trim())];
                let roles_url = format!("{base}/latest/meta-data/iam/security-credentials/");
                let roles = call("GET", &roles_url, &auth, None)?.ok("IMDS role list")?;
                let role = roles
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .ok_or("IMDS: the instance has no IAM role")?;
                let creds = call("GET", &format!("{roles_url}{role}"), &auth, None)?
                    .ok("IMDS role credentials")?;
                imds_answer(&creds)
            }
        }
    }
}

/// The credentials in an STS `AssumeRoleWithWebIdentity` answer.
pub fn sts_answer(xml: &str) -> Result<Fetched, String> {
    let tag = |name: &str| -> Result<String, String> {
        let open = format!("<{name}>");
        let start = xml
            .find(&open)
            .ok_or_else(|| format!("STS answered without <{name}>"))?;
        let rest = &xml[start + open.len()..];
        let end = rest
            .find(&format!("</{name}>"))
            .ok_or_else(|| format!("STS answered an unclosed <{name}>"))?;
        Ok(unescape_xml(rest[..end].trim()))
    };
    let expires = humantime::parse_rfc3339_weak(&tag("Expiration")?)
        .map_err(|e| format!("STS answered an Expiration that is not a time: {e}"))?;
    Ok((
        AwsKeys {
            access_key_id: tag("AccessKeyId")?,
            secret_access_key: tag("SecretAccessKey")?,
            session_token: Some(tag("SessionToken")?),
        },
        Some(expires),
    ))
}

fn unescape_xml(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImdsCredentials {
    access_key_id: String,
    secret_access_key: String,
    token: String,
    expiration: String,
}

/// The credentials in an IMDS role answer.
pub fn imds_answer(json: &str) -> Result<Fetched, String> {
    let c: ImdsCredentials = serde_json::from_str(json)
        .map_err(|e| format!("IMDS answered credentials that cannot be read: {e}"))?;
    let expires = humantime::parse_rfc3339_weak(&c.expiration)
        .map_err(|e| format!("IMDS answered an Expiration that is not a time: {e}"))?;
    Ok((
        AwsKeys {
            access_key_id: c.access_key_id,
            secret_access_key: c.secret_access_key,
            session_token: Some(c.token),
        },
        Some(expires),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const STS: &str = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
      <SecretAccessKey>wJalr/K7MDENG&amp;bPxRfiCY</SecretAccessKey>
      <SessionToken>FwoGZXIvYXdz</SessionToken>
      <Expiration>2026-12-07T12:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#;

    #[test]
    fn sts_answers_are_read() {
        let (keys, expires) = sts_answer(STS).unwrap();
        assert_eq!(keys.access_key_id, "ASIAEXAMPLE");
        assert_eq!(keys.secret_access_key, "wJalr/K7MDENG&bPxRfiCY");
        assert_eq!(keys.session_token.as_deref(), Some("FwoGZXIvYXdz"));
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_644_800);
        assert_eq!(expires, Some(at));
        let e =
            sts_answer("<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>");
        assert!(e.unwrap_err().contains("<Expiration>"));
    }

    #[test]
    fn imds_answers_are_read_and_keys_never_show() {
        let json = r#"{"Code":"Success","LastUpdated":"2026-12-07T10:00:00Z","Type":"AWS-HMAC",
            "AccessKeyId":"ASIAIMDS","SecretAccessKey":"s3cr3t","Token":"t0k3n","Expiration":"2026-12-07T16:00:00Z"}"#;
        let (keys, expires) = imds_answer(json).unwrap();
        assert_eq!(
            (keys.access_key_id.as_str(), keys.session_token.as_deref()),
            ("ASIAIMDS", Some("t0k3n"))
        );
        assert!(expires.is_some());
        let shown = format!("{keys:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("t0k3n"),
            "{shown}"
        );
        assert!(imds_answer("{}").is_err());
    }
}
