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
    /// Cooldown after a 529, 5xx, connect error or timeout.
    pub transient_cooldown_ms: u64,
    /// How long a 401/403 disables the credential.
    pub auth_failure_cooldown_ms: u64,
    /// How long a probe request may take before another request may probe instead.
    pub probe_timeout_ms: u64,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            backoff_base_ms: 1_000,
            max_cooldown_ms: 1_800_000,
            transient_cooldown_ms: 10_000,
            auth_failure_cooldown_ms: 1_800_000,
            probe_timeout_ms: 60_000,
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
    /// 529, 5xx, connect error, timeout.
    Transient,
    /// 401 or 403.
    AuthFailed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    RateLimit,
    Transient,
    Auth,
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

const REASONS: [Option<Reason>; 4] = [
    None,
    Some(Reason::RateLimit),
    Some(Reason::Transient),
    Some(Reason::Auth),
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

    /// Records a failure. A cooldown is never shortened (a request reporting late must not cut a
    /// longer one short), and the reason follows the cooldown in force.
    fn fail(&self, reason: Reason, until: u64, now: u64) {
        let previous = self.until.fetch_max(until, Relaxed);
        if until >= previous || self.reason.load(Relaxed) == 0 {
            self.reason.store(reason as u8 + 1, Relaxed);
        }
        self.failed_at.store(now, Relaxed);
        self.release_probe();
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

    /// Records how an attempt went. Only failures take a model slot, so models that never fail
    /// use none. A failure ends any probe of this credential: a new one may follow its cooldown.
    pub fn record(&self, model: u64, outcome: Outcome, now_ms: u64, policy: &HealthPolicy) {
        let model = model.max(1);
        let (slot, reason, delay) = match outcome {
            Outcome::Success => {
                if let Some(slot) = self.find(model) {
                    slot.clear();
                }
                return self.auth.clear();
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
                let count = slot
                    .consecutive_rate_limits
                    .fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_add(1)))
                    .map_or(u32::MAX, |n| n.saturating_add(1));
                let backoff = || {
                    policy
                        .backoff_base_ms
                        .saturating_mul(1 << (count - 1).min(63))
                };
                let delay = retry_after_ms.unwrap_or_else(backoff);
                (slot, Reason::RateLimit, delay.min(policy.max_cooldown_ms))
            }
        };
        slot.gate.fail(reason, now_ms.saturating_add(delay), now_ms);
        self.auth.release_probe();
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
    let at_ms = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    at_ms.saturating_sub(now_unix_ms)
}

#[cfg(test)]
mod tests {
    use super::{
        Admit::*,
        Outcome::*,
        Reason::{Auth, RateLimit},
        *,
    };

    const P: HealthPolicy = HealthPolicy {
        backoff_base_ms: 1_000,
        max_cooldown_ms: 1_800_000,
        transient_cooldown_ms: 10_000,
        auth_failure_cooldown_ms: 1_800_000,
        probe_timeout_ms: 60_000,
    };
    const M: u64 = 7;

    fn no(until_ms: u64, reason: Reason, failed_at_ms: u64) -> Admit {
        No {
            until_ms,
            reason,
            failed_at_ms,
        }
    }
    fn limited(hint: Option<u64>) -> Outcome {
        RateLimited {
            retry_after_ms: hint,
        }
    }
    /// Records a 429 at `now` and returns its cooldown's deadline.
    fn rate_limit(h: &CredentialHealth, hint: Option<u64>, now: u64) -> u64 {
        h.record(M, limited(hint), now, &P);
        match h.admit(M, now, &P) {
            No {
                until_ms,
                reason: RateLimit,
                failed_at_ms,
            } if failed_at_ms == now => until_ms,
            other => panic!("not cooling after a 429: {other:?}"),
        }
    }

