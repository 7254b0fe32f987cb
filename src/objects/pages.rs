//! A list's page: what the client asked for (`limit`, `before_id`, `after_id`) and the answer's
//! shape (`data`, `has_more`, `first_id`, `last_id`), as the Anthropic API pages its lists.

use percent_encoding::percent_decode_str;

use crate::http::ApiError;
use crate::json::write::push_str_bytes;

/// The page a client asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asked {
    pub limit: usize,
    pub before_id: Option<String>,
    pub after_id: Option<String>,
}

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 1000;

/// Reads the query of a list request; other parameters are ignored, as the API ignores them.
pub fn asked(query: &str) -> Result<Asked, ApiError> {
    let mut asked = Asked {
        limit: DEFAULT_LIMIT,
        before_id: None,
        after_id: None,
    };
    let bad = |m: String| ApiError::invalid_request(m.into());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode_str(&value.replace('+', " "))
            .decode_utf8()
            .map_err(|_| bad(format!("{key}: not UTF-8")))?
            .into_owned();
        match key {
            "limit" => {
                asked.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| bad(format!("limit: must be between 1 and {MAX_LIMIT}")))?;
            }
            "before_id" => asked.before_id = Some(value),
            "after_id" => asked.after_id = Some(value),
            _ => {}
        }
    }
    if asked.before_id.is_some() && asked.after_id.is_some() {
        return Err(bad("before_id and after_id cannot both be given".into()));
    }
    Ok(asked)
}

/// The answer: `objects` (each a JSON object, as written) under `data`, newest first.
pub fn page(objects: &[(String, Vec<u8>)], has_more: bool) -> Vec<u8> {
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
                after_id: None
            }
        );
        let a = asked("limit=5&after_id=msgbatch_%41b&beta=true").unwrap();
        assert_eq!((a.limit, a.after_id.as_deref()), (5, Some("msgbatch_Ab")));
        for bad in ["limit=0", "limit=1001", "limit=x", "before_id=a&after_id=b"] {
            assert_eq!(asked(bad).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn the_page() {
        let objects = vec![
            ("b2".to_string(), br#"{"id":"b2"}"#.to_vec()),
            ("b1".to_string(), br#"{"id":"b1"}"#.to_vec()),
        ];
        let out = page(&objects, true);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["data"][1]["id"], "b1");
        assert_eq!(
            (v["has_more"].as_bool(), v["first_id"].as_str()),
            (Some(true), Some("b2"))
        );
        assert_eq!(v["last_id"], "b1");
        let empty: serde_json::Value = serde_json::from_slice(&page(&[], false)).unwrap();
        assert_eq!(empty["data"].as_array().unwrap().len(), 0);
        assert!(empty["first_id"].is_null() && empty["last_id"].is_null());
    }
}
