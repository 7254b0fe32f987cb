//! A list's page: what the client asked for and the answer's shape, as the Anthropic API pages
//! its lists.
//!
//! Two generations of the SDKs page differently, and both must see every object once: by id
//! cursors (`before_id`, `after_id`; the answer's `has_more`, `first_id`, `last_id`), and, for
//! files in newer SDKs, by an opaque cursor (`page`; the answer's `next_page`, prefixed `page_`).
//! Every answer carries both. Newer SDKs may also ask for given files (`ids[]`, at most 100: one
//! page, ids the caller cannot see left out). A filter the gateway cannot apply (`scope_id`) is
//! refused rather than ignored, which would answer a list the caller did not ask for.

use percent_encoding::percent_decode_str;

use crate::http::ApiError;
use crate::json::write::push_str_bytes;

/// The page a client asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asked {
    pub limit: usize,
    pub before_id: Option<String>,
    pub after_id: Option<String>,
    /// Only these objects (`ids[]`), when given.
    pub ids: Option<Vec<String>>,
}

/// The most ids one list may ask for.
pub const MAX_IDS: usize = 100;
/// What begins an opaque page cursor.
const PAGE_PREFIX: &str = "page_";

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 1000;

/// Reads the query of a list request; other parameters are ignored, as the API ignores them.
pub fn asked(query: &str) -> Result<Asked, ApiError> {
    let mut asked = Asked {
        limit: DEFAULT_LIMIT,
        before_id: None,
        after_id: None,
        ids: None,
    };
    let mut paged = false;
    let bad = |m: String| ApiError::invalid_request(m.into());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |text: &str| {
            (percent_decode_str(&text.replace('+', " ")).decode_utf8())
                .map(|t| t.into_owned())
                .map_err(|_| bad(format!("{key}: not UTF-8")))
        };
        let (key, value) = (decode(key)?, decode(value)?);
        match key.as_str() {
            "limit" => {
                asked.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| bad(format!("limit: must be between 1 and {MAX_LIMIT}")))?;
            }
            "before_id" => asked.before_id = Some(value),
            "after_id" => asked.after_id = Some(value),
            "page" => {
                let id = value.strip_prefix(PAGE_PREFIX).filter(|id| !id.is_empty());
                let id = id.ok_or_else(|| bad("page: not a cursor this gateway gave".into()))?;
                asked.after_id = Some(id.to_string());
                paged = true;
            }
            "ids[]" | "ids" => {
                let ids = asked.ids.get_or_insert_with(Vec::new);
                if !ids.contains(&value) {
                    ids.push(value);
                }
            }
            "scope_id" => {
                return Err(bad(
                    "scope_id: lists through the gateway cannot be filtered by scope".into(),
                ))
            }
            _ => {}
        }
    }
    if asked.before_id.is_some() && asked.after_id.is_some() {
        return Err(bad("before_id and after_id cannot both be given".into()));
    }
    if let Some(ids) = &asked.ids {
        if ids.len() > MAX_IDS {
            return Err(bad(format!("ids: at most {MAX_IDS}")));
        }
        if paged || asked.before_id.is_some() || asked.after_id.is_some() {
            return Err(bad("ids cannot be given with a page cursor".into()));
        }
    }
    Ok(asked)
}

/// The answer: `objects` (each a JSON object, as written) under `data`, newest first; a
/// `next_page` cursor when more (older) objects follow, for a page that goes forward.
pub fn page(objects: &[(String, Vec<u8>)], has_more: bool, forward: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + objects.iter().map(|(_, o)| o.len() + 1).sum::<usize>());
    out.extend_from_slice(b"{\"data\":[");
    for (i, (_, object)) in objects.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(object);
    }
    out.extend_from_slice(b"],\"has_more\":");
    out.extend_from_slice(if has_more { b"true" } else { b"false" });
    for (key, id) in [
        ("first_id", objects.first().map(|(id, _)| id)),
        ("last_id", objects.last().map(|(id, _)| id)),
    ] {
        out.extend_from_slice(format!(",\"{key}\":").as_bytes());
        match id {
            Some(id) => push_str_bytes(&mut out, id),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.extend_from_slice(b",\"next_page\":");
    match objects.last() {
        Some((id, _)) if has_more && forward => {
            push_str_bytes(&mut out, &format!("{PAGE_PREFIX}{id}"))
        }
        _ => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_asked() {
        assert_eq!(
            asked("").unwrap(),
            Asked {
                limit: 20,
                before_id: None,
                after_id: None,
                ids: None,
            }
        );
        let a = asked("limit=5&after_id=msgbatch_%41b&beta=true").unwrap();
        assert_eq!((a.limit, a.after_id.as_deref()), (5, Some("msgbatch_Ab")));
        let a = asked("limit=2&page=page_file_9").unwrap();
        assert_eq!((a.limit, a.after_id.as_deref()), (2, Some("file_9")));
        let a = asked("ids%5B%5D=f1&ids%5B%5D=f2&ids%5B%5D=f1").unwrap();
        assert_eq!(a.ids.unwrap(), ["f1", "f2"]);
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=x",
            "before_id=a&after_id=b",
            "page=file_9",
            "page=page_",
            "scope_id=s",
            "ids[]=a&page=page_b",
        ] {
            assert_eq!(asked(bad).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn the_page() {
        let objects = vec![
            ("b2".to_string(), br#"{"id":"b2"}"#.to_vec()),
            ("b1".to_string(), br#"{"id":"b1"}"#.to_vec()),
        ];
        let out = page(&objects, true, true);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["data"][1]["id"], "b1");
        assert_eq!(
            (v["has_more"].as_bool(), v["first_id"].as_str()),
            (Some(true), Some("b2"))
        );
        assert_eq!(v["last_id"], "b1");
        assert_eq!(v["next_page"], "page_b1");
        let back: serde_json::Value = serde_json::from_slice(&page(&objects, true, false)).unwrap();
        assert!(back["next_page"].is_null());
        let empty: serde_json::Value = serde_json::from_slice(&page(&[], false, true)).unwrap();
        assert_eq!(empty["data"].as_array().unwrap().len(), 0);
        assert!(empty["first_id"].is_null() && empty["last_id"].is_null());
    }
}
