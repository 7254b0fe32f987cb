//! The credential pool: every upstream credential with its health, and the choice of one for
//! each attempt of a request.
//!
//! One pool is shared by all workers through an `Arc`, so round-robin is fair across cores and a
//! rate limit seen by one core cools the credential for all. Picking touches only atomics: the
//! health gates, and the cursor of the group of credentials that serve the model. A group is the
//! set of upstreams of one priority tier whose patterns match a model; its weighted order is
//! worked out the first time a model with that set is asked for, then reused.
//!
//! Time is passed in (`now_ms`, from [`Pool::now_ms`] in production), so every rule can be tested
//! with plain numbers.
//!
//! A reload builds a new pool with [`Pool::succeeding`]: health is held through `Arc`s so the new
//! pool shares it with the old one (see `carry` for which entries match), and requests still
//! finishing on the old configuration keep reporting into the same state.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, SystemTime};

use super::carry::{carry_over, CredentialKey, UpstreamKey};
use super::health::{
    model_key, unix_ms, Admit, CredentialHealth, HealthPolicy, Outcome, Reason, UpstreamHealth,
};
use super::models::serves;
use super::select::{affine, fill_first, round_robin, Schedule};
use crate::config::{Config, RoutingConfig, Strategy};
use crate::credentials::Auth;

/// Upstreams sharing one priority; their groups are indexed by a bitmask of them.
pub const MAX_UPSTREAMS_PER_TIER: usize = 10;

/// Model names remembered for the admin view (health keys models by a hash).
const MAX_NAMED_MODELS: usize = 256;

/// The name given to the one implicit credential of an upstream configured without any (the
/// built-in mock).
pub const KEYLESS: &str = "default";

pub struct Credential {
    /// Index of its upstream in the configuration.
    pub upstream: usize,
    pub name: String,
    /// What proves the gateway to the upstream; `Auth::None` for one that takes no key.
    pub auth: Auth,
    /// What identifies the secret across a reload (compared, never shown); `None` for none.
    identity: Option<String>,
    pub weight: u32,
    health: Arc<CredentialHealth>,
}

struct UpstreamEntry {
    name: String,
    patterns: Vec<String>,
    /// Where it is reached, for matching across a reload.
    endpoint: String,
    health: Arc<UpstreamHealth>,
}

struct Tier {
    /// Indices of its upstreams, in configuration order; bit `i` of a mask is `upstreams[i]`.
    upstreams: Vec<usize>,
    /// Indexed by mask, built on first use.
    groups: Box<[OnceLock<Group>]>,
}

struct Group {
    credentials: Vec<usize>,
    weights: Vec<u32>,
    schedule: Schedule,
    cursor: AtomicU64,
}

pub struct Pool {
    credentials: Vec<Credential>,
    upstreams: Vec<UpstreamEntry>,
    /// Highest priority first.
    tiers: Vec<Tier>,
    strategy: Strategy,
    affinity: bool,
    policy: HealthPolicy,
    epoch: Instant,
    epoch_unix_ms: u64,
    names: Mutex<Vec<(u64, String)>>,
}

/// What one attempt asks of the pool.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ask<'a> {
    /// The resolved model id; `None` for requests that name no model (any upstream serves them).
    pub model: Option<&'a str>,
    /// The conversation's key, when session affinity applies.
    pub affinity: Option<u64>,
    /// Credentials this request already tried: never picked again for it.
    pub tried: &'a [usize],
    /// The upstreams that may serve it, by index (`None`: all): batches and files exist only
    /// where the Anthropic API is spoken.
    pub only: Option<&'a [bool]>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pick {
    Use {
        credential: usize,
        /// The credential's cooldown just ended; this attempt is its probe.
        probe: bool,
        /// Every candidate is cooling; this one failed transiently longest ago and is tried anyway.
        fail_open: bool,
    },
    /// No upstream serves the model.
    NotServed,
    /// Every candidate is cooling, disabled or already tried.
    Unavailable(Unavailable),
}

