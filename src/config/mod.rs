//! Configuration: the TOML file model, its defaults, and validation.
//!
//! A gateway that starts with a typo in its config is worse than one that refuses to start, so
//! everything is checked here, once, on the main thread: unknown keys, bad values, missing secrets.
//! Errors name the key and the line of the file. What comes out is a [`Config`] whose secrets are
//! resolved and whose upstream addresses are parsed, ready for the workers to share through an `Arc`.

mod access;
mod admin;
mod connections;
mod credentials;
mod limits;
mod logging;
mod routing;
mod server;
mod state;
mod stream;
mod upstreams;

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize, Serializer};
use toml::Spanned;

pub use access::{check_exposure, ApiKey};
pub use admin::AdminConfig;
pub use connections::{DnsConfig, PoolConfig};
pub use credentials::Credential;
pub use limits::{KeyLimitsConfig, ModelPrice, PricesConfig, UsdPrice};
pub use logging::{check_directives, LogConfig, LogFormat};
pub use routing::{ModelsConfig, RoutingConfig, Strategy};
pub use server::{IoDriver, Listen, ServerConfig};
pub use state::StateConfig;
pub use stream::StreamConfig;
pub use upstreams::{MockSettings, Upstream, UpstreamKind, ANTHROPIC_API_URL};

use crate::upstream::url::BaseUrl;
use access::FileApiKey;
use server::check_server;
use upstreams::FileUpstream;

/// The validated configuration the gateway runs on. It serializes (for the admin view) with
/// every secret replaced by [`REDACTED`].
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    pub server: ServerConfig,
    pub stream: StreamConfig,
    pub routing: RoutingConfig,
    pub models: ModelsConfig,
    pub pool: PoolConfig,
    pub dns: DnsConfig,
    pub upstreams: Vec<Upstream>,
    /// Client keys; empty means no client authentication (loopback listeners only).
    pub api_keys: Vec<ApiKey>,
    pub admin: AdminConfig,
    pub log: LogConfig,
    pub state: StateConfig,
    /// The limits of keys that set none of their own.
    pub limits: KeyLimitsConfig,
    pub prices: PricesConfig,
}

/// What the admin view shows in place of a secret.
pub const REDACTED: &str = "<redacted>";

/// Serializes an optional value by its `Display` (URLs as the file writes them).
fn display<T: fmt::Display, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    v.as_ref().map(|v| v.to_string()).serialize(s)
}

/// A configuration error: what is wrong, where, and (through the message) how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

