//! The list endpoints' pagination, as the Anthropic API pages batches and files: `limit`
//! (default 20, 1 to 1000), `after_id` and `before_id` cursors (and the opaque `page` cursor
//! newer SDKs use for files), newest first, and the page shape
//! `{"data":[…],"has_more":…,"first_id":…,"last_id":…,"next_page":…}`.
//!
//! Kept apart and pure (a list in, a range out) so that the cursor rules, which SDK
//! auto-pagination depends on, are tested without a server.

use std::ops::Range;

use crate::http::ApiError;

/// The default page size.
pub const DEFAULT_LIMIT: usize = 20;
/// The largest page size asked for that is allowed.
pub const MAX_LIMIT: usize = 1000;

/// What a list request asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageQuery {
    pub limit: usize,
    /// The objects after this one (older ones).
    pub after_id: Option<String>,
    /// The objects just before this one (newer ones).
    pub before_id: Option<String>,
}

impl PageQuery {
    /// Reads `limit`, `after_id` and `before_id` from a query string (other parameters, such
    /// as the SDK's `beta=true`, are ignored).
    pub fn parse(query: &str) -> Result<PageQuery, ApiError> {
        let mut q = PageQuery {
            limit: DEFAULT_LIMIT,
            ..PageQuery::default()
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| invalid(format!("{name}: not valid UTF-8")))?;
            match name {
                "limit" => {
                    q.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            invalid(format!(
                                "limit: Input should be an integer from 1 to {MAX_LIMIT}"
                            ))
                        })?;
                }
                "after_id" => q.after_id = Some(value.into_owned()),
                // Newer SDKs page files by an opaque cursor: this mock's is the last id seen.
                "page" => {
                    let id = value.strip_prefix("page_").filter(|id| !id.is_empty());
                    let id = id.ok_or_else(|| invalid("page: not a page cursor".into()))?;
                    q.after_id = Some(id.to_string());
                }
                "before_id" => q.before_id = Some(value.into_owned()),
                _ => {}
            }
        }
        Ok(q)
    }
}

fn invalid(message: String) -> ApiError {
    ApiError::invalid_request(message.into())
}

/// One page: which of the listed objects it holds, and whether more lie beyond it in the
/// direction the request pages (older ones for `after_id` or no cursor, newer ones for
/// `before_id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub range: Range<usize>,
    pub has_more: bool,
}

/// The page `q` asks for of `ids`, listed newest first. `after_id` starts after its object;
/// `before_id` takes the `limit` objects right before its own (both may be given: the objects
/// between them). A cursor that names no listed object is a 400.
pub fn page<S: AsRef<str>>(ids: &[S], q: &PageQuery) -> Result<Page, ApiError> {
    let position = |name: &str, id: &Option<String>| -> Result<Option<usize>, ApiError> {
        let Some(id) = id else { return Ok(None) };
        ids.iter()
            .position(|i| i.as_ref() == id)
            .map(Some)
            .ok_or_else(|| invalid(format!("{name}: no object with id {}", shown(id))))
    };
    let start = position("after_id", &q.after_id)?.map_or(0, |p| p + 1);
    let end = position("before_id", &q.before_id)?.unwrap_or(ids.len());
    if end <= start {
        return Ok(Page {
            range: start..start,
            has_more: false,
        });
    }
    let limit = q.limit.max(1);
    Ok(if q.before_id.is_some() {
        let from = end.saturating_sub(limit).max(start);
        Page {
            range: from..end,
            has_more: from > start,
        }
    } else {
        let to = (start + limit).min(end);
        Page {
            range: start..to,
            has_more: to < end,
        }
    })
}

/// An id as an error message shows it: at most 100 characters.
pub fn shown(id: &str) -> String {
    id.chars().take(100).collect()
}

/// The page's JSON: `objects` are the page's objects, already rendered, and `ids` their ids;
/// `next_page` (the cursor newer SDKs follow) when more follow a page that goes forward.
pub fn render(
    objects: Vec<serde_json::Value>,
    ids: &[&str],
    q: &PageQuery,
    has_more: bool,
) -> String {
    let forward = q.before_id.is_none() && has_more;
    serde_json::json!({
        "data": objects,
        "has_more": has_more,
        "first_id": ids.first(),
        "last_id": ids.last(),
        "next_page": ids.last().filter(|_| forward).map(|id| format!("page_{id}")),
    })
    .to_string()
}

#[cfg(test)]
#[path = "page_tests.rs"]
mod tests;
