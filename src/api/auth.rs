//! Who is calling: the configured client key a request carries.
//!
//! A key arrives in `x-api-key` or as `Authorization: Bearer …`, as the official SDKs send it.
//! Keys are compared as SHA-256 digests against every configured key, without stopping at a
//! match, so the time a check takes says nothing about the keys or which one matched. With no
//! keys configured every request is let through (the configuration allows that on loopback
//! listeners only).

use ring::digest::{digest, SHA256};

use crate::config::ApiKey;
use crate::http::head::RequestHead;
use crate::http::{ApiError, ErrorType};

pub struct ClientKeys {
    /// Each key's name and the digest of its secret.
    keys: Vec<(String, [u8; 32])>,
}

impl ClientKeys {
    pub fn new(keys: &[ApiKey]) -> ClientKeys {
        ClientKeys {
            keys: keys
                .iter()
                .map(|k| (k.name.clone(), sha256(k.key.as_bytes())))
                .collect(),
        }
    }

    /// The name of the caller's key (`None` when no keys are configured), or a 401.
    pub fn check(&self, head: &RequestHead) -> Result<Option<&str>, ApiError> {
        if self.keys.is_empty() {
            return Ok(None);
        }
        let Some(presented) = presented_key(head) else {
            return Err(unauthorized(
                "no API key: send it in the x-api-key header or as Authorization: Bearer",
            ));
        };
        let presented = sha256(presented);
        let mut matched = None;
        for (i, (_, key)) in self.keys.iter().enumerate() {
            if same(&presented, key) {
                matched = Some(i);
            }
        }
        match matched {
            Some(i) => Ok(Some(&self.keys[i].0)),
            None => Err(unauthorized("invalid API key")),
        }
    }
}

/// `x-api-key`, else the token of `Authorization: Bearer`.
fn presented_key(head: &RequestHead) -> Option<&[u8]> {
    if let Some(k) = head.header("x-api-key").filter(|k| !k.is_empty()) {
        return Some(k);
    }
    let auth = head.header("authorization")?;
    let (scheme, token) = auth.split_at(auth.iter().position(|&b| b == b' ')?);
    let token = token.trim_ascii();
    (scheme.eq_ignore_ascii_case(b"bearer") && !token.is_empty()).then_some(token)
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, data).as_ref());
    out
}

/// Equality without an early exit.
pub(crate) fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn unauthorized(message: &'static str) -> ApiError {
    ApiError::new(401, ErrorType::Authentication, message.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::{parse, Parse};

    fn head(headers: &str) -> RequestHead {
        let raw = format!("POST /v1/messages HTTP/1.1\r\nhost: x\r\n{headers}\r\n");
        let bytes = bytes::Bytes::from(raw);
        match parse(&bytes).unwrap() {
            Parse::Complete(parts) => RequestHead::from_parts(bytes, parts).unwrap(),
            Parse::Partial => panic!("incomplete head"),
        }
    }

    fn keys() -> ClientKeys {
        ClientKeys::new(&[
            ApiKey {
                name: "team-a".into(),
                key: "rg-key-a".into(),
                limits: Default::default(),
            },
            ApiKey {
                name: "team-b".into(),
                key: "rg-key-b".into(),
                limits: Default::default(),
            },
        ])
    }

    #[test]
    fn accepts_either_header_and_names_the_key() {
        let k = keys();
        assert_eq!(
            k.check(&head("x-api-key: rg-key-b\r\n")).unwrap(),
            Some("team-b")
        );
        assert_eq!(
            k.check(&head("authorization: Bearer rg-key-a\r\n"))
                .unwrap(),
            Some("team-a")
        );
        assert_eq!(
            k.check(&head("Authorization: bearer   rg-key-a \r\n"))
                .unwrap(),
            Some("team-a")
        );
    }

    #[test]
    fn refuses_missing_and_wrong_keys_without_echoing_them() {
        let k = keys();
        for h in [
            "",
            "x-api-key: rg-key-c\r\n",
            "x-api-key: rg-key-a2\r\n",
            "authorization: Basic rg-key-a\r\n",
            "authorization: Bearer\r\n",
            "authorization: rg-key-a\r\n",
        ] {
            let e = k.check(&head(h)).unwrap_err();
            assert_eq!(e.status, 401, "{h:?}");
            assert!(!e.body("req_x").contains("rg-key"), "{h:?}");
            assert!(e.body("req_x").contains("authentication_error"));
        }
    }

    #[test]
    fn no_keys_lets_everyone_through() {
        let k = ClientKeys::new(&[]);
        assert_eq!(k.check(&head("")).unwrap(), None);
    }
}
