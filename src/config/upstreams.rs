//! `[[upstreams]]` and their credentials: where requests go and with which keys.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};
use toml::Spanned;

use super::credentials::{Credential, FileCredential};
use super::{check_name, secret_value, ConfigError};
use crate::dialect::{self, Dialect};
use crate::routing::pool::MAX_UPSTREAMS_PER_TIER;
use crate::upstream::client::Timeouts;
use crate::upstream::proxy::{basic_authorization, Proxy, ProxyUrl};
use crate::upstream::url::{BaseUrl, Scheme};

/// The kinds of upstream ringgate can forward to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamKind {
    /// The Anthropic API, or anything that speaks it.
    Anthropic,
    /// The built-in mock: answers served in-process, no key, no network (Anthropic-shaped, or
    /// in the dialect `[upstreams.mock] dialect` names).
    Mock,
    /// An OpenAI Chat Completions server (vLLM, Ollama, OpenRouter, DeepSeek, …).
    #[serde(rename = "openai")]
    OpenAi,
    /// The Gemini API.
    Gemini,
    /// Claude on AWS Bedrock.
    Bedrock,
    /// Claude on Google Vertex AI.
    Vertex,
}

/// A validated upstream. Its `Serialize` (the admin view) shows no secret.
#[derive(Clone, Debug, Serialize)]
pub struct Upstream {
    pub name: String,
    pub kind: UpstreamKind,
    /// `None` for the built-in mock until the runtime binds it and fills in its address.
    #[serde(serialize_with = "super::display")]
    pub base_url: Option<BaseUrl>,
    pub models: Vec<String>,
    /// Bedrock's and Vertex's region (`global` for Vertex's global endpoint).
    pub region: Option<String>,
    /// Vertex's project.
    pub project: Option<String>,
    /// The client-facing model (aliases resolved) → this upstream's id for it.
    pub model_names: BTreeMap<String, String>,
    pub priority: i32,
    pub credentials: Vec<Credential>,
    #[serde(serialize_with = "timeouts_ms")]
    pub timeouts: Timeouts,
    /// Sent upstream when the client sent no `anthropic-version`.
    pub default_anthropic_version: String,
    pub mock: MockSettings,
    /// `[upstreams.openai]`: parameters this OpenAI-compatible server refuses.
    pub openai: dialect::openai::Options,
    /// PEM file of CA certificates to trust instead of the public roots (https only).
    pub ca_file: Option<PathBuf>,
    /// The outbound HTTP proxy to tunnel through, if egress must go through one.
    #[serde(serialize_with = "proxy_view")]
    pub proxy: Option<Proxy>,
}

/// The timeouts as the file sets them, in milliseconds.
fn timeouts_ms<S: Serializer>(t: &Timeouts, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Ms {
        connect_timeout_ms: u64,
        tls_handshake_timeout_ms: u64,
        first_byte_timeout_ms: u64,
        response_timeout_ms: u64,
    }
    Ms {
        connect_timeout_ms: t.connect.as_millis() as u64,
        tls_handshake_timeout_ms: t.tls_handshake.as_millis() as u64,
        first_byte_timeout_ms: t.first_byte.as_millis() as u64,
        response_timeout_ms: t.response.as_millis() as u64,
    }
    .serialize(s)
}

/// The proxy's address, and whether it is given credentials (never which).
fn proxy_view<S: Serializer>(p: &Option<Proxy>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct View {
        url: String,
        auth: Option<&'static str>,
    }
    p.as_ref()
        .map(|p| View {
            url: p.url.to_string(),
            auth: p.authorization.as_ref().map(|_| super::REDACTED),
        })
        .serialize(s)
}

/// `[upstreams.mock]`: how the built-in mock paces its answers.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MockSettings {
    /// Pause between two streamed events, so a demo visibly streams.
    pub event_interval_ms: u64,
    /// The API the mock answers in (and the gateway speaks to it).
    pub dialect: Dialect,
}

impl Default for MockSettings {
    fn default() -> Self {
        MockSettings {
            event_interval_ms: 20,
            dialect: Dialect::Anthropic,
        }
    }
}

impl Upstream {
    /// The API the gateway speaks to this upstream.
    pub fn dialect(&self) -> Dialect {
        dialect_of(self.kind, &self.mock)
    }

