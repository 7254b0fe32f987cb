//! `[[upstreams.credentials]]`: the secret of each credential, in the forms its upstream's kind
//! takes.
//!
//! Every kind but Vertex takes a key (`api_key`, or `api_key_env` naming the variable that holds
//! it). Bedrock also takes AWS keys (`aws_access_key_id` / `aws_secret_access_key` /
//! `aws_session_token`, each also as `*_env`) or fetched ones (`aws_credentials = "web-identity"` or `"instance"`); Vertex
//! takes a service account's key file, the metadata server (`gcp_credentials = "metadata"`) or
//! an access token someone else refreshes (`access_token` / `access_token_env`). A credential
//! states exactly one of the forms its kind takes; errors name the key at fault, never a value.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};

use super::upstreams::UpstreamKind;
use super::{secret, REDACTED};
use crate::credentials::aws::{AwsKeys, AwsSource};
use crate::credentials::google::{ServiceAccount, METADATA_URL};
use crate::credentials::Secret;

/// Where the instance metadata service is, on EC2.
pub const IMDS_URL: &str = "http://169.254.169.254";

/// A credential with its secret resolved. `Debug` and `Serialize` never show the secret.
#[derive(Clone, Debug)]
pub struct Credential {
    pub name: String,
    pub secret: Secret,
    pub weight: u32,
}

impl Serialize for Credential {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            name: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            api_key: Option<&'static str>,
            /// Where a secret that is not a key comes from.
            #[serde(skip_serializing_if = "Option::is_none")]
            source: Option<String>,
            weight: u32,
        }
        let (api_key, source) = match &self.secret {
            Secret::Key(_) => (Some(REDACTED), None),
            // The key id is no secret, but its end is enough to tell keys apart.
            Secret::AwsKeys(k) => (None, Some(format!("aws keys …{}", tail(&k.access_key_id)))),
            Secret::AwsFetched(AwsSource::WebIdentity { role_arn, .. }) => {
                (None, Some(format!("aws web identity, role {role_arn}")))
            }
            Secret::AwsFetched(AwsSource::Instance { imds_endpoint }) => {
                (None, Some(format!("aws instance role via {imds_endpoint}")))
            }
            Secret::ServiceAccount(path, sa) => (
                None,
                Some(format!(
                    "service account {} ({})",
                    sa.client_email,
                    path.display()
                )),
            ),
            Secret::GoogleMetadata(url) => (None, Some(format!("metadata server {url}"))),
        };
        View {
            name: &self.name,
            api_key,
            source,
            weight: self.weight,
        }
        .serialize(s)
    }
}

