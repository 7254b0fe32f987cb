//! Claude behind a cloud provider: the client's Messages body as it is, less what the provider
//! takes elsewhere, plus what it asks for.
//!
//! Bedrock and Vertex serve the Anthropic API itself, so the body is not translated: its
//! top-level members are copied as the client wrote them (one walk over the top level, nested
//! values never parsed), some left out (`model`, which goes in the path; `stream`, for Bedrock,
//! which says it in the path) and the provider's own added (`anthropic_version`, Bedrock's
//! `anthropic_beta`). Bedrock takes `metadata.user_id` only, so other metadata is left out.

use super::request::Invalid;
use crate::json::skim;
use crate::json::write::push_str;

/// How the body changes on the way.
pub struct Rebody<'a> {
    /// Top-level members left out.
    pub drop: &'a [&'a str],
    /// Members added, as (name, raw JSON value), unless the client set them (and they were not
    /// left out).
    pub add: &'a [(&'a str, String)],
    /// Keep only `user_id` of `metadata`.
    pub metadata_user_id_only: bool,
}

/// The body with its top-level members changed as `how` says.
pub fn rebody(body: &[u8], how: &Rebody<'_>) -> Result<Vec<u8>, Invalid> {
    let mut out = String::with_capacity(body.len() + 64);
    let mut seen: Vec<String> = Vec::new();
    let mut failed = None;
    let walked = skim::members(body, |key, value| {
        if how.drop.contains(&key) {
            return;
        }
        seen.push(key.to_string());
        let value = match std::str::from_utf8(value) {
            Ok(v) => v,
            Err(_) => {
                failed = Some("the request body is not UTF-8");
                return;
            }
        };
        member(&mut out, key);
        if key == "metadata" && how.metadata_user_id_only {
            out.push('{');
            let _ = skim::members(value.as_bytes(), |k, v| {
                if k == "user_id" {
                    push_str(&mut out, k);
                    out.push(':');
                    out.push_str(std::str::from_utf8(v).unwrap_or("null"));
                }
            });
            out.push('}');
        } else {
            out.push_str(value);
        }
    });
    if walked.is_err() {
        return Err(Invalid::new("the request body must be a JSON object"));
    }
    if let Some(why) = failed {
        return Err(Invalid::new(why));
    }
    for (key, raw) in how.add {
        if !seen.iter().any(|k| k == key) {
            member(&mut out, key);
            out.push_str(raw);
        }
    }
    if out.is_empty() {
        out.push('{');
    }
    out.push('}');
    Ok(out.into_bytes())
}

/// Opens a member: `{` or `,`, then the key and `:`.
fn member(out: &mut String, key: &str) {
    out.push(if out.is_empty() { '{' } else { ',' });
    push_str(out, key);
    out.push(':');
}

/// A comma-separated header value (`anthropic-beta: a, b`) as a JSON array of strings.
pub fn string_array(list: &str) -> String {
    let mut out = String::from("[");
    for (i, item) in list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
    {
        if i > 0 {
            out.push(',');
        }
        push_str(&mut out, item);
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_copied_left_out_and_added() {
        let body = br#"{"model":"claude-x","max_tokens":5, "stream" :true,"messages":[{"role":"user","content":"say \"model\""}],"metadata":{"user_id":"u1","other":2}}"#;
        let add = [
            ("anthropic_version", "\"bedrock-2023-05-31\"".to_string()),
            ("anthropic_beta", string_array("a, b,,")),
        ];
        let out = rebody(
            body,
            &Rebody {
                drop: &["model", "stream"],
                add: &add,
                metadata_user_id_only: true,
            },
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "say \"model\""}],
                "metadata": {"user_id": "u1"},
                "anthropic_version": "bedrock-2023-05-31",
                "anthropic_beta": ["a", "b"]
            })
        );
        // A member the client set is not added again.
        let own = br#"{"anthropic_version":"mine"}"#;
        let out = rebody(
            own,
            &Rebody {
                drop: &[],
                add: &add[..1],
                metadata_user_id_only: false,
            },
        )
        .unwrap();
        assert_eq!(out, br#"{"anthropic_version":"mine"}"#);
        assert!(rebody(
            b"[1]",
            &Rebody {
                drop: &[],
                add: &[],
                metadata_user_id_only: false
            }
        )
        .is_err());
        assert_eq!(string_array(""), "[]");
    }
}
