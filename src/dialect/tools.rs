//! Tool names and tool call ids, both ways across a dialect.
//!
//! Each side has its own rules. OpenAI-compatible servers and Gemini refuse function names over
//! 64 characters, which MCP tools (`mcp__server__tool_with_a_long_name`) exceed; such a name is
//! shortened reversibly (55 characters, `_`, 8 hex digits of its SHA-256) and mapped back in the
//! answer. Anthropic clients require tool ids to match `^[a-zA-Z0-9_-]+$`, while some providers
//! use ids like `functions.get_weather:0`; such an id is carried as `toolu_enc_` and its base64url,
//! so the conversation sends the provider its own id back. A call without an id gets a made-up
//! one, made from the message's id.

use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The longest function name OpenAI's and Gemini's APIs accept.
pub const MAX_NAME: usize = 64;
const KEPT: usize = 55;
const ENCODED: &str = "toolu_enc_";

/// The names a request shortened, to map the answer's names back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolNames {
    shortened: Vec<(String, String)>,
}

impl ToolNames {
    /// The name to send upstream for a client's tool name (remembering a shortened one).
    pub fn upstream<'a>(&mut self, name: &'a str) -> Cow<'a, str> {
        if name.len() <= MAX_NAME {
            return Cow::Borrowed(name);
        }
        let short = shorten(name);
        if !self.shortened.iter().any(|(s, _)| *s == short) {
            self.shortened.push((short.clone(), name.to_string()));
        }
        Cow::Owned(short)
    }

    /// The client's name for a name the upstream used.
    pub fn client<'a>(&'a self, name: &'a str) -> &'a str {
        self.shortened
            .iter()
            .find(|(s, _)| s == name)
            .map_or(name, |(_, full)| full)
    }
}

fn shorten(name: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    let mut kept = KEPT;
    while !name.is_char_boundary(kept) {
        kept -= 1;
    }
    let mut short = String::with_capacity(MAX_NAME);
    short.push_str(&name[..kept]);
    short.push('_');
    for b in &digest.as_ref()[..4] {
        short.push_str(&format!("{b:02x}"));
    }
    short
}

/// The id a client sees for an upstream's tool call id.
pub fn client_id(upstream: &str) -> Cow<'_, str> {
    let valid = !upstream.is_empty()
        && upstream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Cow::Borrowed(upstream)
    } else {
        Cow::Owned(format!("{ENCODED}{}", URL_SAFE_NO_PAD.encode(upstream)))
    }
}

/// The id to send upstream for a client's tool id (the inverse of [`client_id`]).
pub fn upstream_id(client: &str) -> Cow<'_, str> {
    client
        .strip_prefix(ENCODED)
        .and_then(|enc| URL_SAFE_NO_PAD.decode(enc).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .map_or(Cow::Borrowed(client), Cow::Owned)
}

/// The id of the `n`th call of message `message_id` when the upstream gave it none: unique, as
/// message ids are, and the same however the answer was split.
pub fn made_up_id(message_id: &str, n: usize) -> String {
    let message = message_id.strip_prefix("msg_").unwrap_or(message_id);
    format!("toolu_{}_{n}", client_id(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_shortened_and_mapped_back() {
        let mut names = ToolNames::default();
        assert_eq!(names.upstream("get_weather"), "get_weather");
        let long = "mcp__a_server_with_a_long_name__a_tool_with_an_even_longer_name_x";
        let short = names.upstream(long).into_owned();
        assert_eq!(short.len(), MAX_NAME);
        assert!(short.starts_with(&long[..KEPT]));
        assert_ne!(short, names.upstream(&format!("{long}y")));
        assert_eq!(names.client(&short), long);
        assert_eq!(names.client("get_weather"), "get_weather");
    }

    #[test]
    fn ids_round_trip() {
        for id in ["call_abc-123", "functions.get_weather:0", "a b/c", "é"] {
            let shown = client_id(id);
            assert!(shown
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
            assert_eq!(upstream_id(&shown), id);
        }
        assert_eq!(client_id("call_1"), "call_1");
        assert_eq!(upstream_id("toolu_enc_!!"), "toolu_enc_!!");
        assert_eq!(made_up_id("msg_abc", 2), "toolu_abc_2");
        assert_ne!(made_up_id("msg_abc", 1), made_up_id("msg_abd", 1));
    }
}
