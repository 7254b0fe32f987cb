//! Configuration: the TOML file model, its defaults, and validation.
//!
//! A gateway that starts with a typo in its config is worse than one that refuses to start, so
//! everything is checked here, once, on the main thread: unknown keys, bad values, missing secrets.
//! Errors name the key and the line of the file. What comes out is a [`Config`] whose secrets are
//! resolved and whose upstream addresses are parsed, ready for the workers to share through an `Arc`.

mod access;
mod admin;
mod connections;
mod logging;
mod routing;
mod server;
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
pub use logging::{check_directives, LogConfig, LogFormat};
pub use routing::{ModelsConfig, RoutingConfig, Strategy};
pub use server::{IoDriver, Listen, ServerConfig};
pub use stream::StreamConfig;
pub use upstreams::{Credential, MockSettings, Upstream, UpstreamKind, ANTHROPIC_API_URL};

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
        if file.upstreams.is_empty() {
            return Err(ConfigError {
                message: format!(
                    "{origin}: no [[upstreams]] configured; add one (kind = \"anthropic\" with a \
                     credential, or kind = \"mock\" to try ringgate without a key)"
                ),
            });
        }

        let upstreams = upstreams::parse_all(&file.upstreams, env, &fail)?;
        let api_keys = access::parse_all(&file.api_keys, env, &fail)?;
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
                    api_key: key,
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
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "test.toml", &|k| {
            (k == "SET_VAR").then(|| "sk-from-env".to_string())
        })
    }

    const MINIMAL: &str = r#"
