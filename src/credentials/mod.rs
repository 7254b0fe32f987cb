//! Credentials: what proves to an upstream who the gateway is, in each form deployments have it.
//!
//! Most are a key sent as it is (`x-api-key`, `Authorization: Bearer`, `x-goog-api-key`, by the
//! upstream's kind). Cloud providers add two kinds that change: AWS keys that sign each request
//! (given, or temporary ones fetched from STS or the instance metadata service), and Google
//! access tokens (from a service account's key or the metadata server). Those are fetched off
//! the request path by one thread ([`refresher`]) into cells every worker reads without a lock
//! ([`cell`]); a request finds the current value there, or fails over when there is none.
//!
//! Secrets never show: `Debug` redacts them, errors name where a credential comes from, never
//! what it is.

pub mod aws;
pub mod cell;
pub mod google;
mod http;
pub mod refresher;
pub mod schedule;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use aws::{AwsKeys, AwsSource};
use cell::Cell;
use google::ServiceAccount;
use refresher::TokenSource;

/// A credential's secret, as the configuration gives it.
#[derive(Clone)]
pub enum Secret {
    /// A key or token sent as it is.
    Key(String),
    /// AWS keys given in the configuration.
    AwsKeys(AwsKeys),
    /// AWS keys fetched from a web identity or the instance.
    AwsFetched(AwsSource),
    /// A Google service account's key file.
    ServiceAccount(PathBuf, Arc<ServiceAccount>),
    /// The metadata server of a GCE VM or GKE pod, at this base URL.
    GoogleMetadata(String),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Key(_) => f.write_str("Key(<redacted>)"),
            Secret::AwsKeys(keys) => write!(f, "AwsKeys({keys:?})"),
            Secret::AwsFetched(source) => write!(f, "AwsFetched({source:?})"),
            Secret::ServiceAccount(path, sa) => {
                write!(f, "ServiceAccount({}, {})", path.display(), sa.client_email)
            }
            Secret::GoogleMetadata(url) => write!(f, "GoogleMetadata({url})"),
        }
    }
}

impl Secret {
    /// What identifies the credential across a reload: its key where it is one (compared, never
    /// shown), else where it comes from.
    pub fn identity(&self) -> String {
        match self {
            Secret::Key(key) => format!("key:{key}"),
            Secret::AwsKeys(k) => format!(
                "aws:{}:{}:{}",
                k.access_key_id,
                k.secret_access_key,
                k.session_token.as_deref().unwrap_or("")
            ),
            Secret::AwsFetched(source) => format!("aws-fetched:{source:?}"),
            Secret::ServiceAccount(path, sa) => format!(
                "service-account:{}:{}:{}",
                path.display(),
                sa.client_email,
                sa.private_key_id
            ),
            Secret::GoogleMetadata(url) => format!("metadata:{url}"),
        }
    }

    /// How it is used on the request path. Fetched credentials are registered with the
    /// refresher under `name` (for the log), and share the cell of an earlier registration.
    pub fn auth(&self, name: &str) -> Auth {
        match self {
            Secret::Key(key) => Auth::Key(key.clone()),
            Secret::AwsKeys(keys) => Auth::Aws(Arc::new(Cell::fixed(keys.clone()))),
            Secret::AwsFetched(source) => {
                Auth::Aws(refresher::aws(&self.identity(), name, source.clone()))
            }
            Secret::ServiceAccount(_, sa) => Auth::Token(refresher::token(
                &self.identity(),
                name,
                TokenSource::ServiceAccount(sa.clone()),
            )),
            Secret::GoogleMetadata(url) => Auth::Token(refresher::token(
                &self.identity(),
                name,
                TokenSource::Metadata(url.clone()),
            )),
        }
    }
}

/// A credential as requests use it.
#[derive(Clone)]
pub enum Auth {
    /// None at all (a keyless upstream).
    None,
    Key(String),
    /// AWS keys that sign each request.
    Aws(Arc<Cell<AwsKeys>>),
    /// An access token, sent as `Authorization: Bearer`.
    Token(Arc<Cell<String>>),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Auth::None => "None",
            Auth::Key(_) => "Key(<redacted>)",
            Auth::Aws(_) => "Aws(<redacted>)",
            Auth::Token(_) => "Token(<redacted>)",
        })
    }
}