// ---- the file model -------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    server: ServerConfig,
    stream: StreamConfig,
    routing: RoutingConfig,
    models: ModelsConfig,
    pool: PoolConfig,
    dns: DnsConfig,
    upstreams: Vec<Spanned<FileUpstream>>,
    api_keys: Vec<Spanned<FileApiKey>>,
    admin: admin::FileAdmin,
    log: LogConfig,
    state: StateConfig,
    limits: KeyLimitsConfig,
    prices: PricesConfig,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            message: format!("cannot read config file {}: {e}", path.display()),
        })?;
        Config::parse(&text, &path.display().to_string(), &|k| {
            std::env::var(k).ok()
        })
    }

    /// Parses and validates config text. `origin` names the file in messages; `env` resolves
    /// `*_env` keys (injectable so tests do not touch the process environment).
    pub fn parse(
        text: &str,
        origin: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| format!(" (line {})", line_of(text, s.start)))
                .unwrap_or_default();
            ConfigError {
                message: format!("{origin}{at}: {}", e.message()),
            }
        })?;
        let fail = |offset: usize, key: &str, what: String| ConfigError {
            message: format!("{origin} (line {}): {key}: {what}", line_of(text, offset)),
        };

        check_server(&file.server).map_err(|(key, what)| ConfigError {
            message: format!("{origin}: server.{key}: {what}"),
        })?;
        file.stream.check().map_err(|(key, what)| ConfigError {
            message: format!("{origin}: stream.{key}: {what}"),
        })?;
        file.routing.check().map_err(|(key, what)| ConfigError {
            message: format!("{origin}: routing.{key}: {what}"),
        })?;
        file.models.check().map_err(|(key, what)| ConfigError {
            message: format!("{origin}: models.{key}: {what}"),
        })?;
        file.pool.check().map_err(|(key, what)| ConfigError {
            message: format!("{origin}: pool.{key}: {what}"),
        })?;
        file.dns.check().map_err(|(key, what)| ConfigError {
            message: format!("{origin}: dns.{key}: {what}"),
        })?;
        file.log.check().map_err(|(key, what)| ConfigError {
            message: format!("{origin}: log.{key}: {what}"),
        })?;
        file.state.check().map_err(|(key, what)| ConfigError {
            message: format!("{origin}: state.{key}: {what}"),
        })?;
        access::check_limits(&file.limits).map_err(|(key, what)| ConfigError {
            message: format!("{origin}: limits.{key}: {what}"),
        })?;
        check_prices(&file.prices).map_err(|what| ConfigError {
            message: format!("{origin}: prices: {what}"),
        })?;
        if file.upstreams.is_empty() {
            return Err(ConfigError {
                message: format!(
                    "{origin}: no [[upstreams]] configured; add one (kind = \"anthropic\" with a \
                     credential, or kind = \"mock\" to try ringgate without a key)"
                ),
            });
        }

        let upstreams = upstreams::parse_all(&file.upstreams, env, &fail)?;
        let api_keys = access::parse_all(&file.api_keys, &file.limits, env, &fail)?;
        let admin = file.admin.parse(env).map_err(|e| ConfigError {
            message: format!("{origin}: {}", e.message),
        })?;
        Ok(Config {
            server: file.server,
            stream: file.stream,
            routing: file.routing,
            models: file.models,
            pool: file.pool,
            dns: file.dns,
            upstreams,
            api_keys,
            admin,
            log: file.log,
            state: file.state,
            limits: file.limits,
            prices: file.prices,
        })
    }

    /// The configuration used when no file is given: the Anthropic API with `ANTHROPIC_API_KEY`
    /// when it is set, otherwise the built-in mock.
    pub fn default_for_env(api_key: Option<String>) -> Config {
        let upstream = match api_key.filter(|k| !k.is_empty()) {
            Some(key) => Upstream {
                name: "anthropic".into(),
                kind: UpstreamKind::Anthropic,
                base_url: Some(BaseUrl::parse(ANTHROPIC_API_URL).expect("constant URL parses")),
                credentials: vec![Credential {
                    name: "ANTHROPIC_API_KEY".into(),
                    secret: crate::credentials::Secret::Key(key),
                    weight: 1,
                }],
                ..Upstream::mock("mock")
            },
            None => Upstream::mock("mock"),
        };
        Config {
            server: ServerConfig::default(),
            stream: StreamConfig::default(),
            routing: RoutingConfig::default(),
            models: ModelsConfig::default(),
            pool: PoolConfig::default(),
            dns: DnsConfig::default(),
            upstreams: vec![upstream],
            api_keys: Vec::new(),
            admin: AdminConfig::default(),
            log: LogConfig::default(),
            state: StateConfig::default(),
            limits: KeyLimitsConfig::default(),
            prices: PricesConfig::default(),
        }
    }

    /// Settings that are valid but probably not what was meant, to be said at start-up rather
    /// than discovered from failed requests.
    pub fn warnings(&self) -> Vec<String> {
        use crate::routing::models::serves;
        let served = |model: &str| self.upstreams.iter().any(|u| serves(&u.models, model));
        (self.models.aliases.iter())
            .filter(|(_, target)| !served(target))
            .map(|(alias, target)| {
                format!(
                    "models.aliases.{alias} points to {target:?}, which no upstream's models \
                     patterns match: requests for {alias:?} will get 404"
                )
            })
            .collect()
    }

    /// Socket addresses to listen on, resolved; refused when one is exposed beyond loopback
    /// without client keys.
    pub fn listen_addrs(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        let addrs = self
            .server
            .listen
            .addresses()
            .into_iter()
            .map(|a| {
                a.parse::<SocketAddr>().map_err(|_| ConfigError {
                    message: format!(
                        "server.listen: {a:?} is not an IP:port address (e.g. \"127.0.0.1:8080\" or \"[::1]:8080\")"
                    ),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        check_exposure(&self.api_keys, &addrs)?;
        Ok(addrs)
    }
}

/// Prices that are numbers of USD, and patterns that say something.
fn check_prices(p: &PricesConfig) -> Result<(), String> {
    let ok = |u: &UsdPrice| u.all().iter().all(|v| v.is_finite() && *v >= 0.0);
    for (i, m) in p.models.iter().enumerate() {
        if m.pattern.trim().is_empty() {
            return Err(format!("models[{i}].pattern: must not be empty"));
        }
        if !ok(&m.price()) {
            return Err(format!(
                "models[{i}]: prices must be USD per million tokens, 0 or more"
            ));
        }
    }
    match &p.unknown_model {
        Some(u) if !ok(u) => Err("unknown_model: prices must be USD per million tokens".into()),
        _ => Ok(()),
    }
}

/// A `name` that says which one it is: not blank, and not one of `taken` (logs, the admin view
/// and resets go by name). The error is the message for the `name` key.
fn check_name<'a>(
    name: &str,
    mut taken: impl Iterator<Item = &'a str>,
    what: &str,
) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if taken.any(|t| t == name) {
        return Err(format!("duplicate {what} {name:?}"));
    }
    Ok(())
}

/// Resolves a secret given inline (`field`) or through an environment variable (`field_env`).
/// Errors name the field at fault.
fn secret(
    value: &Option<String>,
    var: &Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
    field: &str,
) -> Result<String, (String, String)> {
    let secret = secret_value(value, var, env, field)?;
    if secret.is_empty() || secret.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err((
            field.into(),
            "must be non-empty, without spaces or control characters".into(),
        ));
    }
    Ok(secret)
}

/// A secret given either inline or by the environment variable that holds it; the error names
/// the field to fix, never the value.
fn secret_value(
    value: &Option<String>,
    var: &Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
    field: &str,
) -> Result<String, (String, String)> {
    Ok(match (value, var) {
        (Some(v), None) => v.clone(),
        (None, Some(var)) => env(var).filter(|v| !v.is_empty()).ok_or_else(|| {
            (
                format!("{field}_env"),
                format!("environment variable {var} is not set"),
            )
        })?,
        (Some(_), Some(_)) => {
            return Err((
                field.into(),
                format!("set {field} or {field}_env, not both"),
            ))
        }
        (None, None) => return Err((field.into(), format!("missing: set {field} or {field}_env"))),
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
