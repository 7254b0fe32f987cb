//! Claude on Google Vertex AI: the Anthropic API at Google's `rawPredict` endpoints.
//!
//! The body is the client's, without `model` (the path names it) and with Vertex's
//! `anthropic_version`; `anthropic-beta` stays a header. Answers, streams included, are the
//! Anthropic API's own and are relayed as they are; only errors, which come in Google's shape
//! (sometimes inside an array), are translated (see `errors`).

use super::native::{rebody, Rebody};
use super::request::Invalid;
use super::SEGMENT;

/// The `anthropic_version` Vertex wants in the body.
pub const VERSION: &str = "vertex-2023-10-16";

/// What a path segment of Vertex's keeps as it is: RFC 3986's unreserved characters and `@`,
/// which a segment may hold and every model version has (`claude-sonnet-4-5@20250929`), as
/// Google's own clients send it.
const VERTEX_SEGMENT: &percent_encoding::AsciiSet = &SEGMENT.remove(b'@');

/// Where a model of `project` in `region` is.
fn model_path(project: &str, region: &str, model: &str) -> String {
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, VERTEX_SEGMENT).to_string();
    format!(
        "/v1/projects/{}/locations/{}/publishers/anthropic/models/{}",
        enc(project),
        enc(region),
        enc(model)
    )
}

/// The path and body of a Messages request (`count_tokens`: a count) for `model`.
pub fn encode(
    body: &[u8],
    project: &str,
    region: &str,
    model: &str,
    stream: bool,
    count_tokens: bool,
) -> Result<(String, Vec<u8>), Invalid> {
    let version = ("anthropic_version", format!("\"{VERSION}\""));
    if count_tokens {
        // Counting has an endpoint of its own, which takes the model in the body.
        let path = model_path(project, region, "count-tokens") + ":rawPredict";
        let add = [("model", crate::json::write::string(model)), version];
        let how = Rebody {
            drop: &["model"],
            add: &add,
            metadata_user_id_only: false,
        };
        return Ok((path, rebody(body, &how)?));
    }
    let verb = if stream {
        ":streamRawPredict"
    } else {
        ":rawPredict"
    };
    let path = model_path(project, region, model) + verb;
    let how = Rebody {
        drop: &["model"],
        add: &[version],
        metadata_user_id_only: false,
    };
    Ok((path, rebody(body, &how)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"model":"claude-sonnet-4-5","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

    #[test]
    fn paths_and_bodies() {
        let (path, body) = encode(
            BODY,
            "my-proj",
            "us-east5",
            "claude-sonnet-4-5@20250929",
            true,
            false,
        )
        .unwrap();
        assert_eq!(
            path,
            "/v1/projects/my-proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict"
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["anthropic_version"], VERSION);
        assert_eq!(v["stream"], true, "Vertex reads stream from the body");
        assert!(v.get("model").is_none());
        let (path, _) = encode(BODY, "p", "global", "m", false, false).unwrap();
        assert!(
            path.ends_with("/locations/global/publishers/anthropic/models/m:rawPredict"),
            "{path}"
        );
        let (path, body) = encode(BODY, "p", "europe-west1", "claude-x@1", false, true).unwrap();
        assert_eq!(path, "/v1/projects/p/locations/europe-west1/publishers/anthropic/models/count-tokens:rawPredict");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["model"], "claude-x@1");
        assert_eq!(v["anthropic_version"], VERSION);
    }
}