    /// This upstream's id for a client-facing model.
    pub fn model_name<'a>(&'a self, model: &'a str) -> &'a str {
        self.model_names.get(model).map_or(model, String::as_str)
    }
}

// ---- the file model -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileUpstream {
    name: String,
    kind: UpstreamKind,
    base_url: Option<String>,
    #[serde(default = "all_models")]
    models: Vec<String>,
    #[serde(default)]
    model_names: BTreeMap<String, String>,
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    credentials: Vec<Spanned<FileCredential>>,
    /// Bedrock's and Vertex's region.
    region: Option<String>,
    /// Vertex's project.
    project: Option<String>,
    #[serde(default = "default_connect_timeout")]
    connect_timeout_ms: u64,
    #[serde(default = "default_tls_handshake_timeout")]
    tls_handshake_timeout_ms: u64,
    #[serde(default = "default_first_byte_timeout")]
    first_byte_timeout_ms: u64,
    #[serde(default = "default_response_timeout")]
    response_timeout_ms: u64,
    #[serde(default = "default_anthropic_version")]
    default_anthropic_version: String,
    #[serde(default)]
    mock: MockSettings,
    openai: Option<dialect::openai::Options>,
    ca_file: Option<PathBuf>,
    proxy_url: Option<String>,
    proxy_auth: Option<String>,
    proxy_auth_env: Option<String>,
}

fn dialect_of(kind: UpstreamKind, mock: &MockSettings) -> Dialect {
    match kind {
        UpstreamKind::Anthropic => Dialect::Anthropic,
        UpstreamKind::Mock => mock.dialect,
        UpstreamKind::OpenAi => Dialect::OpenAi,
        UpstreamKind::Gemini => Dialect::Gemini,
        UpstreamKind::Bedrock => Dialect::Bedrock,
        UpstreamKind::Vertex => Dialect::Vertex,
    }
}

/// A kind as the file names it.
fn kind_name(kind: UpstreamKind) -> &'static str {
    match kind {
        UpstreamKind::Anthropic => "anthropic",
        UpstreamKind::Mock => "mock",
        UpstreamKind::OpenAi => "openai",
        UpstreamKind::Gemini => "gemini",
        UpstreamKind::Bedrock => "bedrock",
        UpstreamKind::Vertex => "vertex",
    }
}

/// Bedrock's runtime endpoint in `region`.
fn bedrock_url(region: &str) -> String {
    format!("https://bedrock-runtime.{region}.amazonaws.com")
}

/// Vertex AI's endpoint for `region` (`global` has one without a region in its host).
fn vertex_url(region: &str) -> String {
    match region {
        "global" => "https://aiplatform.googleapis.com".into(),
        r => format!("https://{r}-aiplatform.googleapis.com"),
    }
}

fn all_models() -> Vec<String> {
    vec!["*".into()]
}
fn default_connect_timeout() -> u64 {
    5_000
}
fn default_tls_handshake_timeout() -> u64 {
    10_000
}
fn default_first_byte_timeout() -> u64 {
    // A stream's head comes when generation starts; with a very long prompt that can take a
    // while, so the default is generous (and equal to the stream idle timeout).
    300_000
}
fn default_response_timeout() -> u64 {
    // Non-streaming answers arrive whole, after the model has finished: the official SDKs
    // wait up to 10 minutes for them, so the gateway must not give up sooner.
    600_000
}
fn default_anthropic_version() -> String {
    "2023-06-01".into()
}
fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub const ANTHROPIC_API_URL: &str = "https://api.anthropic.com";
/// Where an `openai` upstream is when it does not say: OpenAI's own API.
pub const OPENAI_API_URL: &str = "https://api.openai.com/v1";