[[upstreams]]
name = "anthropic"
kind = "anthropic"
[[upstreams.credentials]]
name = "primary"
api_key_env = "SET_VAR"
"#;

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.server.listen.addresses(), vec!["127.0.0.1:8080"]);
        assert_eq!(c.server.max_body_bytes, 33_554_432);
        assert_eq!(c.server.max_head_bytes, 16_384);
        assert_eq!(c.stream.buffer_bytes, 16_384);
        let u = &c.upstreams[0];
        assert_eq!(u.base_url.as_ref().unwrap().host, "api.anthropic.com");
        assert_eq!(u.credentials[0].api_key, "sk-from-env");
        assert_eq!(u.models, vec!["*"]);
    }

    #[test]
    fn routing_models_and_api_keys() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.routing.strategy, Strategy::RoundRobin);
        assert_eq!(c.routing.max_attempts, 3);
        assert!(c.api_keys.is_empty());
        let text = format!(
            "{MINIMAL}\n[routing]\nstrategy = \"fill-first\"\nsession_affinity = true\n\
             [models.aliases]\nsonnet = \"claude-sonnet-4-5\"\n\
             [[api_keys]]\nname = \"team-a\"\nkey = \"rg-team-a\"\n\
             [[api_keys]]\nname = \"team-b\"\nkey_env = \"SET_VAR\"\n"
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.routing.strategy, Strategy::FillFirst);
        assert!(c.routing.session_affinity);
        assert_eq!(c.models.alias("sonnet"), Some("claude-sonnet-4-5"));
        assert_eq!(c.models.alias("claude-x"), None);
        assert_eq!(c.api_keys[1].key, "sk-from-env");
        assert!(!format!("{c:?}").contains("rg-team-a"));

        let chained = format!("{MINIMAL}\n[models.aliases]\na = \"b\"\nb = \"claude-x\"\n");
        assert!(parse(&chained)
            .unwrap_err()
            .message
            .contains("models.aliases.a"));
        let twice = format!(
            "{MINIMAL}\n[[api_keys]]\nname = \"a\"\nkey = \"k1\"\n[[api_keys]]\nname = \"b\"\nkey = \"k1\"\n"
        );
        let e = parse(&twice).unwrap_err().message;
        assert!(e.contains("api_keys[1].key") && !e.contains("k1"), "{e}");
        let unset = format!("{MINIMAL}\n[[api_keys]]\nname = \"a\"\nkey_env = \"NOPE\"\n");
        assert!(parse(&unset)
            .unwrap_err()
            .message
            .contains("api_keys[0].key_env"));
        let bad = format!("{MINIMAL}\n[routing]\nmax_attempts = 0\n");
        assert!(parse(&bad)
            .unwrap_err()
            .message
            .contains("routing.max_attempts"));
    }

    #[test]
    fn exposed_listeners_need_client_keys() {
        let open = MINIMAL.replace(
            "[[upstreams]]",
            "[server]\nlisten = [\"127.0.0.1:1\", \"0.0.0.0:8080\"]\n[[upstreams]]",
        );
        let e = parse(&open).unwrap().listen_addrs().unwrap_err().message;
        assert!(
            e.contains("0.0.0.0:8080") && e.contains("[[api_keys]]"),
            "{e}"
        );
        let keyed = format!("{open}\n[[api_keys]]\nname = \"a\"\nkey = \"k\"\n");
        assert_eq!(parse(&keyed).unwrap().listen_addrs().unwrap().len(), 2);
        let v6 = MINIMAL.replace(
            "[[upstreams]]",
            "[server]\nlisten = \"[::1]:8080\"\n[[upstreams]]",
        );
        assert!(parse(&v6).unwrap().listen_addrs().is_ok());
    }

    #[test]
    fn unknown_key_names_the_line() {
        let e = parse("[server]\nlisten = \"127.0.0.1:1\"\nworkerz = 2\n").unwrap_err();
        assert!(e.message.contains("line 3"), "{}", e.message);
        assert!(e.message.contains("workerz"), "{}", e.message);
    }

    #[test]
    fn missing_env_var_is_named_with_its_line() {
        let text = MINIMAL.replace("SET_VAR", "UNSET_VAR");
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("UNSET_VAR is not set"), "{}", e.message);
        assert!(
            e.message.contains("credentials[0].api_key_env"),
            "{}",
            e.message
        );
        assert!(e.message.contains("(line 5)"), "{}", e.message);
    }

    #[test]
    fn rejects_bad_values() {
        for (text, needle) in [
            ("[server]\nlisten = \"localhost\"\n", "server.listen"),
            ("[server]\nmax_body_bytes = 0\n", "max_body_bytes"),
            ("", "no [[upstreams]]"),
            ("[[upstreams]]\nname = \"m\"\nkind = \"mock\"\nbase_url = \"http://x\"\n", "base_url"),
            ("[[upstreams]]\nname = \"a\"\nkind = \"anthropic\"\nbase_url = \"ftp://x\"\n", "base_url"),
            ("[[upstreams]]\nname = \"a\"\nkind = \"anthropic\"\nbase_url = \"http://127.0.0.1:1\"\n", "credentials"),
            ("[[upstreams]]\nname = \"a\"\nkind = \"martian\"\n", "(line 3): unknown variant `martian`"),
            (
                "[[upstreams]]\nname = \"m\"\nkind = \"mock\"\n[[upstreams.credentials]]\nname = \"c\"\napi_key = \"1\"\n[[upstreams.credentials]]\nname = \"c\"\napi_key = \"2\"\n",
                "credentials[1].name: duplicate credential name \"c\"",
            ),
            ("[[upstreams]]\nname = \"m\"\nkind = \"mock\"\n[[upstreams.credentials]]\nname = \" \"\napi_key = \"1\"\n", "credentials[0].name: must not be empty"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.message.contains(needle), "{text:?} -> {}", e.message);
        }
    }

    #[test]
    fn at_most_ten_upstreams_share_a_priority_and_stray_aliases_are_noted() {
        let mock = |i: usize, p: i32| {
            format!("[[upstreams]]\nname = \"m{i}\"\nkind = \"mock\"\npriority = {p}\n")
        };
        let ten: String = (0..10).map(|i| mock(i, 0)).collect();
        assert!(parse(&ten).is_ok());
        let e = parse(&(ten.clone() + &mock(10, 0))).unwrap_err();
        assert!(
            e.message
                .contains("at most 10 upstreams may share a priority"),
            "{}",
            e.message
        );
        assert!(parse(&(ten + &mock(10, 1))).is_ok());
        let c = parse(
            "[models.aliases]\nx = \"gpt-4\"\n[[upstreams]]\nname = \"m\"\nkind = \"mock\"\nmodels = [\"claude-*\"]\n",
        )
        .unwrap();
        assert_eq!(c.warnings().len(), 1);
        assert!(
            c.warnings()[0].contains("models.aliases.x"),
            "{:?}",
            c.warnings()
        );
    }

    #[test]
    fn debug_output_redacts_keys() {
        let c = parse(&MINIMAL.replace("api_key_env = \"SET_VAR\"", "api_key = \"sk-secret-123\""))
            .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("sk-secret-123"));
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn upstream_connections_settings() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(
            (
                c.pool.max_idle_per_origin,
                c.pool.idle_timeout_ms,
                c.pool.prewarm
            ),
            (32, 30_000, 0)
        );
        assert_eq!(c.dns.ttl_ms, 30_000);
        let t = c.upstreams[0].timeouts;
        assert_eq!(
            [t.connect, t.tls_handshake, t.first_byte, t.response].map(|d| d.as_millis()),
            [5_000, 10_000, 300_000, 600_000]
        );
        assert_eq!(c.upstreams[0].proxy, None);
        let proxied = MINIMAL.replace(
            "kind = \"anthropic\"\n",
            "kind = \"anthropic\"\nproxy_url = \"http://proxy.internal:3128\"\n",
        );
        let c = parse(&proxied).unwrap();
        let proxy = c.upstreams[0].proxy.as_ref().unwrap();
        let at = (proxy.url.host.as_str(), proxy.url.port);
        assert_eq!(
            (at, proxy.authorization.as_ref()),
            (("proxy.internal", 3128), None)
        );
        let upstream = |lines: &str| {
            format!(
                "[[upstreams]]\nname = \"a\"\nkind = \"anthropic\"\n{lines}\n\
                 [[upstreams.credentials]]\nname = \"c\"\napi_key = \"k\"\n"
            )
        };
        for (text, needle) in [
            (
                format!("[pool]\nprewarm = 40\n{MINIMAL}"),
                "pool.prewarm: cannot exceed max_idle_per_origin (32)",
            ),
            (
                format!("[pool]\nidle_timeout_ms = 0\n{MINIMAL}"),
                "pool.idle_timeout_ms",
            ),
            (format!("[dns]\nttl_ms = 0\n{MINIMAL}"), "dns.ttl_ms"),
            (
                "[[upstreams]]\nname = \"m\"\nkind = \"mock\"\nproxy_url = \"http://p:1\"\n".into(),
                "proxy_url: the built-in mock",
            ),
            (
                upstream("proxy_auth = \"u:p\""),
                "proxy_auth: needs a proxy_url",
            ),
            (
                upstream("proxy_url = \"http://u:hunter2@p:1\""),
                "must not contain credentials",
            ),
            (
                upstream("proxy_url = \"http://p:1\"\nproxy_auth = \"hunter2\""),
                "must be user:password",
            ),
            (
                upstream("tls_handshake_timeout_ms = 0"),
                "timeouts must be greater than 0",
            ),
        ] {
            let e = parse(&text).unwrap_err();
            assert!(e.message.contains(needle), "{text:?} -> {}", e.message);
            assert!(!e.message.contains("hunter2"), "{}", e.message);
        }
    }

    #[test]
    fn proxy_credentials_never_show() {
        let text = MINIMAL.replace(
            "kind = \"anthropic\"\n",
            "kind = \"anthropic\"\nproxy_url = \"http://p:1\"\nproxy_auth = \"user:hunter2 with space\"\n",
        );
        let c = parse(&text).unwrap();
        let auth = c.upstreams[0].proxy.as_ref().unwrap().authorization.clone();
        assert_eq!(
            auth.as_deref(),
            Some("Basic dXNlcjpodW50ZXIyIHdpdGggc3BhY2U=")
        );
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("dXNlcjpodW50ZXIy"),
            "{shown}"
        );
    }

    #[test]
    fn dialect_upstreams_and_model_names() {
        let c = parse(
            "[[upstreams]]\nname = \"vllm\"\nkind = \"openai\"\nbase_url = \"http://10.0.0.5:8000/v1\"\n\
             [upstreams.model_names]\n\"claude-sonnet-4-5\" = \"Qwen/Qwen3-Coder\"\n\
             [upstreams.openai]\nstream_options = false\ntop_k = true\n\
             [[upstreams]]\nname = \"gemini\"\nkind = \"gemini\"\n\
             [[upstreams.credentials]]\nname = \"g\"\napi_key_env = \"SET_VAR\"\n\
             [[upstreams]]\nname = \"openai\"\nkind = \"openai\"\n\
             [[upstreams.credentials]]\nname = \"o\"\napi_key = \"sk-o\"\n\
             [[upstreams]]\nname = \"m\"\nkind = \"mock\"\n[upstreams.mock]\ndialect = \"gemini\"\n",
        )
        .unwrap();
        let [vllm, gemini, openai, mock] = &c.upstreams[..] else {
            panic!("four upstreams")
        };
        use crate::dialect::Dialect;
        assert_eq!(vllm.dialect(), Dialect::OpenAi);
        assert!(
            vllm.credentials.is_empty(),
            "an OpenAI-compatible server may take no key"
        );
        assert_eq!(vllm.model_name("claude-sonnet-4-5"), "Qwen/Qwen3-Coder");
        assert_eq!(vllm.model_name("claude-haiku-4-5"), "claude-haiku-4-5");
        assert!(!vllm.openai.stream_options && vllm.openai.top_k && vllm.openai.user);
        assert_eq!(vllm.base_url.as_ref().unwrap().path_prefix, "/v1");
        assert_eq!(gemini.dialect(), Dialect::Gemini);
        assert_eq!(
            gemini.base_url.as_ref().unwrap().host,
            "generativelanguage.googleapis.com"
        );
        let url = openai.base_url.as_ref().unwrap();
        assert_eq!(
            (url.host.as_str(), url.path_prefix.as_str()),
            ("api.openai.com", "/v1")
        );
        assert_eq!(mock.dialect(), Dialect::Gemini);
        for (text, needle) in [
            (
                "[[upstreams]]\nname = \"g\"\nkind = \"gemini\"\n",
                "kind \"gemini\" needs at least one",
            ),
            (
                "[[upstreams]]\nname = \"m\"\nkind = \"mock\"\n[upstreams.openai]\ntop_k = true\n",
                "upstreams[0].openai: only applies",
            ),
            (
                "[[upstreams]]\nname = \"m\"\nkind = \"mock\"\n[upstreams.model_names]\n\"a\" = \"\"\n",
                "model names must not be empty",
            ),
            (
                "[[upstreams]]\nname = \"o\"\nkind = \"openai\"\n[upstreams.openai]\nstream_opts = true\n",
                "unknown field `stream_opts`",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.message.contains(needle), "{text:?} -> {}", e.message);
        }
        // A mock speaking OpenAI may take the OpenAI switches.
        assert!(parse(
            "[[upstreams]]\nname = \"m\"\nkind = \"mock\"\n[upstreams.mock]\ndialect = \"openai\"\n[upstreams.openai]\nuser = false\n"
        )
        .is_ok());
    }

    #[test]
    fn default_config_uses_mock_without_key() {
        assert_eq!(
            Config::default_for_env(None).upstreams[0].kind,
            UpstreamKind::Mock
        );
        let with_key = Config::default_for_env(Some("sk-x".into()));
        assert_eq!(with_key.upstreams[0].kind, UpstreamKind::Anthropic);
        assert_eq!(with_key.upstreams[0].credentials[0].api_key, "sk-x");
    }
}
