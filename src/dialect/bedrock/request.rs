//! A Messages request as Bedrock's `InvokeModel` wants it (TRANSLATION.md §3).
//!
//! The body is the Anthropic API's, less `model` (the path names it) and `stream` (so does the
//! path), with Bedrock's `anthropic_version` and the client's `anthropic-beta` header as an
//! `anthropic_beta` array; `metadata` keeps only `user_id`, all Bedrock takes. Model ids go in the
//! path percent-encoded once (`…-v1%3A0`, an inference-profile ARN's `/` and `:` too); the
//! signature encodes them once more (see `sigv4`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::super::native::{rebody, string_array, Rebody};
use super::super::request::Invalid;
use super::super::SEGMENT;

/// The `anthropic_version` Bedrock wants in the body.
pub const VERSION: &str = "bedrock-2023-05-31";

/// The path and body for `model` (`count_tokens`: a count, through `CountTokens`). `beta` is
/// the client's `anthropic-beta` header.
pub fn encode(
    body: &[u8],
    model: &str,
    beta: Option<&str>,
    stream: bool,
    count_tokens: bool,
) -> Result<(String, Vec<u8>), Invalid> {
    let mut add = vec![("anthropic_version", format!("\"{VERSION}\""))];
    if let Some(list) = beta.filter(|b| !b.trim().is_empty()) {
        add.push(("anthropic_beta", string_array(list)));
    }
    if count_tokens {
        // CountTokens takes an InvokeModel body, which must name its output limit.
        add.push(("max_tokens", "1".into()));
    }
    let how = Rebody {
        drop: &["model", "stream"],
        add: &add,
        metadata_user_id_only: true,
    };
    let invoke = rebody(body, &how)?;
    let id = percent_encoding::utf8_percent_encode(model, SEGMENT).to_string();
    if count_tokens {
        let wrapped = format!(
            "{{\"input\":{{\"invokeModel\":{{\"body\":\"{}\"}}}}}}",
            STANDARD.encode(&invoke)
        );
        return Ok((format!("/model/{id}/count-tokens"), wrapped.into_bytes()));
    }
    let verb = if stream {
        "invoke-with-response-stream"
    } else {
        "invoke"
    };
    Ok((format!("/model/{id}/{verb}"), invoke))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"model":"claude-sonnet-4-5","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"hi"}],"metadata":{"user_id":"u","x":1}}"#;

    #[test]
    fn invoke_paths_and_bodies() {
        let id = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
        let (path, body) =
            encode(BODY, id, Some("context-1m-2025-08-07, tools"), true, false).unwrap();
        assert_eq!(
            path,
            "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream"
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "max_tokens": 9,
                "messages": [{"role": "user", "content": "hi"}],
                "metadata": {"user_id": "u"},
                "anthropic_version": VERSION,
                "anthropic_beta": ["context-1m-2025-08-07", "tools"]
            })
        );
        let arn =
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-x-v1:0";
        let (path, body) = encode(BODY, arn, None, false, false).unwrap();
        assert_eq!(
            path,
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-x-v1%3A0/invoke"
        );
        assert!(serde_json::from_slice::<serde_json::Value>(&body)
            .unwrap()
            .get("anthropic_beta")
            .is_none());
    }

    #[test]
    fn counts_wrap_an_invoke_body() {
        let count = br#"{"model":"claude-x","messages":[{"role":"user","content":"hi"}]}"#;
        let (path, body) = encode(count, "anthropic.claude-x-v1:0", None, false, true).unwrap();
        assert_eq!(path, "/model/anthropic.claude-x-v1%3A0/count-tokens");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let inner = STANDARD
            .decode(v["input"]["invokeModel"]["body"].as_str().unwrap())
            .unwrap();
        let inner: serde_json::Value = serde_json::from_slice(&inner).unwrap();
        assert_eq!(inner["max_tokens"], 1);
        assert_eq!(inner["anthropic_version"], VERSION);
        assert!(inner.get("model").is_none());
    }
}