/// Why nothing could be picked: every candidate, by what keeps it (those this request already
/// tried included, by the cooldown their failure left).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unavailable {
    pub rate_limited: usize,
    pub disabled: usize,
    pub transient: usize,
    /// Tried by this request and not cooling (e.g. a 429 that asked for no wait).
    pub tried: usize,
    /// The soonest any cooling candidate recovers, in ms from now.
    pub retry_after_ms: Option<u64>,
}

impl Unavailable {
    /// Every candidate is rate-limited or disabled: the gateway answers 429 itself.
    pub fn all_limited(&self) -> bool {
        self.rate_limited + self.disabled > 0 && self.transient == 0 && self.tried == 0
    }
}

/// What the candidates that were asked and refused add up to.
#[derive(Default)]
struct Refusals {
    unavailable: Unavailable,
    /// The transiently cooling candidate that failed longest ago: (failed at, credential).
    fail_open: Option<(u64, usize)>,
}

impl Refusals {
    /// Counts a refusal; `fail_open` says whether the candidate may still be tried anyway.
    fn note(&mut self, credential: usize, admit: Admit, now_ms: u64, fail_open: bool) {
        let Admit::No {
            until_ms,
            reason,
            failed_at_ms,
        } = admit
        else {
            return;
        };
        let u = &mut self.unavailable;
        match reason {
            Reason::RateLimit => u.rate_limited += 1,
            Reason::Auth => u.disabled += 1,
            Reason::Transient | Reason::Unreachable => {
                u.transient += 1;
                if fail_open && self.fail_open.map_or(true, |(at, _)| failed_at_ms < at) {
                    self.fail_open = Some((failed_at_ms, credential));
                }
            }
        }
        let wait = until_ms.saturating_sub(now_ms);
        u.retry_after_ms = Some(u.retry_after_ms.map_or(wait, |w| w.min(wait)));
    }
}

impl Pool {
    /// The pool of a validated configuration (at most [`MAX_UPSTREAMS_PER_TIER`] upstreams share
    /// a priority).
    pub fn new(config: &Config) -> Pool {
        let mut credentials = Vec::new();
        let mut upstreams = Vec::with_capacity(config.upstreams.len());
        for (u, upstream) in config.upstreams.iter().enumerate() {
            let endpoint = format!(
                "{:?} {} {}",
                upstream.kind,
                upstream
                    .base_url
                    .as_ref()
                    .map_or(String::new(), |b| b.to_string()),
                upstream
                    .proxy
                    .as_ref()
                    .map_or(String::new(), |p| p.url.to_string())
            );
            upstreams.push(UpstreamEntry {
                name: upstream.name.clone(),
                patterns: upstream.models.clone(),
                endpoint,
                health: Arc::default(),
            });
            if upstream.credentials.is_empty() {
                credentials.push(Credential {
                    upstream: u,
                    name: KEYLESS.into(),
                    auth: Auth::None,
                    identity: None,
                    weight: 1,
                    health: Arc::new(CredentialHealth::new()),
                });
            }
            for c in &upstream.credentials {
                credentials.push(Credential {
                    upstream: u,
                    name: c.name.clone(),
                    auth: c.secret.auth(&format!("{}/{}", upstream.name, c.name)),
                    identity: Some(c.secret.identity()),
                    weight: c.weight,
                    health: Arc::new(CredentialHealth::new()),
                });
            }
        }
        let mut priorities: Vec<i32> = config.upstreams.iter().map(|u| u.priority).collect();
        priorities.sort_unstable_by(|a, b| b.cmp(a));
        priorities.dedup();
        let tiers = priorities
            .into_iter()
            .map(|p| {
                let members: Vec<usize> = (0..config.upstreams.len())
                    .filter(|&u| config.upstreams[u].priority == p)
                    .collect();
                assert!(
                    members.len() <= MAX_UPSTREAMS_PER_TIER,
                    "validated by config"
                );
                Tier {
                    groups: (0..1usize << members.len())
                        .map(|_| OnceLock::new())
                        .collect(),
                    upstreams: members,
                }
            })
            .collect();
        let epoch_unix_ms = unix_ms(SystemTime::now());
        Pool {
            credentials,
            upstreams,
            tiers,
            strategy: config.routing.strategy,
            affinity: config.routing.session_affinity,
            policy: policy(&config.routing),
            epoch: Instant::now(),
            epoch_unix_ms,
            names: Mutex::new(Vec::new()),
        }
    }