    #[test]
    fn defaults_and_model_key() {
        let d = HealthPolicy::default();
        let fields = [
            d.backoff_base_ms,
            d.max_cooldown_ms,
            d.transient_cooldown_ms,
        ];
        assert_eq!(fields, [1_000, 1_800_000, 10_000]);
        assert_eq!(
            [d.auth_failure_cooldown_ms, d.probe_timeout_ms],
            [1_800_000, 60_000]
        );
        assert_eq!(model_key(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(model_key("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn backoff_doubles_from_one_second_and_is_capped() {
        let (h, mut now, mut delays) = (CredentialHealth::new(), 5, vec![]);
        for i in 0..100 {
            assert_eq!(h.admit(M, now, &P), if i == 0 { Yes } else { Probe });
            let until = rate_limit(&h, None, now);
            delays.push(until - now);
            now = until;
        }
        assert_eq!(delays[..6], [1_000, 2_000, 4_000, 8_000, 16_000, 32_000]);
        assert_eq!(delays[10], 1_024_000);
        assert!(delays[11..].iter().all(|&d| d == 1_800_000));
        assert_eq!(h.snapshot(now).models[0].consecutive_rate_limits, 100);
    }

    #[test]
    fn retry_after_hint_is_used_and_capped() {
        let h = CredentialHealth::new();
        assert_eq!(rate_limit(&h, Some(5_000), 100), 5_100);
        assert_eq!(h.admit(M, 5_100, &P), Probe);
        assert_eq!(rate_limit(&h, Some(u64::MAX), 5_100), 1_805_100);
        assert_eq!(rate_limit(&h, Some(u64::MAX), u64::MAX - 1), u64::MAX);
    }

    #[test]
    fn transient_cooldown_leaves_the_rate_limit_counter_alone() {
        let h = CredentialHealth::new();
        rate_limit(&h, None, 0);
        assert_eq!(h.admit(M, 1_000, &P), Probe);
        h.record(M, Transient, 1_000, &P);
        assert_eq!(h.admit(M, 10_999, &P), no(11_000, Reason::Transient, 1_000));
        assert_eq!(h.snapshot(0).models[0].consecutive_rate_limits, 1);
        assert_eq!(h.admit(M, 11_000, &P), Probe);
        assert_eq!(rate_limit(&h, None, 11_000), 13_000);
        // A transient fault reported late does not shorten a longer rate-limit cooldown.
        assert_eq!(rate_limit(&h, Some(60_000), 13_000), 73_000);
        h.record(M, Transient, 13_001, &P);
        assert_eq!(h.admit(M, 30_000, &P), no(73_000, RateLimit, 13_001));
    }

    #[test]
    fn auth_failure_disables_every_model_of_the_credential_only() {
        let (h, other) = (CredentialHealth::new(), CredentialHealth::new());
        h.record(1, AuthFailed, 50, &P);
        for model in [1, 2, 3] {
            assert_eq!(h.admit(model, 1_000, &P), no(1_800_050, Auth, 50));
            assert_eq!(other.admit(model, 1_000, &P), Yes);
        }
        // After the cooldown one request probes the credential, whatever its model; one refused
        // for its own model's cooldown does not hold that probe.
        h.record(4, Transient, 1_800_000, &P);
        let refused = no(1_810_000, Reason::Transient, 1_800_000);
        assert_eq!(h.admit(4, 1_800_050, &P), refused);
        assert_eq!(h.admit(2, 1_800_050, &P), Probe);
        assert_eq!(h.admit(3, 1_800_051, &P), no(1_860_050, Auth, 50));
        h.record(2, Success, 1_800_060, &P);
        assert_eq!(h.admit(3, 1_800_061, &P), Yes);
    }

    #[test]
    fn one_models_trouble_does_not_block_another() {
        let h = CredentialHealth::new();
        h.record(1, limited(None), 0, &P);
        h.record(2, Transient, 0, &P);
        assert!(matches!(
            h.admit(1, 10, &P),
            No {
                reason: RateLimit,
                ..
            }
        ));
        assert!(matches!(
            h.admit(2, 10, &P),
            No {
                reason: Reason::Transient,
                ..
            }
        ));
        assert_eq!(h.admit(3, 10, &P), Yes);
    }

    #[test]
    fn exactly_one_probe_after_a_cooldown_until_it_reports() {
        let h = CredentialHealth::new();
        rate_limit(&h, None, 0);
        assert_eq!(h.admit(M, 1_000, &P), Probe);
        for now in [1_000, 1_001, 60_999] {
            assert_eq!(h.admit(M, now, &P), no(61_000, RateLimit, 0));
        }
        // The probe failed: a new cooldown, then a new probe.
        assert_eq!(rate_limit(&h, None, 2_000), 4_000);
        assert_eq!(h.admit(M, 4_000, &P), Probe);
        assert_eq!(h.admit(M, 4_000, &P), no(64_000, RateLimit, 2_000));
    }

    #[test]
    fn a_lost_probe_times_out() {
        let h = CredentialHealth::new();
        h.record(M, Transient, 0, &P);
        assert_eq!(h.admit(M, 10_000, &P), Probe);
        assert_eq!(h.admit(M, 69_999, &P), no(70_000, Reason::Transient, 0));
        assert_eq!(h.admit(M, 70_000, &P), Probe);
        assert_eq!(h.admit(M, 70_001, &P), no(130_000, Reason::Transient, 0));
    }

    #[test]
    fn success_after_a_probe_restores_yes_and_resets_the_backoff() {
        let (h, mut now) = (CredentialHealth::new(), 0);
        for _ in 0..3 {
            now = rate_limit(&h, None, now);
            assert_eq!(h.admit(M, now, &P), Probe);
        }
        h.record(M, Success, now, &P);
        assert_eq!([h.admit(M, now, &P), h.admit(M, now, &P)], [Yes, Yes]);
        assert_eq!(rate_limit(&h, None, now), now + 1_000);
    }

    #[test]
    fn reset_clears_cooldowns_backoff_and_probes() {
        let h = CredentialHealth::new();
        h.record(1, limited(None), 0, &P);
        h.record(1, limited(None), 0, &P);
        h.record(2, Transient, 0, &P);
        assert_eq!(h.admit(2, 10_000, &P), Probe);
        h.record(3, AuthFailed, 0, &P);
        h.reset();
        assert!([1, 2, 3].iter().all(|&m| h.admit(m, 10_000, &P) == Yes));
        let snap = h.snapshot(10_000);
        assert_eq!((snap.disabled_until_ms, snap.models.len()), (None, 2));
        assert!(snap.models.iter().all(|m| m.reason.is_none() && !m.probing));
        assert!(snap.models.iter().all(|m| m.consecutive_rate_limits == 0));
        h.record(1, limited(None), 10_000, &P);
        assert_eq!(h.admit(1, 10_000, &P), no(11_000, RateLimit, 10_000));
    }

    #[test]
    fn snapshot_reports_auth_and_every_model_slot_in_use() {
        let h = CredentialHealth::new();
        assert_eq!(
            h.snapshot(0),
            Snapshot {
                disabled_until_ms: None,
                models: vec![]
            }
        );
        h.record(10, limited(Some(500)), 100, &P);
        h.record(20, Transient, 100, &P);
        h.record(30, Success, 100, &P); // successes take no slot
        assert_eq!(h.admit(10, 600, &P), Probe);
        h.record(40, AuthFailed, 700, &P);
        let state = |model, cooling_until_ms, reason, consecutive_rate_limits, probing| {
            let n = consecutive_rate_limits;
            ModelState {
                model,
                cooling_until_ms,
                reason,
                consecutive_rate_limits: n,
                probing,
            }
        };
        let models = vec![
            state(10, Some(600), Some(RateLimit), 1, true),
            state(20, Some(10_100), Some(Reason::Transient), 0, false),
        ];
        let expected = Snapshot {
            disabled_until_ms: Some(1_800_700),
            models,
        };
        assert_eq!(h.snapshot(800), expected);
        h.record(10, Success, 900, &P);
        let snap = h.snapshot(900);
        assert_eq!(snap.disabled_until_ms, None);
        assert_eq!(snap.models[0], state(10, None, None, 0, false));
    }

    #[test]
    fn seventeen_models_on_one_credential_all_work() {
        let h = CredentialHealth::new();
        let models: Vec<u64> = (0..17).map(|i| model_key(&format!("model-{i}"))).collect();
        for (i, &model) in models.iter().enumerate() {
            h.record(model, limited(Some(1_000)), i as u64, &P);
            assert!(matches!(h.admit(model, i as u64, &P), No { .. }));
        }
        let keys: Vec<u64> = h.snapshot(0).models.iter().map(|m| m.model).collect();
        assert_eq!(keys, models[..16]);
        // The 17th shares the last slot with the 16th: its success clears both, and only them.
        h.record(models[16], Success, 100, &P);
        assert_eq!(
            [h.admit(models[15], 100, &P), h.admit(models[16], 100, &P)],
            [Yes, Yes]
        );
        assert_eq!(h.admit(models[0], 100, &P), no(1_000, RateLimit, 0));
        // Model 0 is taken as key 1, like model_key does.
        h.record(0, Transient, 0, &P);
        assert!(matches!(CredentialHealth::new().admit(0, 0, &P), Yes));
    }

    #[test]
    fn eight_threads_racing_on_a_cooled_slot_get_exactly_one_probe() {
        for round in 0..20 {
            let h = CredentialHealth::new();
            h.record(M, Transient, 0, &P);
            let barrier = std::sync::Barrier::new(8);
            let probes = std::sync::atomic::AtomicUsize::new(0);
            std::thread::scope(|s| {
                for _ in 0..8 {
                    s.spawn(|| {
                        barrier.wait();
                        for _ in 0..1_000 {
                            if h.admit(M, 10_000, &P) == Probe {
                                probes.fetch_add(1, Relaxed);
                            }
                        }
                    });
                }
            });
            assert_eq!(probes.into_inner(), 1, "round {round}");
        }
    }

    fn hint(headers: &[(&str, &str)], now_unix_ms: u64) -> Option<u64> {
        retry_after_ms(headers.iter().map(|&(n, v)| (n, v.as_bytes())), now_unix_ms)
    }

    const OCT_21: u64 = 1_445_412_480_000; // 2015-10-21T07:28:00Z

    #[test]
    fn retry_after_in_seconds_or_as_an_http_date() {
        assert_eq!(hint(&[("Retry-After", "30")], 0), Some(30_000));
        assert_eq!(hint(&[("retry-after", " 0 ")], 0), Some(0));
        assert_eq!(
            hint(&[("retry-after", "99999999999999999999999")], 0),
            Some(u64::MAX)
        );
        let date = [("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")];
        assert_eq!(hint(&date, OCT_21 - 120_000), Some(120_000));
        assert_eq!(hint(&date, OCT_21 + 5_000), Some(0));
    }

    #[test]
    fn reset_headers_earliest_wins_and_past_gives_zero() {
        let headers = [
            ("anthropic-ratelimit-requests-reset", "2015-10-21T07:29:00Z"),
            ("Anthropic-RateLimit-Tokens-Reset", "2015-10-21T07:28:10.5Z"),
            (
                "anthropic-ratelimit-output-tokens-reset",
                "2015-10-21T07:30:00Z",
            ),
            (
                "anthropic-ratelimit-tokens-remaining",
                "2015-10-21T07:28:01Z",
            ),
        ];
        assert_eq!(hint(&headers, OCT_21), Some(10_500));
        let past = [
            (
                "anthropic-ratelimit-input-tokens-reset",
                "2015-10-21T07:27:00Z",
            ),
            ("anthropic-ratelimit-requests-reset", "2015-10-21T07:29:00Z"),
        ];
        assert_eq!(hint(&past, OCT_21), Some(0));
        let other = [(
            "anthropic-ratelimit-priority-input-tokens-reset",
            "2015-10-21T07:28:02Z",
        )];
        assert_eq!(hint(&other, OCT_21), Some(2_000));
    }

    #[test]
    fn garbage_is_ignored_and_retry_after_is_preferred() {
        assert_eq!(hint(&[], OCT_21), None);
        let garbage = [
            ("retry-after", "soon"),
            ("retry-after", "-5"),
            ("retry-after", "1.5"),
            ("retry-after", ""),
            ("anthropic-ratelimit-requests-reset", "tomorrow"),
            ("anthropic-ratelimit-tokens-reset", "2015-13-45T99:00:00Z"),
            ("anthropic-ratelimit-reset", "2015-10-21T07:28:05Z"),
            ("x-anthropic-ratelimit-tokens-reset", "2015-10-21T07:28:05Z"),
            ("anthropic-ratelimit-é-reset", "2015-10-21T07:28:0é"),
        ];
        assert_eq!(hint(&garbage, OCT_21), None);
        let bytes: [(&str, &[u8]); 2] = [
            ("retry-after", b"\xff\xfe"),
            ("anthropic-ratelimit-tokens-reset", b"2015-10-21T07:28:07Z"),
        ];
        assert_eq!(retry_after_ms(bytes, OCT_21), Some(7_000));
        let both = [
            ("anthropic-ratelimit-requests-reset", "2015-10-21T07:28:01Z"),
            ("retry-after", "42"),
        ];
        assert_eq!(hint(&both, OCT_21), Some(42_000));
    }
}
