//! Which health a reloaded configuration takes over from the one it replaces.
//!
//! A reload must not forget that a credential was rate-limited a second ago, or the next request
//! would walk straight into the same 429 (or, for a refused key, the same 401 for thirty minutes of
//! traffic). So the new pool shares the health of the old pool's entries that are "the same"
//! credential or upstream, matched here by name:
//!
//! - a credential by its upstream's name and its own, unless its key changed (a key replaced
//!   after a 401 is a new key and gets its chance at once);
//! - an upstream's reachability by its name, unless where it is reached changed (its kind, base
//!   URL or proxy): the old address being down says nothing about the new one.
//!
//! Pure matching, no atomics: the pool applies the plan.

/// How a credential is recognised across a reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CredentialKey<'a> {
    pub upstream: &'a str,
    pub credential: &'a str,
    /// What identifies its secret (`None` for a keyless upstream): compared, never logged.
    pub secret: Option<&'a str>,
}

/// How an upstream is recognised across a reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpstreamKey<'a> {
    pub name: &'a str,
    /// Where it is reached (kind, base URL, proxy), as one comparable string.
    pub endpoint: &'a str,
}

/// For each entry of `new`, the index of the entry of `old` whose state it takes over, if any.
/// Keys are unique within a pool (names are validated unique), but should they repeat, an old
/// entry is still handed to one new entry at most: two credentials must never share one health.
pub fn carry_over<K: PartialEq>(old: &[K], new: &[K]) -> Vec<Option<usize>> {
    let mut taken = vec![false; old.len()];
    new.iter()
        .map(|key| {
            let found = (0..old.len()).find(|&i| !taken[i] && old[i] == *key)?;
            taken[found] = true;
            Some(found)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred<'a>(upstream: &'a str, credential: &'a str, key: &'a str) -> CredentialKey<'a> {
        CredentialKey {
            upstream,
            credential,
            secret: Some(key),
        }
    }

    #[test]
    fn same_names_carry_over_wherever_they_moved() {
        let old = [
            cred("a", "one", "k1"),
            cred("a", "two", "k2"),
            cred("b", "one", "k3"),
        ];
        // Reordered, one added in front, one removed.
        let new = [
            cred("c", "new", "k9"),
            cred("b", "one", "k3"),
            cred("a", "one", "k1"),
        ];
        assert_eq!(carry_over(&old, &new), [None, Some(2), Some(0)]);
    }

    #[test]
    fn a_credential_is_known_by_its_upstream_too() {
        let old = [cred("a", "primary", "k")];
        assert_eq!(carry_over(&old, &[cred("b", "primary", "k")]), [None]);
        assert_eq!(carry_over(&old, &[cred("a", "Primary", "k")]), [None]);
    }

    #[test]
    fn a_replaced_key_starts_afresh() {
        let old = [cred("a", "primary", "sk-old")];
        assert_eq!(carry_over(&old, &[cred("a", "primary", "sk-new")]), [None]);
        let keyless = CredentialKey {
            upstream: "mock",
            credential: "default",
            secret: None,
        };
        assert_eq!(carry_over(&[keyless], &[keyless]), [Some(0)]);
    }

    #[test]
    fn an_upstream_moved_elsewhere_starts_afresh() {
        let at = |name, endpoint| UpstreamKey { name, endpoint };
        let old = [at("a", "anthropic http://10.0.0.1"), at("b", "mock")];
        let new = [
            at("a", "anthropic http://10.0.0.2"),
            at("b", "mock"),
            at("c", "mock"),
        ];
        assert_eq!(carry_over(&old, &new), [None, Some(1), None]);
    }

    #[test]
    fn an_old_entry_goes_to_one_new_entry_at_most() {
        let old = [cred("a", "x", "k")];
        let new = [cred("a", "x", "k"), cred("a", "x", "k")];
        assert_eq!(carry_over(&old, &new), [Some(0), None]);
        let old = [cred("a", "x", "k"), cred("a", "x", "k")];
        assert_eq!(carry_over(&old, &new), [Some(0), Some(1)]);
    }

    #[test]
    fn empty_sides() {
        let none: [CredentialKey; 0] = [];
        assert_eq!(carry_over(&none, &[cred("a", "x", "k")]), [None]);
        assert!(carry_over(&[cred("a", "x", "k")], &none).is_empty());
    }
}