    /// The pool of a reloaded configuration: the credentials and upstreams that are the same as
    /// `previous`'s (see `carry`) share their health with it, and the clock keeps running from
    /// `previous`'s epoch so that the deadlines taken over mean what they meant.
    pub fn succeeding(config: &Config, previous: &Pool) -> Pool {
        let mut pool = Pool::new(config);
        pool.epoch = previous.epoch;
        pool.epoch_unix_ms = previous.epoch_unix_ms;
        let names = previous.names.lock().unwrap_or_else(|e| e.into_inner());
        pool.names = Mutex::new(names.clone());
        let plan = carry_over(&previous.upstream_keys(), &pool.upstream_keys());
        for (entry, from) in pool.upstreams.iter_mut().zip(plan) {
            if let Some(i) = from {
                entry.health = previous.upstreams[i].health.clone();
            }
        }
        let plan = carry_over(&previous.credential_keys(), &pool.credential_keys());
        for (c, from) in pool.credentials.iter_mut().zip(plan) {
            if let Some(i) = from {
                c.health = previous.credentials[i].health.clone();
            }
        }
        pool
    }

    fn credential_keys(&self) -> Vec<CredentialKey<'_>> {
        (self.credentials.iter())
            .map(|c| CredentialKey {
                upstream: &self.upstreams[c.upstream].name,
                credential: &c.name,
                secret: c.identity.as_deref(),
            })
            .collect()
    }

    fn upstream_keys(&self) -> Vec<UpstreamKey<'_>> {
        (self.upstreams.iter())
            .map(|u| UpstreamKey {
                name: &u.name,
                endpoint: &u.endpoint,
            })
            .collect()
    }

    /// Milliseconds since the pool was made: the clock of every cooldown.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn credential(&self, index: usize) -> &Credential {
        &self.credentials[index]
    }

    pub fn upstream_name(&self, upstream: usize) -> &str {
        &self.upstreams[upstream].name
    }

    /// The credential for the next attempt of a request. A credential whose cooldown has just
    /// ended is let through as its one probe; its outcome must then be [`report`](Self::report)ed.
    pub fn pick(&self, ask: &Ask<'_>, now_ms: u64) -> Pick {
        let key = model_key(ask.model.unwrap_or(""));
        let mut refused = Refusals::default();
        let mut served = false;
        for tier in &self.tiers {
            let mask = self.mask(tier, ask.model, ask.only);
            if mask == 0 {
                continue;
            }
            served = true;
            let group = self.group(tier, mask);
            let mut probe = false;
            let available = |i: usize| {
                let c = group.credentials[i];
                let health = &self.credentials[c].health;
                let reach = &self.upstreams[self.credentials[c].upstream].health;
                if ask.tried.contains(&c) {
                    match health.refusal(key, now_ms).or(reach.refusal(now_ms)) {
                        Some(no) => refused.note(c, no, now_ms, false),
                        None => refused.unavailable.tried += 1,
                    }
                    return false;
                }
                // The credential's own state first: a rate limit or a refused key must count as
                // such (never failed open to) even while its upstream is also avoided.
                let claimed = match health.admit(key, now_ms, &self.policy) {
                    Admit::Yes => false,
                    Admit::Probe => true,
                    no => {
                        refused.note(c, no, now_ms, true);
                        return false;
                    }
                };
                match reach.admit(now_ms, &self.policy) {
                    Admit::Yes => probe |= claimed,
                    Admit::Probe => probe = true,
                    no => {
                        // The upstream is cooling, or another request is probing it: a
                        // probe of this credential claimed on the way must wait for it.
                        if claimed {
                            health.abandon(key);
                        }
                        refused.note(c, no, now_ms, true);
                        return false;
                    }
                }
                true
            };
            let chosen = match (ask.affinity.filter(|_| self.affinity), self.strategy) {
                (Some(k), _) => affine(k, &group.weights, available),
                (None, Strategy::RoundRobin) => {
                    round_robin(&group.schedule, &group.cursor, available)
                }
                (None, Strategy::FillFirst) => fill_first(group.credentials.len(), available),
            };
            if let Some(i) = chosen {
                return Pick::Use {
                    credential: group.credentials[i],
                    probe,
                    fail_open: false,
                };
            }
        }
        match refused.fail_open {
            _ if !served => Pick::NotServed,
            Some((_, credential)) => Pick::Use {
                credential,
                probe: false,
                fail_open: true,
            },
            None => Pick::Unavailable(refused.unavailable),
        }
    }

    /// Records how an attempt with a credential went; when a failure starts a cooldown, how long
    /// it lasts in ms.
    pub fn report(
        &self,
        credential: usize,
        model: Option<&str>,
        outcome: Outcome,
        now_ms: u64,
    ) -> Option<u64> {
        let name = model.unwrap_or("");
        let key = model_key(name);
        if outcome != Outcome::Success {
            self.remember(key, name);
        }
        let c = &self.credentials[credential];
        let reach = &self.upstreams[c.upstream].health;
        let upstream_until = reach.record(outcome, now_ms, &self.policy);
        let until = c
            .health
            .record(key, outcome, now_ms, &self.policy)
            .or(upstream_until)?;
        Some(until.saturating_sub(now_ms))
    }

    /// Gives back the probe an attempt held when its request ended without an answer.
    pub fn abandon(&self, credential: usize, model: Option<&str>) {
        let key = model_key(model.unwrap_or(""));
        let c = &self.credentials[credential];
        c.health.abandon(key);
        self.upstreams[c.upstream].health.abandon();
    }

    /// The credential named `credential` of the upstream named `upstream`, if the configuration
    /// still has it (an object created through it is reached through it only).
    pub fn find(&self, upstream: &str, credential: &str) -> Option<usize> {
        (self.credentials.iter())
            .position(|c| self.upstreams[c.upstream].name == upstream && c.name == credential)
    }

    /// Whether upstream `upstream` (by index) serves the model.
    pub fn serves_on(&self, upstream: usize, model: &str) -> bool {
        serves(&self.upstreams[upstream].patterns, model)
    }

    /// Whether any upstream serves the model (for answering 404 without asking the pool).
    pub fn serves(&self, model: &str) -> bool {
        self.upstreams.iter().any(|u| serves(&u.patterns, model))
    }

    /// Each credential's health, for the admin view. Times are Unix milliseconds.
    pub fn snapshot(&self) -> Vec<CredentialStatus> {
        let now = self.now_ms();
        let unix = |ms: u64| self.epoch_unix_ms + ms;
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let name_of = |key: u64| {
            names
                .iter()
                .find(|(k, _)| *k == key)
                .map_or_else(|| format!("#{key:016x}"), |(_, n)| n.clone())
        };
        self.credentials
            .iter()
            .map(|c| {
                let s = c.health.snapshot(now);
                CredentialStatus {
                    upstream: self.upstreams[c.upstream].name.clone(),
                    credential: c.name.clone(),
                    weight: c.weight,
                    disabled_until_unix_ms: s.disabled_until_ms.filter(|&t| t > now).map(unix),
                    upstream_unreachable_until_unix_ms: (self.upstreams[c.upstream].health)
                        .cooling_until_ms()
                        .filter(|&t| t > now)
                        .map(unix),
                    models: s
                        .models
                        .into_iter()
                        .map(|m| ModelStatus {
                            model: name_of(m.model),
                            cooling_until_unix_ms: m.cooling_until_ms.map(unix),
                            cooling: m.cooling_until_ms.is_some_and(|t| t > now),
                            reason: m.reason,
                            consecutive_rate_limits: m.consecutive_rate_limits,
                            probing: m.probing,
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// Clears every cooldown of a credential, its upstream's included (admin reset); false if
    /// there is no such credential.
    pub fn reset(&self, upstream: &str, credential: &str) -> bool {
        let found = self
            .credentials
            .iter()
            .find(|c| self.upstreams[c.upstream].name == upstream && c.name == credential);
        let reset = |c: &Credential| {
            c.health.reset();
            self.upstreams[c.upstream].health.reset();
        };
        found.map(reset).is_some()
    }

    fn mask(&self, tier: &Tier, model: Option<&str>, only: Option<&[bool]>) -> usize {
        let serves = |u: usize| {
            let allowed = only.map_or(true, |only| only.get(u) == Some(&true));
            allowed && model.map_or(true, |m| serves(&self.upstreams[u].patterns, m))
        };
        (tier.upstreams.iter().enumerate())
            .filter(|&(_, &u)| serves(u))
            .fold(0, |mask, (bit, _)| mask | 1 << bit)
    }

    fn group<'t>(&self, tier: &'t Tier, mask: usize) -> &'t Group {
        tier.groups[mask].get_or_init(|| {
            let member = |u: usize| {
                let bit = tier.upstreams.iter().position(|&x| x == u);
                bit.is_some_and(|b| mask & 1 << b != 0)
            };
            let credentials: Vec<usize> = (0..self.credentials.len())
                .filter(|&c| member(self.credentials[c].upstream))
                .collect();
            let weights: Vec<u32> = credentials
                .iter()
                .map(|&c| self.credentials[c].weight)
                .collect();
            Group {
                schedule: Schedule::new(&weights),
                credentials,
                weights,
                cursor: AtomicU64::new(0),
            }
        })
    }

    fn remember(&self, key: u64, name: &str) {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if names.len() < MAX_NAMED_MODELS && !names.iter().any(|(k, _)| *k == key) {
            names.push((key, name.to_owned()));
        }
    }
}

fn policy(r: &RoutingConfig) -> HealthPolicy {
    HealthPolicy {
        max_cooldown_ms: r.max_cooldown_ms,
        transient_cooldown_ms: r.transient_cooldown_ms,
        auth_failure_cooldown_ms: r.auth_failure_cooldown_ms,
        ..HealthPolicy::default()
    }
}

/// One credential's state in the admin view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialStatus {
    pub upstream: String,
    pub credential: String,
    pub weight: u32,
    /// Set while a 401 or 403 keeps the credential disabled.
    pub disabled_until_unix_ms: Option<u64>,
    /// Set while connection failures keep the credential's whole upstream avoided.
    pub upstream_unreachable_until_unix_ms: Option<u64>,
    /// Models that have failed with this credential since its last success.
    pub models: Vec<ModelStatus>,
}

impl CredentialStatus {
    /// One word for the credential as a whole (the admin view and the metrics): `disabled`
    /// after a refused key, `unreachable` while its upstream is avoided, `cooling` while any
    /// model cools, `probe_pending` when a cooldown has ended and the next request probes,
    /// else `available`.
    pub fn state(&self) -> &'static str {
        if self.disabled_until_unix_ms.is_some() {
            "disabled"
        } else if self.upstream_unreachable_until_unix_ms.is_some() {
            "unreachable"
        } else if self.models.iter().any(|m| m.cooling) {
            "cooling"
        } else if self
            .models
            .iter()
            .any(|m| m.probing || m.cooling_until_unix_ms.is_some())
        {
            "probe_pending"
        } else {
            "available"
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelStatus {
    pub model: String,
    /// The cooldown's end; in the past means the next request will probe.
    pub cooling_until_unix_ms: Option<u64>,
    pub cooling: bool,
    pub reason: Option<Reason>,
    pub consecutive_rate_limits: u32,
    pub probing: bool,
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "pool_reload_tests.rs"]
mod reload_tests;
