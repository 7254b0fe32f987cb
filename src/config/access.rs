//! `[[api_keys]]`: who may use the gateway.
//!
//! Without keys anyone who can reach a listener spends the upstream credentials, so that is
//! allowed only when every listener is on a loopback address.

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize, Serializer};
use toml::Spanned;

use super::limits::KeyLimitsConfig;
use super::{check_name, secret, ConfigError};

/// A client key with its secret resolved. `Debug` never shows the key.
#[derive(Clone)]
pub struct ApiKey {
    /// Travels with the request into logs and usage records.
    pub name: String,
    pub key: String,
    /// Its limits, `[limits]` filled in where it sets none.
    pub limits: KeyLimitsConfig,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Serialize for ApiKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            name: &'a str,
            key: &'static str,
            limits: &'a KeyLimitsConfig,
        }
        View {
            name: &self.name,
            key: super::REDACTED,
            limits: &self.limits,
        }
        .serialize(s)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileApiKey {
    name: String,
    key: Option<String>,
    key_env: Option<String>,
    requests_per_minute: Option<u32>,
    input_tokens_per_minute: Option<u64>,
    output_tokens_per_minute: Option<u64>,
    max_concurrent: Option<u32>,
    daily_usd: Option<f64>,
    monthly_usd: Option<f64>,
}

impl FileApiKey {
    fn limits(&self) -> KeyLimitsConfig {
        KeyLimitsConfig {
            requests_per_minute: self.requests_per_minute,
            input_tokens_per_minute: self.input_tokens_per_minute,
            output_tokens_per_minute: self.output_tokens_per_minute,
            max_concurrent: self.max_concurrent,
            daily_usd: self.daily_usd,
            monthly_usd: self.monthly_usd,
        }
    }
}

pub(super) fn parse_all(
    file: &[Spanned<FileApiKey>],
    defaults: &KeyLimitsConfig,
    env: &dyn Fn(&str) -> Option<String>,
    fail: &dyn Fn(usize, &str, String) -> ConfigError,
) -> Result<Vec<ApiKey>, ConfigError> {
    let mut keys: Vec<ApiKey> = Vec::with_capacity(file.len());
    for (i, spanned) in file.iter().enumerate() {
        let at = spanned.span().start;
        let k = spanned.get_ref();
        let key = |field: &str| format!("api_keys[{i}].{field}");
        check_name(&k.name, keys.iter().map(|x| x.name.as_str()), "name")
            .map_err(|what| fail(at, &key("name"), what))?;
        let value = secret(&k.key, &k.key_env, env, "key")
            .map_err(|(field, what)| fail(at, &key(&field), what))?;
        if keys.iter().any(|x| x.key == value) {
            // Which name would the request carry? Refuse rather than pick one.
            return Err(fail(
                at,
                &key("key"),
                "the same key is configured twice".into(),
            ));
        }
        let limits = k.limits().over(defaults);
        check_limits(&limits).map_err(|(field, what)| fail(at, &key(field), what))?;
        keys.push(ApiKey {
            name: k.name.clone(),
            key: value,
            limits,
        });
    }
    Ok(keys)
}

/// Limits that would let nothing through, or amounts that are not USD.
pub(super) fn check_limits(l: &KeyLimitsConfig) -> Result<(), (&'static str, String)> {
    let at_least_one = "must be at least 1 (leave it out for no limit)".to_string();
    for (field, value) in [
        ("requests_per_minute", l.requests_per_minute.map(u64::from)),
        ("input_tokens_per_minute", l.input_tokens_per_minute),
        ("output_tokens_per_minute", l.output_tokens_per_minute),
        ("max_concurrent", l.max_concurrent.map(u64::from)),
    ] {
        if value == Some(0) {
            return Err((field, at_least_one));
        }
    }
    // The most a budget counter holds (46 bits of micro-USD).
    let most = crate::limits::budget::SPENT_MAX as f64 / 1e6;
    for (field, value) in [("daily_usd", l.daily_usd), ("monthly_usd", l.monthly_usd)] {
        if value.is_some_and(|v| !v.is_finite() || v < 0.0 || v > most) {
            return Err((
                field,
                format!("must be a number of USD, from 0 to {most:.0} (leave it out for none)"),
            ));
        }
    }
    Ok(())
}

/// Refuses to serve non-loopback listeners without client keys.
pub fn check_exposure(api_keys: &[ApiKey], listen: &[SocketAddr]) -> Result<(), ConfigError> {
    match listen.iter().find(|a| !a.ip().is_loopback()) {
        Some(addr) if api_keys.is_empty() => Err(ConfigError {
            message: format!(
                "server.listen includes {addr}, which is not a loopback address, and no \
                 [[api_keys]] are configured: anyone who can reach it would use your upstream \
                 credentials. Add an [[api_keys]] entry (name, key_env) or listen on 127.0.0.1."
            ),
        }),
        _ => Ok(()),
    }
}
