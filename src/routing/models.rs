//! Model names: which upstream serves a model (its `models` patterns), and the catalog of models
//! the gateway answers `GET /v1/models` with when its configuration names them.
//!
//! Clients list models to fill pickers and to check an id before using it; a gateway that routes
//! `sonnet` to `claude-sonnet-4-5` must list `sonnet`, which no upstream knows. So the catalog
//! comes from the configuration: the ids named in upstream patterns, then the aliases.

use crate::config::Config;
use crate::http::ApiError;
use crate::json::write as json;

/// Whether a `models` pattern matches a model id: `*` matches any run of characters (none
/// included); everything else matches itself, case-sensitively.
pub fn matches(pattern: &str, model: &str) -> bool {
    let (p, m) = (pattern.as_bytes(), model.as_bytes());
    let (mut i, mut j) = (0, 0);
    // After a star: where in the pattern to resume, and where in the model its run ends so far.
    let mut star: Option<(usize, usize)> = None;
    while j < m.len() {
        if i < p.len() && p[i] == b'*' {
            i += 1;
            star = Some((i, j));
        } else if i < p.len() && p[i] == m[j] {
            i += 1;
            j += 1;
        } else if let Some((resume, end)) = star {
            // Let the last star take one more character and try again from there.
            star = Some((resume, end + 1));
            (i, j) = (resume, end + 1);
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == b'*')
}

/// Whether an upstream with these `models` patterns serves the model.
pub fn serves(patterns: &[String], model: &str) -> bool {
    patterns.iter().any(|p| matches(p, model))
}

/// A pattern naming one model id.
pub fn is_literal(pattern: &str) -> bool {
    !pattern.contains('*')
}

struct Entry {
    id: String,
    display_name: String,
}

/// The models the configuration names, in a stable order.
pub struct Catalog {
    entries: Vec<Entry>,
    created_at: String,
}

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 1000;

impl Catalog {
    /// `None` when the configuration names no model (every pattern has a `*` and there is no
    /// alias): the gateway then forwards `/v1/models` to an upstream. `created_at` (RFC 3339) is
    /// given to every entry: the configuration does not know release dates.
    pub fn new(config: &Config, created_at: &str) -> Option<Catalog> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut add = |id: &str, display_name: String| {
            if !entries.iter().any(|e| e.id == id) {
                entries.push(Entry {
                    id: id.to_owned(),
                    display_name,
                });
            }
        };
        for u in &config.upstreams {
            for p in u.models.iter().filter(|p| is_literal(p)) {
                add(p, p.clone());
            }
        }
        for (alias, target) in &config.models.aliases {
            add(alias, format!("{alias} (alias of {target})"));
        }
        (!entries.is_empty()).then(|| Catalog {
            entries,
            created_at: created_at.to_owned(),
        })
    }

    /// The list page for a raw query string (`limit`, `after_id`, `before_id`, as the API's).
    pub fn list(&self, query: &str) -> Result<String, ApiError> {
        let mut limit = DEFAULT_LIMIT;
        let (mut after, mut before) = (None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value);
            match name {
                "limit" => {
                    limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            ApiError::invalid_request(
                                format!("limit: must be a number from 1 to {MAX_LIMIT}").into(),
                            )
                        })?
                }
                "after_id" => after = Some(value),
                "before_id" => before = Some(value),
                _ => {}
            }
        }
        let ids = || self.entries.iter().map(|e| e.id.as_str());
        let (page, has_more) = match (after, before) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid_request(
                    "after_id and before_id cannot be combined".into(),
                ))
            }
            (Some(id), None) => match ids().position(|x| x == id) {
                Some(at) => {
                    let rest = &self.entries[at + 1..];
                    (&rest[..limit.min(rest.len())], rest.len() > limit)
                }
                None => (&self.entries[..0], false),
            },
            (None, Some(id)) => match ids().position(|x| x == id) {
                Some(at) => {
                    let start = at.saturating_sub(limit);
                    (&self.entries[start..at], start > 0)
                }
                None => (&self.entries[..0], false),
            },
            (None, None) => {
                let n = limit.min(self.entries.len());
                (&self.entries[..n], self.entries.len() > n)
            }
        };
        let mut out = String::from("{\"data\":[");
        for (i, e) in page.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            self.push_model(&mut out, e);
        }
        out.push_str("],\"has_more\":");
        out.push_str(if has_more { "true" } else { "false" });
        for (key, entry) in [("first_id", page.first()), ("last_id", page.last())] {
            out.push_str(",\"");
            out.push_str(key);
            out.push_str("\":");
            match entry {
                Some(e) => json::push_str(&mut out, &e.id),
                None => out.push_str("null"),
            }
        }
        out.push('}');
        Ok(out)
    }

    /// One model, or `None` (the caller answers 404).
    pub fn get(&self, id: &str) -> Option<String> {
        let entry = self.entries.iter().find(|e| e.id == id)?;
        let mut out = String::new();
        self.push_model(&mut out, entry);
        Some(out)
    }

    fn push_model(&self, out: &mut String, e: &Entry) {
        out.push_str("{\"type\":\"model\",\"id\":");
        json::push_str(out, &e.id);
        out.push_str(",\"display_name\":");
        json::push_str(out, &e.display_name);
        out.push_str(",\"created_at\":");
        json::push_str(out, &self.created_at);
        out.push('}');
    }
}

/// `%XX` escapes decoded (a malformed one is kept as it is); `+` stays `+`.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[path = "models_tests.rs"]
mod tests;