/// Validates the upstreams of a file. `fail` builds an error naming the line of an offset.
pub(super) fn parse_all(
    file: &[Spanned<FileUpstream>],
    env: &dyn Fn(&str) -> Option<String>,
    fail: &dyn Fn(usize, &str, String) -> ConfigError,
) -> Result<Vec<Upstream>, ConfigError> {
    let mut upstreams = Vec::with_capacity(file.len());
    for (i, spanned) in file.iter().enumerate() {
        let at = spanned.span().start;
        let u = spanned.get_ref();
        let key = |k: &str| format!("upstreams[{i}].{k}");
        let names = upstreams.iter().map(|x: &Upstream| x.name.as_str());
        check_name(&u.name, names, "upstream name").map_err(|what| fail(at, &key("name"), what))?;
        if u.models.is_empty() {
            return Err(fail(
                at,
                &key("models"),
                "must list at least one pattern (\"*\" for all)".into(),
            ));
        }
        let timeouts = [
            u.connect_timeout_ms,
            u.tls_handshake_timeout_ms,
            u.first_byte_timeout_ms,
            u.response_timeout_ms,
        ];
        if timeouts.contains(&0) {
            return Err(fail(
                at,
                &key("*_timeout_ms"),
                "timeouts must be greater than 0".into(),
            ));
        }
        // A mock that plays Bedrock or Vertex gets a region and a project of its own.
        let dialect = dialect_of(u.kind, &u.mock);
        let mock_of = |d: Dialect| u.kind == UpstreamKind::Mock && dialect == d;
        let region = match (u.kind, &u.region) {
            (UpstreamKind::Bedrock | UpstreamKind::Vertex, Some(r)) if !r.trim().is_empty() => {
                r.trim().to_string()
            }
            (UpstreamKind::Bedrock | UpstreamKind::Vertex, _) => {
                return Err(fail(
                    at,
                    &key("region"),
                    "required for this kind (e.g. \"us-east-1\", or \"global\" for Vertex)".into(),
                ))
            }
            _ if mock_of(Dialect::Bedrock) || mock_of(Dialect::Vertex) => {
                u.region.clone().unwrap_or_else(|| "us-east-1".into())
            }
            (_, Some(_)) => {
                return Err(fail(
                    at,
                    &key("region"),
                    "only applies to kind = \"bedrock\" or \"vertex\"".into(),
                ))
            }
            (_, None) => String::new(),
        };
        let project = match (u.kind, &u.project) {
            (UpstreamKind::Vertex, Some(p)) if !p.trim().is_empty() => Some(p.trim().to_string()),
            (UpstreamKind::Vertex, _) => {
                return Err(fail(
                    at,
                    &key("project"),
                    "required for kind = \"vertex\"".into(),
                ))
            }
            _ if mock_of(Dialect::Vertex) => {
                Some(u.project.clone().unwrap_or_else(|| "ringgate-mock".into()))
            }
            (_, Some(_)) => {
                return Err(fail(
                    at,
                    &key("project"),
                    "only applies to kind = \"vertex\"".into(),
                ))
            }
            (_, None) => None,
        };
        let base_url = match (u.kind, &u.base_url) {
            (UpstreamKind::Mock, None) => None,
            (UpstreamKind::Mock, Some(_)) => {
                return Err(fail(at, &key("base_url"), "the built-in mock has no base_url; use kind = \"anthropic\" to forward to a server".into()))
            }
            (kind, url) => {
                let default = match kind {
                    UpstreamKind::OpenAi => OPENAI_API_URL.to_string(),
                    UpstreamKind::Gemini => dialect::gemini::DEFAULT_BASE_URL.to_string(),
                    UpstreamKind::Bedrock => bedrock_url(&region),
                    UpstreamKind::Vertex => vertex_url(&region),
                    _ => ANTHROPIC_API_URL.to_string(),
                };
                let url = url.as_deref().unwrap_or(&default);
                let parsed = BaseUrl::parse(url).map_err(|e| fail(at, &key("base_url"), e))?;
                if u.ca_file.is_some() && parsed.scheme != Scheme::Https {
                    return Err(fail(at, &key("ca_file"), "only applies to https:// upstreams".into()));
                }
                Some(parsed)
            }
        };
        let proxy = match (&u.proxy_url, u.kind) {
            (None, _) => {
                if u.proxy_auth.is_some() || u.proxy_auth_env.is_some() {
                    return Err(fail(at, &key("proxy_auth"), "needs a proxy_url".into()));
                }
                None
            }
            (Some(_), UpstreamKind::Mock) => {
                return Err(fail(
                    at,
                    &key("proxy_url"),
                    "the built-in mock is reached without a proxy".into(),
                ))
            }
            (Some(url), _) => {
                let url = ProxyUrl::parse(url).map_err(|e| fail(at, &key("proxy_url"), e))?;
                let authorization = match (&u.proxy_auth, &u.proxy_auth_env) {
                    (None, None) => None,
                    (value, var) => {
                        let user_pass = secret_value(value, var, env, "proxy_auth")
                            .map_err(|(field, what)| fail(at, &key(&field), what))?;
                        let header = basic_authorization(&user_pass)
                            .map_err(|e| fail(at, &key("proxy_auth"), e))?;
                        Some(header)
                    }
                };
                Some(Proxy { url, authorization })
            }
        };
        let mut credentials = Vec::with_capacity(u.credentials.len());
        for (j, c) in u.credentials.iter().enumerate() {
            let cat = c.span().start;
            let c = c.get_ref();
            let ckey = |k: &str| format!("upstreams[{i}].credentials[{j}].{k}");
            let names = credentials.iter().map(|x: &Credential| x.name.as_str());
            check_name(&c.name, names, "credential name")
                .map_err(|what| fail(cat, &ckey("name"), what))?;
            let region = (!region.is_empty()).then_some(region.as_str());
            let secret = (c.secret(u.kind, region, env))
                .map_err(|(field, what)| fail(cat, &ckey(&field), what))?;
            if c.weight == 0 {
                return Err(fail(cat, &ckey("weight"), "must be at least 1".into()));
            }
            credentials.push(Credential {
                name: c.name.clone(),
                secret,
                weight: c.weight,
            });
        }
        let keyless = matches!(u.kind, UpstreamKind::Mock | UpstreamKind::OpenAi);
        if !keyless && credentials.is_empty() {
            return Err(fail(
                at,
                &key("credentials"),
                format!(
                    "an upstream of kind {:?} needs at least one [[upstreams.credentials]]",
                    kind_name(u.kind)
                ),
            ));
        }
        if u.openai.is_some() && dialect_of(u.kind, &u.mock) != Dialect::OpenAi {
            return Err(fail(
                at,
                &key("openai"),
                "only applies to upstreams that speak the openai dialect (kind = \"openai\", or a \
                 mock with dialect = \"openai\")"
                    .into(),
            ));
        }
        if let Some((from, _)) =
            (u.model_names.iter()).find(|(from, to)| from.trim().is_empty() || to.trim().is_empty())
        {
            return Err(fail(
                at,
                &key(&format!("model_names.{from:?}")),
                "model names must not be empty".into(),
            ));
        }
        let peers = upstreams
            .iter()
            .filter(|x| x.priority == u.priority)
            .count();
        if peers >= MAX_UPSTREAMS_PER_TIER {
            return Err(fail(
                at,
                &key("priority"),
                format!(
                    "at most {MAX_UPSTREAMS_PER_TIER} upstreams may share a priority; give some \
                     of them another priority (credentials within an upstream are unlimited)"
                ),
            ));
        }
        upstreams.push(Upstream {
            name: u.name.clone(),
            kind: u.kind,
            base_url,
            models: u.models.clone(),
            region: (!region.is_empty()).then_some(region),
            project,
            model_names: u.model_names.clone(),
            priority: u.priority,
            credentials,
            timeouts: Timeouts {
                connect: ms(u.connect_timeout_ms),
                tls_handshake: ms(u.tls_handshake_timeout_ms),
                first_byte: ms(u.first_byte_timeout_ms),
                response: ms(u.response_timeout_ms),
            },
            default_anthropic_version: u.default_anthropic_version.clone(),
            mock: u.mock.clone(),
            openai: u.openai.unwrap_or_default(),
            ca_file: u.ca_file.clone(),
            proxy,
        });
    }
    Ok(upstreams)
}

impl Upstream {
    /// A built-in mock upstream with default settings.
    pub fn mock(name: &str) -> Upstream {
        Upstream {
            name: name.into(),
            kind: UpstreamKind::Mock,
            base_url: None,
            models: all_models(),
            region: None,
            project: None,
            model_names: BTreeMap::new(),
            priority: 0,
            credentials: Vec::new(),
            timeouts: Timeouts {
                connect: ms(default_connect_timeout()),
                tls_handshake: ms(default_tls_handshake_timeout()),
                first_byte: ms(default_first_byte_timeout()),
                response: ms(default_response_timeout()),
            },
            default_anthropic_version: default_anthropic_version(),
            mock: MockSettings::default(),
            openai: dialect::openai::Options::default(),
            ca_file: None,
            proxy: None,
        }
    }
}
