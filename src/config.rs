//! Configuration: the TOML file model, its defaults, and validation.
//!
//! A gateway that starts with a typo in its config is worse than one that refuses to start, so
//! everything is checked here, once, on the main thread: unknown keys, bad values, missing secrets.
//! Errors name the key and the line of the file. What comes out is a [`Config`] whose secrets are
//! resolved and whose upstream addresses are parsed, ready for the workers to share through an `Arc`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::stream::flush::{FlushMode, FlushPolicy};
use crate::stream::relay::RelaySettings;
use crate::upstream::url::{BaseUrl, Scheme};

/// The validated configuration the gateway runs on.
#[derive(Clone, Debug)]
pub struct Config {
    pub server: ServerConfig,
    pub stream: StreamConfig,
    pub upstreams: Vec<Upstream>,
}

/// `[server]`: listeners, workers and inbound limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// One address or several; each gets one `SO_REUSEPORT` listener per worker.
    pub listen: Listen,
    /// Worker threads; 0 means one per available core.
    pub workers: usize,
    pub pin_cores: bool,
    /// `auto` uses io_uring when the kernel allows it and falls back to epoll.
    pub io_driver: IoDriver,
    pub max_body_bytes: u64,
    /// The largest request head accepted (431 beyond). Also the size of each connection's buffer.
    pub max_head_bytes: usize,
    pub request_head_timeout_ms: u64,
    /// How long a request body may stall between two reads before the request gets 408.
    pub request_body_timeout_ms: u64,
    pub idle_timeout_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: Listen::One("127.0.0.1:8080".into()),
            workers: 0,
            pin_cores: true,
            io_driver: IoDriver::Auto,
            max_body_bytes: 32 * 1024 * 1024,
            max_head_bytes: 16 * 1024,
            request_head_timeout_ms: 10_000,
            request_body_timeout_ms: 30_000,
            idle_timeout_ms: 75_000,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Listen {
    One(String),
    Many(Vec<String>),
}

impl Listen {
    pub fn addresses(&self) -> Vec<&str> {
        match self {
            Listen::One(a) => vec![a.as_str()],
            Listen::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IoDriver {
    Auto,
    IoUring,
    Epoll,
}

/// `[stream]`: how event streams are relayed.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// The relay buffer of one stream, allocated once per stream.
    pub buffer_bytes: usize,
    /// A stream whose upstream sends nothing for this long is ended with an in-band error.
    pub upstream_idle_timeout_ms: u64,
    /// `coalesce`: gather events into fewer writes within the limits below; `immediate`: write
    /// each event as it arrives.
    pub mode: FlushMode,
    /// Whole events of at least this many bytes are written at once.
    pub flush_threshold_bytes: usize,
    /// No whole event waits longer than this for its write.
    pub flush_interval_ms: u64,
    /// A stream with nothing to send for this long gets a `: keep-alive` comment; 0 = never.
    pub keepalive_interval_ms: u64,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            buffer_bytes: 16 * 1024,
            upstream_idle_timeout_ms: 300_000,
            mode: FlushMode::Coalesce,
            flush_threshold_bytes: 8 * 1024,
            flush_interval_ms: 120,
            keepalive_interval_ms: 15_000,
        }
    }
}

impl StreamConfig {
    pub fn relay_settings(&self) -> RelaySettings {
        let ms = Duration::from_millis;
        RelaySettings {
            buffer_bytes: self.buffer_bytes,
            idle_timeout: ms(self.upstream_idle_timeout_ms),
            flush: FlushPolicy {
                mode: self.mode,
                threshold: self.flush_threshold_bytes,
                interval: ms(self.flush_interval_ms),
            },
            keepalive: (self.keepalive_interval_ms > 0).then(|| ms(self.keepalive_interval_ms)),
        }
    }

    fn check(&self) -> Result<(), (&'static str, String)> {
        if self.buffer_bytes < 1024 {
            return Err(("buffer_bytes", "must be at least 1024".into()));
        }
        if self.flush_threshold_bytes == 0 {
            // Above buffer_bytes it is harmless: a full buffer is written anyway.
            return Err(("flush_threshold_bytes", "must be at least 1".into()));
        }
        if self.upstream_idle_timeout_ms == 0 {
            return Err(("upstream_idle_timeout_ms", "must be at least 1".into()));
        }
        Ok(())
    }
}

/// The kinds of upstream ringgate can forward to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamKind {
    /// The Anthropic API, or anything that speaks it.
    Anthropic,
    /// The built-in mock: Anthropic-shaped answers served in-process, no key, no network.
    Mock,
}

