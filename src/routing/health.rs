//! Credential health: cooldowns after failures, backoff, and the one probe after a cooldown.
//!
//! Every worker core consults a credential's health on every request it routes, and any core may
//! report how an attempt went, so the state is a table of atomics with no lock: a reader never
//! waits, a writer never stalls a reader. The values are hints; losing a race costs at most one
//! extra (or one fewer) upstream attempt.
//!
//! Rate limits and transient faults are tracked per credential × model, because the upstream sets
//! its limits per model and one model's trouble must not take the credential away from the others.
//! Authentication failures concern the key itself, so they are tracked once per credential.
//!
//! Nothing here reads a clock: callers pass `now_ms` (milliseconds from any monotonic origin they
//! choose), which keeps every rule testable with plain numbers.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering::*};
use std::time::{SystemTime, UNIX_EPOCH};

/// Model slots per credential, allocated once in [`CredentialHealth::new`]. A model that finds no
/// free slot shares the last one with whichever models already use it.
const MODEL_SLOTS: usize = 16;

#[derive(Clone, Copy, Debug)]
pub struct HealthPolicy {
    /// First rate-limit backoff when the upstream gave no hint; doubles per consecutive 429, capped by max_cooldown_ms.
    pub backoff_base_ms: u64,
    /// Longest cooldown for a rate limit, hinted or not.
    pub max_cooldown_ms: u64,
    /// Cooldown of a credential × model after a 529 or 5xx, and of a whole upstream after a
    /// connection failure.
    pub transient_cooldown_ms: u64,
    /// How long a 401/403 disables the credential.
    pub auth_failure_cooldown_ms: u64,
    /// How long a probe may wait for its answer's head before another request may probe too.
    /// An upstream refuses (429, 401) at once; a probe still waiting is most likely being served.
    pub probe_timeout_ms: u64,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            backoff_base_ms: 1_000,
            max_cooldown_ms: 1_800_000,
            transient_cooldown_ms: 10_000,
            auth_failure_cooldown_ms: 1_800_000,
            probe_timeout_ms: 5_000,
        }
    }
}

/// What happened to one attempt with a credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// 429. `retry_after_ms`: the upstream's hint (already converted to a delay from now), if any.
    RateLimited {
        retry_after_ms: Option<u64>,
    },
    /// 529 or another 5xx answer.
    Transient,
    /// 401 or 403.
    AuthFailed,
    /// No usable answer at all: the connection was refused, reset or timed out, TLS failed, the
    /// response was garbage. The upstream's fault, not the credential's.
    Unreachable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    RateLimit,
    Transient,
    Auth,
    Unreachable,
}

/// The answer to "may this request use the credential for this model now?"
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Its cooldown just ended: this request is the one probe let through (claimed by this call).
    Probe,
    No {
        until_ms: u64,
        reason: Reason,
        failed_at_ms: u64,
    },
}

/// A 64-bit key for a model id (stable across runs, never 0): FNV-1a 64, with 0 mapped to 1.
pub fn model_key(model: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in model.as_bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash.max(1)
}

const REASONS: [Option<Reason>; 5] = [
    None,
    Some(Reason::RateLimit),
    Some(Reason::Transient),
    Some(Reason::Auth),
    Some(Reason::Unreachable),
];

fn reason_from(code: u8) -> Option<Reason> {
    REASONS.get(usize::from(code)).copied().flatten()
}

/// One cooldown with its probe: used per model slot and, for auth, once per credential.
///
/// Orderings: the fields are independent hints, read and written `Relaxed`; a torn view of them at
/// worst admits or refuses one request wrongly. The probe claim is the exception: it must let
/// exactly one caller through, so it is a compare-exchange (AcqRel on success, Acquire on failure).
#[derive(Default)]
struct Gate {
    /// 0 while healthy; otherwise 1 + the [`Reason`] of the last failure, until a success clears it.
    reason: AtomicU8,
    until: AtomicU64,
    failed_at: AtomicU64,
    /// A probe is in flight while this is later than now.
    probe_until: AtomicU64,
}

impl Gate {
    /// `Ok(None)`: healthy. `Ok(Some(v))`: this call claimed the probe, writing `v`. `Err(No)`.
    fn pass(&self, now: u64, probe_timeout: u64) -> Result<Option<u64>, Admit> {
        let Some(reason) = reason_from(self.reason.load(Relaxed)) else {
            return Ok(None);
        };
        let failed_at_ms = self.failed_at.load(Relaxed);
        let no = |until_ms| Admit::No {
            until_ms,
            reason,
            failed_at_ms,
        };
        let until = self.until.load(Relaxed);
        if until > now {
            return Err(no(until));
        }
        let mine = now.saturating_add(probe_timeout);
        let mut seen = self.probe_until.load(Acquire);
        while seen <= now {
            match self
                .probe_until
                .compare_exchange(seen, mine, AcqRel, Acquire)
            {
                Ok(_) => return Ok(Some(mine)),
                Err(actual) => seen = actual,
            }
        }
        Err(no(seen))
    }