/// The last four characters of `id`.
fn tail(id: &str) -> &str {
    let at = id.char_indices().rev().nth(3).map_or(0, |(i, _)| i);
    &id[at..]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileCredential {
    pub name: String,
    api_key: Option<String>,
    api_key_env: Option<String>,
    aws_access_key_id: Option<String>,
    aws_access_key_id_env: Option<String>,
    aws_secret_access_key: Option<String>,
    aws_secret_access_key_env: Option<String>,
    aws_session_token: Option<String>,
    aws_session_token_env: Option<String>,
    aws_credentials: Option<String>,
    sts_endpoint: Option<String>,
    imds_endpoint: Option<String>,
    service_account_file: Option<PathBuf>,
    gcp_credentials: Option<String>,
    metadata_url: Option<String>,
    access_token: Option<String>,
    access_token_env: Option<String>,
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

/// An error: the field at fault and what is wrong.
type Fault = (String, String);

fn fault(field: &str, what: impl Into<String>) -> Fault {
    (field.to_string(), what.into())
}

impl FileCredential {
    /// The secret, for an upstream of `kind` in `region` (Bedrock's, for its STS endpoint).
    pub fn secret(
        &self,
        kind: UpstreamKind,
        region: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Secret, Fault> {
        let key = self.api_key.is_some() || self.api_key_env.is_some();
        let aws_keys = [&self.aws_access_key_id, &self.aws_access_key_id_env]
            .iter()
            .chain([&self.aws_secret_access_key, &self.aws_secret_access_key_env].iter())
            .chain([&self.aws_session_token, &self.aws_session_token_env].iter())
            .any(|f| f.is_some());
        let aws_fetched = self.aws_credentials.is_some();
        let token = self.access_token.is_some() || self.access_token_env.is_some();
        let sa = self.service_account_file.is_some();
        let gcp = self.gcp_credentials.is_some();
        let forms = [key, aws_keys, aws_fetched, token, sa, gcp];
        let stated = forms.iter().filter(|&&f| f).count();
        let (offered, allowed): (&str, &[bool]) = match kind {
            UpstreamKind::Bedrock => (
                "api_key, aws_access_key_id with aws_secret_access_key, or aws_credentials",
                &[key, aws_keys, aws_fetched],
            ),
            UpstreamKind::Vertex => (
                "service_account_file, gcp_credentials or access_token",
                &[sa, gcp, token],
            ),
            _ => ("api_key", &[key]),
        };
        if stated != 1 || allowed.iter().filter(|&&f| f).count() != 1 {
            let what = match stated {
                0 => format!("missing: set {offered}"),
                1 => format!("an upstream of this kind takes {offered}"),
                _ => format!("set one of {offered}, not several"),
            };
            return Err(fault(self.first_field(), what));
        }
        if self.sts_endpoint.is_some() && self.aws_credentials.as_deref() != Some("web-identity") {
            return Err(fault(
                "sts_endpoint",
                "only applies with aws_credentials = \"web-identity\"",
            ));
        }
        if self.imds_endpoint.is_some() && self.aws_credentials.as_deref() != Some("instance") {
            return Err(fault(
                "imds_endpoint",
                "only applies with aws_credentials = \"instance\"",
            ));
        }
        if self.metadata_url.is_some() && !gcp {
            return Err(fault(
                "metadata_url",
                "only applies with gcp_credentials = \"metadata\"",
            ));
        }
        if key {
            return Ok(Secret::Key(secret(
                &self.api_key,
                &self.api_key_env,
                env,
                "api_key",
            )?));
        }
        if token {
            let t = secret(
                &self.access_token,
                &self.access_token_env,
                env,
                "access_token",
            )?;
            return Ok(Secret::Key(t));
        }
        if aws_keys {
            let id = secret(
                &self.aws_access_key_id,
                &self.aws_access_key_id_env,
                env,
                "aws_access_key_id",
            )?;
            let secret_key = secret(
                &self.aws_secret_access_key,
                &self.aws_secret_access_key_env,
                env,
                "aws_secret_access_key",
            )?;
            let session_token = match (&self.aws_session_token, &self.aws_session_token_env) {
                (None, None) => None,
                (v, var) => Some(secret(v, var, env, "aws_session_token")?),
            };
            return Ok(Secret::AwsKeys(AwsKeys {
                access_key_id: id,
                secret_access_key: secret_key,
                session_token,
            }));
        }
        if let Some(how) = &self.aws_credentials {
            return self.aws_source(how, region, env).map(Secret::AwsFetched);
        }
        if let Some(path) = &self.service_account_file {
            let sa = ServiceAccount::load(path).map_err(|e| fault("service_account_file", e))?;
            return Ok(Secret::ServiceAccount(path.clone(), Arc::new(sa)));
        }
        match self.gcp_credentials.as_deref() {
            Some("metadata") => Ok(Secret::GoogleMetadata(
                self.metadata_url
                    .clone()
                    .unwrap_or_else(|| METADATA_URL.into()),
            )),
            other => Err(fault(
                "gcp_credentials",
                format!(
                    "{:?}: the one value taken is \"metadata\"",
                    other.unwrap_or_default()
                ),
            )),
        }
    }

    fn aws_source(
        &self,
        how: &str,
        region: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<AwsSource, Fault> {
        match how {
            "web-identity" => {
                let var = |name: &str| {
                    env(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                        fault(
                            "aws_credentials",
                            format!("\"web-identity\" needs the environment variable {name}"),
                        )
                    })
                };
                let token_file = PathBuf::from(var("AWS_WEB_IDENTITY_TOKEN_FILE")?);
                let role_arn = var("AWS_ROLE_ARN")?;
                let session_name = env("AWS_ROLE_SESSION_NAME")
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| "ringgate".into());
                let sts_endpoint = match &self.sts_endpoint {
                    Some(url) => url.clone(),
                    None => format!(
                        "https://sts.{}.amazonaws.com/",
                        region.unwrap_or("us-east-1")
                    ),
                };
                Ok(AwsSource::WebIdentity {
                    sts_endpoint,
                    token_file,
                    role_arn,
                    session_name,
                })
            }
            "instance" => Ok(AwsSource::Instance {
                imds_endpoint: self
                    .imds_endpoint
                    .clone()
                    .unwrap_or_else(|| IMDS_URL.into()),
            }),
            other => Err(fault(
                "aws_credentials",
                format!("{other:?}: expected \"web-identity\" or \"instance\""),
            )),
        }
    }

    /// The first secret field the credential sets, to name in an error (`api_key` if none).
    fn first_field(&self) -> &'static str {
        let fields: [(&'static str, bool); 8] = [
            (
                "api_key",
                self.api_key.is_some() || self.api_key_env.is_some(),
            ),
            (
                "aws_access_key_id",
                self.aws_access_key_id.is_some() || self.aws_access_key_id_env.is_some(),
            ),
            (
                "aws_secret_access_key",
                self.aws_secret_access_key.is_some() || self.aws_secret_access_key_env.is_some(),
            ),
            (
                "aws_session_token",
                self.aws_session_token.is_some() || self.aws_session_token_env.is_some(),
            ),
            ("aws_credentials", self.aws_credentials.is_some()),
            (
                "access_token",
                self.access_token.is_some() || self.access_token_env.is_some(),
            ),
            ("service_account_file", self.service_account_file.is_some()),
            ("gcp_credentials", self.gcp_credentials.is_some()),
        ];
        fields
            .iter()
            .find(|(_, set)| *set)
            .map_or("api_key", |(name, _)| name)
    }
}

#[cfg(test)]
#[path = "credentials_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "credentials_refusals_tests.rs"]
mod refusal_tests;
