//! `[routing]` and `[models]`: how a credential is chosen for a request, how failures cool it
//! down, and which model names are aliases of others.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How the credentials of one priority tier share the load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Smooth weighted round-robin, fair across all worker cores.
    RoundRobin,
    /// The first available credential in configuration order takes everything.
    FillFirst,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    pub strategy: Strategy,
    /// Requests with the same `metadata.user_id` or `x-session-id` keep their credential while it
    /// is healthy, so prompt caches hit.
    pub session_affinity: bool,
    /// Attempts per request, the first included, before the last failure is returned.
    pub max_attempts: u32,
    /// Longest cooldown after a rate limit, whatever the upstream asks for.
    pub max_cooldown_ms: u64,
    /// Cooldown after a 529, a 5xx, a connect error or a timeout.
    pub transient_cooldown_ms: u64,
    /// How long a credential the upstream refused (401, 403) stays disabled.
    pub auth_failure_cooldown_ms: u64,
    /// Path prefixes beyond the endpoints ringgate knows (new beta endpoints, e.g.
    /// `"/v1/skills"`), forwarded as they are with an upstream credential in place of the
    /// client's. Off (empty) by default; the Admin API (`/v1/organizations`) is never forwarded.
    pub forward_paths: Vec<String>,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            strategy: Strategy::RoundRobin,
            session_affinity: false,
            max_attempts: 3,
            max_cooldown_ms: 30 * 60 * 1000,
            transient_cooldown_ms: 10_000,
            auth_failure_cooldown_ms: 30 * 60 * 1000,
            forward_paths: Vec::new(),
        }
    }
}

impl RoutingConfig {
    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        if self.max_attempts == 0 {
            return Err(("max_attempts", "must be at least 1".into()));
        }
        for (key, ms) in [
            ("max_cooldown_ms", self.max_cooldown_ms),
            ("transient_cooldown_ms", self.transient_cooldown_ms),
            ("auth_failure_cooldown_ms", self.auth_failure_cooldown_ms),
        ] {
            if ms == 0 {
                return Err((key, "must be at least 1".into()));
            }
        }
        for p in &self.forward_paths {
            check_forward_path(p).map_err(|why| ("forward_paths", format!("{p:?}: {why}")))?;
        }
        Ok(())
    }
}

/// A prefix that may be forwarded: an API path of its own, not one the gateway serves or must
/// never pass on.
fn check_forward_path(p: &str) -> Result<(), &'static str> {
    if !p.starts_with("/v1/") || p.len() <= "/v1/".len() {
        return Err("must be a path under /v1/, e.g. \"/v1/skills\"");
    }
    if p.bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'?')
    {
        return Err("must be a plain path, without spaces or a query");
    }
    if p.starts_with("/v1/organizations") {
        return Err("the Admin API is never forwarded");
    }
    let served = ["/v1/messages", "/v1/models", "/v1/files"];
    if served.iter().any(|s| p.starts_with(s) || s.starts_with(p)) {
        return Err("overlaps an endpoint ringgate serves itself");
    }
    Ok(())
}

/// `[models]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsConfig {
    /// `alias = "model id"`: requests for the alias go upstream as the model id.
    pub aliases: BTreeMap<String, String>,
}

impl ModelsConfig {
    pub(super) fn check(&self) -> Result<(), (String, String)> {
        for (alias, target) in &self.aliases {
            let key = || format!("aliases.{alias}");
            if target.trim().is_empty() || alias.trim().is_empty() {
                return Err((key(), "alias and model id must not be empty".into()));
            }
            if self.aliases.contains_key(target) {
                return Err((
                    key(),
                    format!(
                        "points to {target:?}, which is itself an alias; point it at a model id"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The model id `name` stands for, when it is an alias.
    pub fn alias(&self, name: &str) -> Option<&str> {
        self.aliases.get(name).map(String::as_str)
    }
}