    fn release_probe(&self) {
        self.probe_until.store(0, Release);
    }

    /// The refusal `pass` would give now, without claiming the probe.
    fn refusal(&self, now: u64) -> Option<Admit> {
        let reason = reason_from(self.reason.load(Relaxed))?;
        let until = self.until.load(Relaxed);
        (until > now).then(|| Admit::No {
            until_ms: until,
            reason,
            failed_at_ms: self.failed_at.load(Relaxed),
        })
    }

    /// Records a failure; the deadline when it starts a cooldown (none was in force). A cooldown
    /// is never shortened (a request reporting late must not cut a longer one short), and the
    /// reason follows the cooldown in force.
    fn fail(&self, reason: Reason, until: u64, now: u64) -> Option<u64> {
        let previous = self.until.fetch_max(until, Relaxed);
        let started = previous <= now;
        if until >= previous || self.reason.load(Relaxed) == 0 {
            self.reason.store(reason as u8 + 1, Relaxed);
        }
        self.failed_at.store(now, Relaxed);
        self.release_probe();
        started.then_some(until)
    }

    fn clear(&self) {
        self.until.store(0, Relaxed);
        self.failed_at.store(0, Relaxed);
        self.release_probe();
        self.reason.store(0, Relaxed);
    }
}

#[derive(Default)]
struct Slot {
    /// The model key owning this slot; 0 = free. Claimed once by compare-exchange, never freed.
    key: AtomicU64,
    consecutive_rate_limits: AtomicU32,
    gate: Gate,
}

impl Slot {
    fn clear(&self) {
        self.consecutive_rate_limits.store(0, Relaxed);
        self.gate.clear();
    }
}

/// The health of one credential: an auth gate for the key, and a cooldown per model.
pub struct CredentialHealth {
    auth: Gate,
    slots: [Slot; MODEL_SLOTS],
}

impl Default for CredentialHealth {
    fn default() -> Self {
        Self::new()
    }
}

impl CredentialHealth {
    pub fn new() -> Self {
        let slots = std::array::from_fn(|_| Slot::default());
        CredentialHealth {
            auth: Gate::default(),
            slots,
        }
    }

    /// The model's slot, if it has one. Slots fill in order and are never freed, so a free slot
    /// met before the key means it has none; with every slot taken by others it shares the last.
    fn find(&self, model: u64) -> Option<&Slot> {
        for slot in &self.slots {
            match slot.key.load(Acquire) {
                0 => return None,
                key if key == model => return Some(slot),
                _ => {}
            }
        }
        self.slots.last()
    }

    /// The model's slot, taking the first free one if it has none (or sharing the last). The key
    /// claim is a compare-exchange (AcqRel/Acquire): two models racing for one free slot cannot
    /// both own it, and a racer claiming the same model finds it.
    fn claim(&self, model: u64) -> &Slot {
        for slot in &self.slots {
            match slot.key.compare_exchange(0, model, AcqRel, Acquire) {
                Ok(_) => return slot,
                Err(key) if key == model => return slot,
                Err(_) => {}
            }
        }
        &self.slots[MODEL_SLOTS - 1]
    }

    pub fn admit(&self, model: u64, now_ms: u64, policy: &HealthPolicy) -> Admit {
        let timeout = policy.probe_timeout_ms;
        let auth = match self.auth.pass(now_ms, timeout) {
            Ok(claimed) => claimed,
            Err(no) => return no,
        };
        let slot = self.find(model.max(1));
        let slot = slot.map_or(Ok(None), |s| s.gate.pass(now_ms, timeout));
        match (auth, slot) {
            (Some(mine), Err(no)) => {
                // A request refused for its model must not hold the credential's probe.
                let probe = &self.auth.probe_until;
                let _ = probe.compare_exchange(mine, 0, AcqRel, Relaxed);
                no
            }
            (_, Err(no)) => no,
            (None, Ok(None)) => Admit::Yes,
            _ => Admit::Probe,
        }
    }

    /// Why the credential is cooling for the model now (`None` if it is not), claiming nothing:
    /// for a request that already tried it and only wants to know when it recovers.
    pub fn refusal(&self, model: u64, now_ms: u64) -> Option<Admit> {
        let slot = || self.find(model.max(1))?.gate.refusal(now_ms);
        self.auth.refusal(now_ms).or_else(slot)
    }

