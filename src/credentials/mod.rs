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
use std::time::SystemTime;

use aws::{AwsKeys, AwsSource};
use cell::{Cell, Fetched, Refusal};
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
            Secret::AwsKeys(keys) => Auth::AwsKeys(Arc::new(keys.clone())),
            Secret::AwsFetched(source) => {
                Auth::AwsFetched(refresher::aws(&self.identity(), name, source.clone()))
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
    /// AWS keys, given, that sign each request.
    AwsKeys(Arc<AwsKeys>),
    /// AWS keys, fetched, that sign each request.
    AwsFetched(Arc<Cell<AwsKeys>>),
    /// An access token, fetched, sent as `Authorization: Bearer`.
    Token(Arc<Cell<String>>),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Auth::None => "None",
            Auth::Key(_) => "Key(<redacted>)",
            Auth::AwsKeys(_) => "AwsKeys(<redacted>)",
            Auth::AwsFetched(_) => "AwsFetched(<redacted>)",
            Auth::Token(_) => "Token(<redacted>)",
        })
    }
}

/// A credential's value as one request holds it: borrowed where it is fixed, the fetched value
/// itself where it changes, so that an upstream's refusal can be tied to what it refused.
pub enum Held<'a> {
    None,
    Key(&'a str),
    AwsKeys(&'a AwsKeys),
    AwsFetched(&'a Cell<AwsKeys>, Arc<Fetched<AwsKeys>>),
    Token(&'a Cell<String>, Arc<Fetched<String>>),
}

impl Auth {
    /// The value a request sent at `now` goes with; for a fetched credential with no valid
    /// value, why not (the last fetch's failure, which names where, never what).
    pub fn hold(&self, now: SystemTime) -> Result<Held<'_>, String> {
        fn fetched<T>(cell: &Cell<T>, now: SystemTime) -> Result<Arc<Fetched<T>>, String> {
            cell.current(now).ok_or_else(|| match cell.failure() {
                Some(why) => format!("has no valid credential: {why}"),
                None => "has no credential fetched yet".to_string(),
            })
        }
        Ok(match self {
            Auth::None => Held::None,
            Auth::Key(key) => Held::Key(key),
            Auth::AwsKeys(keys) => Held::AwsKeys(keys),
            Auth::AwsFetched(cell) => Held::AwsFetched(cell, fetched(cell, now)?),
            Auth::Token(cell) => Held::Token(cell, fetched(cell, now)?),
        })
    }
}

impl Held<'_> {
    /// An upstream refused this value (401 or 403). A fixed one is to blame at once; a fetched
    /// one is fetched again first (the refresher is woken), and blamed only if the value
    /// fetched for that is refused too.
    pub fn refused(&self) -> Refusal {
        let refusal = match self {
            Held::None | Held::Key(_) | Held::AwsKeys(_) => return Refusal::Blame,
            Held::AwsFetched(cell, value) => cell.refused(value),
            Held::Token(cell, value) => cell.refused(value),
        };
        if refusal == Refusal::Refreshing {
            refresher::wake();
        }
        refusal
    }

    /// The AWS keys that sign the request, if it is signed.
    pub fn aws(&self) -> Option<&AwsKeys> {
        match self {
            Held::AwsKeys(keys) => Some(keys),
            Held::AwsFetched(_, fetched) => Some(&fetched.value),
            _ => None,
        }
    }

    /// The key or token sent as it is, if it is one.
    pub fn bearer(&self) -> Option<&str> {
        match self {
            Held::Key(key) => Some(key),
            Held::Token(_, fetched) => Some(&fetched.value),
            _ => None,
        }
    }
}