/// A validated upstream.
#[derive(Clone, Debug)]
pub struct Upstream {
    pub name: String,
    pub kind: UpstreamKind,
    /// `None` for the built-in mock until the runtime binds it and fills in its address.
    pub base_url: Option<BaseUrl>,
    pub models: Vec<String>,
    pub priority: i32,
    pub credentials: Vec<Credential>,
    pub connect_timeout_ms: u64,
    pub response_timeout_ms: u64,
    /// Sent upstream when the client sent no `anthropic-version`.
    pub default_anthropic_version: String,
    pub mock: MockSettings,
    /// PEM file of CA certificates to trust instead of the public roots (https only).
    pub ca_file: Option<PathBuf>,
}

/// A credential with its secret resolved. `Debug` never shows the key.
#[derive(Clone)]
pub struct Credential {
    pub name: String,
    pub api_key: String,
    pub weight: u32,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("name", &self.name)
            .field("api_key", &"<redacted>")
            .field("weight", &self.weight)
            .finish()
    }
}

/// `[upstreams.mock]`: how the built-in mock paces its answers.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MockSettings {
    /// Pause between two streamed events, so a demo visibly streams.
    pub event_interval_ms: u64,
}

impl Default for MockSettings {
    fn default() -> Self {
        MockSettings {
            event_interval_ms: 20,
        }
    }
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
    upstreams: Vec<Spanned<FileUpstream>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUpstream {
    name: String,
    kind: UpstreamKind,
    base_url: Option<String>,
    #[serde(default = "all_models")]
    models: Vec<String>,
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    credentials: Vec<Spanned<FileCredential>>,
    #[serde(default = "default_connect_timeout")]
    connect_timeout_ms: u64,
    #[serde(default = "default_response_timeout")]
    response_timeout_ms: u64,
    #[serde(default = "default_anthropic_version")]
    default_anthropic_version: String,
    #[serde(default)]
    mock: MockSettings,
    ca_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCredential {
    name: String,
    api_key: Option<String>,
    api_key_env: Option<String>,
    #[serde(default = "default_weight")]
    weight: u32,
}

fn all_models() -> Vec<String> {
    vec!["*".into()]
}
fn default_connect_timeout() -> u64 {
    5_000
}
fn default_response_timeout() -> u64 {
    // Non-streaming answers arrive whole, after the model has finished: the official SDKs
    // wait up to 10 minutes for them, so the gateway must not give up sooner.
    600_000
}
fn default_anthropic_version() -> String {
    "2023-06-01".into()
}
fn default_weight() -> u32 {
    1
}

pub const ANTHROPIC_API_URL: &str = "https://api.anthropic.com";

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
        if file.upstreams.is_empty() {
            return Err(ConfigError {
                message: format!(
                    "{origin}: no [[upstreams]] configured; add one (kind = \"anthropic\" with a \
                     credential, or kind = \"mock\" to try ringgate without a key)"
                ),
            });
        }

        let mut upstreams = Vec::with_capacity(file.upstreams.len());
        for (i, spanned) in file.upstreams.iter().enumerate() {
            let at = spanned.span().start;
            let u = spanned.get_ref();
            let key = |k: &str| format!("upstreams[{i}].{k}");
            if u.name.trim().is_empty() {
                return Err(fail(at, &key("name"), "must not be empty".into()));
            }
            if upstreams.iter().any(|x: &Upstream| x.name == u.name) {
                return Err(fail(
                    at,
                    &key("name"),
                    format!("duplicate upstream name {:?}", u.name),
                ));
            }
            if u.models.is_empty() {
                return Err(fail(
                    at,
                    &key("models"),
                    "must list at least one pattern (\"*\" for all)".into(),
                ));
            }
            if u.connect_timeout_ms == 0 || u.response_timeout_ms == 0 {
                return Err(fail(
                    at,
                    &key("*_timeout_ms"),
                    "timeouts must be greater than 0".into(),
                ));
            }
            let base_url = match (u.kind, &u.base_url) {
                (UpstreamKind::Mock, None) => None,
                (UpstreamKind::Mock, Some(_)) => {
                    return Err(fail(at, &key("base_url"), "the built-in mock has no base_url; use kind = \"anthropic\" to forward to a server".into()))
                }
                (UpstreamKind::Anthropic, url) => {
                    let url = url.as_deref().unwrap_or(ANTHROPIC_API_URL);
                    let parsed = BaseUrl::parse(url).map_err(|e| fail(at, &key("base_url"), e))?;
                    if u.ca_file.is_some() && parsed.scheme != Scheme::Https {
                        return Err(fail(at, &key("ca_file"), "only applies to https:// upstreams".into()));
                    }
                    Some(parsed)
                }
            };
            let mut credentials = Vec::with_capacity(u.credentials.len());
            for (j, c) in u.credentials.iter().enumerate() {
                let cat = c.span().start;
                let c = c.get_ref();
                let ckey = |k: &str| format!("upstreams[{i}].credentials[{j}].{k}");
                let api_key = match (&c.api_key, &c.api_key_env) {
                    (Some(k), None) => k.clone(),
                    (None, Some(var)) => env(var).filter(|v| !v.is_empty()).ok_or_else(|| {
                        fail(
                            cat,
                            &ckey("api_key_env"),
                            format!("environment variable {var} is not set"),
                        )
                    })?,
                    (Some(_), Some(_)) => {
                        return Err(fail(
                            cat,
                            &ckey("api_key"),
                            "set api_key or api_key_env, not both".into(),
                        ))
                    }
                    (None, None) => {
                        return Err(fail(
                            cat,
                            &ckey("api_key"),
                            "missing: set api_key or api_key_env".into(),
                        ))
                    }
                };
                if api_key.is_empty() || api_key.bytes().any(|b| b.is_ascii_control() || b == b' ')
                {
                    return Err(fail(
                        cat,
                        &ckey("api_key"),
                        "must be non-empty, without spaces or control characters".into(),
                    ));
                }
                if c.weight == 0 {
                    return Err(fail(cat, &ckey("weight"), "must be at least 1".into()));
                }
                credentials.push(Credential {
                    name: c.name.clone(),
                    api_key,
                    weight: c.weight,
                });
            }
            if u.kind == UpstreamKind::Anthropic && credentials.is_empty() {
                return Err(fail(
                    at,
                    &key("credentials"),
                    "an anthropic upstream needs at least one [[upstreams.credentials]]".into(),
                ));
            }
            upstreams.push(Upstream {
                name: u.name.clone(),
                kind: u.kind,
                base_url,
                models: u.models.clone(),
                priority: u.priority,
                credentials,
                connect_timeout_ms: u.connect_timeout_ms,
                response_timeout_ms: u.response_timeout_ms,
                default_anthropic_version: u.default_anthropic_version.clone(),
                mock: u.mock.clone(),
                ca_file: u.ca_file.clone(),
            });
        }
        Ok(Config {
            server: file.server,
            stream: file.stream,
            upstreams,
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
            upstreams: vec![upstream],
        }
    }

    /// What this version will not act on yet, to be said at start-up rather than discovered.
    pub fn unused_parts(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.upstreams.len() > 1 {
            notes.push(format!(
                "{} upstreams are configured but this version forwards every request to the first ({:?}); \
                 routing across upstreams comes with the credential pool",
                self.upstreams.len(),
                self.upstreams[0].name
            ));
        }
        if let Some(c) = self.upstreams[0].credentials.get(1) {
            notes.push(format!(
                "upstream {:?} has {} credentials but this version uses only the first; {:?} and the rest are unused",
                self.upstreams[0].name,
                self.upstreams[0].credentials.len(),
                c.name
            ));
        }
        notes
    }

    /// Socket addresses to listen on, resolved.
    pub fn listen_addrs(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        self.server
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
            .collect()
    }
}

impl Upstream {
    /// A built-in mock upstream with default settings.
    pub fn mock(name: &str) -> Upstream {
        Upstream {
            name: name.into(),
            kind: UpstreamKind::Mock,
            base_url: None,
            models: all_models(),
            priority: 0,
            credentials: Vec::new(),
            connect_timeout_ms: default_connect_timeout(),
            response_timeout_ms: default_response_timeout(),
            default_anthropic_version: default_anthropic_version(),
            mock: MockSettings::default(),
            ca_file: None,
        }
    }
}

fn check_server(s: &ServerConfig) -> Result<(), (&'static str, String)> {
    if s.listen.addresses().is_empty() {
        return Err(("listen", "must name at least one address".into()));
    }
    for a in s.listen.addresses() {
        if a.parse::<SocketAddr>().is_err() {
            return Err((
                "listen",
                format!("{a:?} is not an IP:port address (e.g. \"127.0.0.1:8080\")"),
            ));
        }
    }
    if s.workers > 1024 {
        return Err(("workers", "at most 1024".into()));
    }
    if s.max_head_bytes < 1024 || s.max_head_bytes > 1024 * 1024 {
        return Err(("max_head_bytes", "must be between 1024 and 1048576".into()));
    }
    if s.max_body_bytes == 0 {
        return Err(("max_body_bytes", "must be greater than 0".into()));
    }
    for (k, v) in [
        ("request_head_timeout_ms", s.request_head_timeout_ms),
        ("request_body_timeout_ms", s.request_body_timeout_ms),
        ("idle_timeout_ms", s.idle_timeout_ms),
    ] {
        if v == 0 {
            return Err((k, "must be greater than 0".into()));
        }
    }
    Ok(())
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
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.message.contains(needle), "{text:?} -> {}", e.message);
        }
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