    /// Gives back a probe whose request ended without an answer (its client left), so the next
    /// request may probe at once instead of after the probe timeout.
    pub fn abandon(&self, model: u64) {
        self.auth.release_probe();
        if let Some(slot) = self.find(model.max(1)) {
            slot.gate.release_probe();
        }
    }

    /// Records how an attempt went; the deadline when a failure starts a cooldown (so it is logged
    /// once, not once per request that meets it). Only failures take a model slot, so models that never
    /// fail use none. A failure ends any probe of this credential: a new one may follow its
    /// cooldown.
    pub fn record(
        &self,
        model: u64,
        outcome: Outcome,
        now_ms: u64,
        policy: &HealthPolicy,
    ) -> Option<u64> {
        let model = model.max(1);
        let (slot, reason, delay) = match outcome {
            Outcome::Unreachable => {
                // Not this credential's doing; a probe it held is over.
                self.abandon(model);
                return None;
            }
            Outcome::Success => {
                if let Some(slot) = self.find(model) {
                    slot.clear();
                }
                self.auth.clear();
                return None;
            }
            Outcome::AuthFailed => {
                if let Some(slot) = self.find(model) {
                    slot.gate.release_probe();
                }
                let until = now_ms.saturating_add(policy.auth_failure_cooldown_ms);
                return self.auth.fail(Reason::Auth, until, now_ms);
            }
            Outcome::Transient => {
                let slot = self.claim(model);
                (slot, Reason::Transient, policy.transient_cooldown_ms)
            }
            Outcome::RateLimited { retry_after_ms } => {
                let slot = self.claim(model);
                // A 429 met while a cooldown is in force comes from a request that was already in
                // flight when it began: it neither counts as another consecutive limit nor, without
                // a hint of its own, moves the deadline. Else a burst would escalate the backoff.
                if slot.gate.until.load(Relaxed) > now_ms {
                    if retry_after_ms.is_none() {
                        self.auth.release_probe();
                        return None;
                    }
                } else {
                    slot.consecutive_rate_limits
                        .fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_add(1)))
                        .ok();
                }
                let count = slot.consecutive_rate_limits.load(Relaxed).max(1);
                let backoff = || {
                    policy
                        .backoff_base_ms
                        .saturating_mul(1 << (count - 1).min(63))
                };
                let delay = retry_after_ms.unwrap_or_else(backoff);
                (slot, Reason::RateLimit, delay.min(policy.max_cooldown_ms))
            }
        };
        let started = slot.gate.fail(reason, now_ms.saturating_add(delay), now_ms);
        self.auth.release_probe();
        started
    }

    /// For the admin view: the credential-wide auth state and every model slot in use.
    ///
    /// Deadlines are reported until a success (or [`reset`](Self::reset)) clears them: one not
    /// later than `now_ms` means the cooldown is over and the next request will probe.
    pub fn snapshot(&self, now_ms: u64) -> Snapshot {
        let deadline = |gate: &Gate| {
            let reason = reason_from(gate.reason.load(Relaxed));
            (reason.map(|_| gate.until.load(Relaxed)), reason)
        };
        let models = self.slots.iter().filter_map(|slot| {
            let model = slot.key.load(Acquire);
            let (cooling_until_ms, reason) = deadline(&slot.gate);
            (model != 0).then(|| ModelState {
                model,
                cooling_until_ms,
                reason,
                consecutive_rate_limits: slot.consecutive_rate_limits.load(Relaxed),
                probing: slot.gate.probe_until.load(Acquire) > now_ms,
            })
        });
        let models = models.collect();
        Snapshot {
            disabled_until_ms: deadline(&self.auth).0,
            models,
        }
    }

    /// Clears every cooldown, backoff and probe of this credential (admin reset). Slots stay
    /// assigned to their models.
    pub fn reset(&self) {
        self.auth.clear();
        self.slots.iter().for_each(Slot::clear);
    }
}

/// Whether an upstream can be reached at all: a connection failure cools the whole upstream, for
/// every credential and model, because another key would meet the same closed port. After the
/// cooldown one request probes it, as for a credential.
#[derive(Default)]
pub struct UpstreamHealth {
    gate: Gate,
}

impl UpstreamHealth {
    /// Whether a request may go to the upstream now; claims the probe when its cooldown just
    /// ended.
    pub fn admit(&self, now_ms: u64, policy: &HealthPolicy) -> Admit {
        match self.gate.pass(now_ms, policy.probe_timeout_ms) {
            Ok(None) => Admit::Yes,
            Ok(Some(_)) => Admit::Probe,
            Err(no) => no,
        }
    }

