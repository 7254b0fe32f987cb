//! The links the gateway hands out in place of the upstream's.
//!
//! A batch's `results_url` names the upstream (`https://api.anthropic.com/v1/messages/batches/
//! …/results`). The SDKs follow it as it is, so left alone it would send the client around the
//! gateway, with a key that upstream does not know. The gateway points it at itself: its
//! `server.public_url` when set, else `http://` and the `Host` the client used. Every other
//! byte of the object stays as the upstream wrote it.

use crate::json::skim::{members, unescape};
use crate::json::write::push_str_bytes;

/// The base URL clients reach the gateway at.
pub fn public_base(configured: Option<&str>, host: Option<&[u8]>) -> String {
    match configured {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let host = host.and_then(|h| std::str::from_utf8(h).ok());
            format!("http://{}", host.unwrap_or("localhost"))
        }
    }
}

/// The object with its `results_url` on `base`; `None` when it has none to change (null, not
/// a string, not a URL) or is not a JSON object.
pub fn gateway_results_url(object: &[u8], base: &str) -> Option<Vec<u8>> {
    let mut found = None;
    members(object, |key, value| {
        if key == "results_url" {
            found = Some(value);
        }
    })
    .ok()?;
    let value = found?;
    let url = unescape(value.strip_prefix(b"\"")?.strip_suffix(b"\"")?)?;
    let after_scheme = url.split_once("://")?.1;
    let path = &after_scheme[after_scheme.find('/')?..];
    let start = value.as_ptr() as usize - object.as_ptr() as usize;
    let mut out = Vec::with_capacity(object.len() + base.len());
    out.extend_from_slice(&object[..start]);
    push_str_bytes(&mut out, &format!("{base}{path}"));
    out.extend_from_slice(&object[start + value.len()..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_url_points_at_the_gateway() {
        let object = br#"{"id":"msgbatch_1","results_url":"https:\/\/api.anthropic.com/v1/messages/batches/msgbatch_1/results","type":"message_batch"}"#;
        let out = gateway_results_url(object, "http://127.0.0.1:8080").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"id":"msgbatch_1","results_url":"http://127.0.0.1:8080/v1/messages/batches/msgbatch_1/results","type":"message_batch"}"#
        );
    }

    #[test]
    fn nothing_to_change_is_none() {
        for object in [
            &br#"{"id":"b","results_url":null}"#[..],
            br#"{"id":"b"}"#,
            br#"{"id":"b","results_url":"relative"}"#,
            br#"[1]"#,
            b"not json",
            // A nested results_url is not the object's.
            br#"{"id":"b","x":{"results_url":"https://h/p"}}"#,
        ] {
            assert_eq!(gateway_results_url(object, "http://gw"), None);
        }
    }

    #[test]
    fn the_public_base() {
        assert_eq!(
            public_base(Some("https://llm.example.com/"), None),
            "https://llm.example.com"
        );
        assert_eq!(
            public_base(None, Some(b"127.0.0.1:9")),
            "http://127.0.0.1:9"
        );
        assert_eq!(public_base(None, None), "http://localhost");
    }
}