    /// The refusal [`admit`](Self::admit) would give while the cooldown runs, claiming nothing.
    pub fn refusal(&self, now_ms: u64) -> Option<Admit> {
        self.gate.refusal(now_ms)
    }

    /// Records how an attempt went as far as the connection is concerned; the deadline when a
    /// failure starts a cooldown.
    pub fn record(&self, outcome: Outcome, now_ms: u64, policy: &HealthPolicy) -> Option<u64> {
        match outcome {
            Outcome::Unreachable => {
                let until = now_ms.saturating_add(policy.transient_cooldown_ms);
                self.gate.fail(Reason::Unreachable, until, now_ms)
            }
            // Any answer at all shows the upstream reachable.
            _ => {
                if self.gate.reason.load(Relaxed) != 0 {
                    self.gate.clear();
                }
                None
            }
        }
    }

    pub fn abandon(&self) {
        self.gate.release_probe();
    }

    /// The cooldown's deadline while no answer has cleared it.
    pub fn cooling_until_ms(&self) -> Option<u64> {
        (self.gate.reason.load(Relaxed) != 0).then(|| self.gate.until.load(Relaxed))
    }

    pub fn reset(&self) {
        self.gate.clear();
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The auth disable's deadline while it is not cleared by a success.
    pub disabled_until_ms: Option<u64>,
    pub models: Vec<ModelState>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelState {
    /// The slot's owner (the first model to claim it; a shared last slot lists only that one).
    pub model: u64,
    /// The cooldown's deadline while it is not cleared by a success.
    pub cooling_until_ms: Option<u64>,
    pub reason: Option<Reason>,
    pub consecutive_rate_limits: u32,
    /// A probe request is in flight.
    pub probing: bool,
}

/// How an upstream's answer bears on the credential that got it: `None` when the answer is the
/// request's own (a success, or an error such as 400, 404 or 413 that another credential would get
/// too), which is relayed as it is. `now_unix_ms` dates the rate-limit hints.
pub fn outcome_of<'a>(
    status: u16,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    now_unix_ms: u64,
) -> Option<Outcome> {
    match status {
        429 => Some(Outcome::RateLimited {
            retry_after_ms: retry_after_ms(headers, now_unix_ms),
        }),
        401 | 403 => Some(Outcome::AuthFailed),
        500..=599 => Some(Outcome::Transient),
        _ => None,
    }
}

/// The upstream's hint for when to retry a 429, as a delay in ms from `now_unix_ms` (wall clock, ms
/// since the Unix epoch): `retry-after` as delta-seconds or HTTP-date, else the earliest of the
/// `anthropic-ratelimit-*-reset` headers (RFC 3339 timestamps; any header whose lowercase name starts
/// with "anthropic-ratelimit-" and ends with "-reset"). Past times give 0. Garbage is ignored.
/// `headers` yields (name, value) pairs as raw bytes.
pub fn retry_after_ms<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    now_unix_ms: u64,
) -> Option<u64> {
    let mut retry_after = None;
    let mut earliest_reset: Option<u64> = None;
    for (name, value) in headers {
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("retry-after") {
            if retry_after.is_none() {
                retry_after = parse_retry_after(value, now_unix_ms);
            }
        } else if is_reset_header(name) {
            if let Ok(at) = humantime::parse_rfc3339_weak(value) {
                let delay = delay_until(at, now_unix_ms);
                earliest_reset = Some(earliest_reset.map_or(delay, |e| e.min(delay)));
            }
        }
    }
    retry_after.or(earliest_reset)
}

fn parse_retry_after(value: &str, now_unix_ms: u64) -> Option<u64> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(seconds.saturating_mul(1000));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(delay_until(at, now_unix_ms))
}

fn is_reset_header(name: &str) -> bool {
    const PREFIX: &str = "anthropic-ratelimit-";
    const SUFFIX: &str = "-reset";
    name.len() > PREFIX.len() + SUFFIX.len()
        && name
            .get(..PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(PREFIX))
        && name
            .get(name.len() - SUFFIX.len()..)
            .is_some_and(|s| s.eq_ignore_ascii_case(SUFFIX))
}

fn delay_until(at: SystemTime, now_unix_ms: u64) -> u64 {
    unix_ms(at).saturating_sub(now_unix_ms)
}

/// A wall-clock time as ms since the Unix epoch (0 before it), the unit rate-limit hints are
/// dated in.
pub fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
