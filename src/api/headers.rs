//! Header rules for both directions of a forwarded request.
//!
//! A request translated for another dialect keeps only the client's end-to-end headers and
//! carries the dialect's own content and credential headers.
//!
//! Towards the upstream: hop-by-hop headers go, the client's credentials are replaced by the
//! upstream's, `anthropic-version` and `anthropic-beta` pass unchanged (a default version only
//! when missing), `Host` names the upstream. Towards the client: hop-by-hop headers go, framing
//! headers are rewritten for the framing actually used, a `request-id` is always present, and
//! event streams are marked so that intermediaries do not buffer them.

use std::io::Write;

use crate::http::head::RequestHead;
use crate::http::response::ResponseHead as OutHead;
use crate::upstream::response::ResponseHead;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
fn is_hop_by_hop(name: &str) -> bool {
    const HOP: [&str; 7] = [
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
    ];
    HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
        || name.len() >= 6 && name[..6].eq_ignore_ascii_case("proxy-")
}

/// Header names the `Connection` header lists, which are hop-by-hop for this message too.
fn connection_listed<'a>(headers: impl Iterator<Item = (&'a str, &'a [u8])>) -> Vec<&'a [u8]> {
    headers
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
        .collect()
}

/// The API's rate-limit headers (`anthropic-ratelimit-requests-limit`, …).
fn is_rate_limit(name: &str) -> bool {
    const PREFIX: &str = "anthropic-ratelimit-";
    name.len() > PREFIX.len() && name[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
}

fn listed(name: &str, list: &[&[u8]]) -> bool {
    list.iter().any(|l| l.eq_ignore_ascii_case(name.as_bytes()))
}

/// What the upstream request needs besides the client's head.
pub struct Outbound<'a> {
    /// Path prefix of the upstream's base URL.
    pub path_prefix: &'a str,
    pub host: &'a str,
    /// The credential to send as `x-api-key`; `None` for the built-in mock.
    pub api_key: Option<&'a str>,
    pub default_version: &'a str,
    pub body_len: u64,
    /// The body goes as chunks (its length is not known before it is all sent).
    pub chunked: bool,
    /// Streams are relayed event by event, so they must not come back compressed.
    pub stream: bool,
    /// A method and target of the gateway's own in place of the client's (a list asks for each
    /// object it shows).
    pub line: Option<(&'a str, &'a str)>,
}

/// The head of the request sent upstream.
pub fn upstream_request(req: &RequestHead, out: &Outbound<'_>) -> Vec<u8> {
    let (method, target) = out.line.unwrap_or((req.method_str(), req.target()));
    let mut h = Vec::with_capacity(256 + target.len() + out.api_key.map_or(0, str::len));
    h.extend_from_slice(method.as_bytes());
    h.push(b' ');
    h.extend_from_slice(out.path_prefix.as_bytes());
    h.extend_from_slice(target.as_bytes());
    h.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    h.extend_from_slice(out.host.as_bytes());
    h.extend_from_slice(b"\r\n");
    let listed_names = connection_listed(req.headers());
    let mut has_version = false;
    for (name, value) in req.headers() {
        let drop = is_hop_by_hop(name)
            || listed(name, &listed_names)
            || [
                "host",
                "content-length",
                "x-api-key",
                "authorization",
                "expect",
            ]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
            || out.stream && name.eq_ignore_ascii_case("accept-encoding");
        if drop {
            continue;
        }
        has_version |= name.eq_ignore_ascii_case("anthropic-version");
        push_header(&mut h, name, value);
    }
    if let Some(key) = out.api_key {
        push_header(&mut h, "x-api-key", key.as_bytes());
    }
    if !has_version {
        push_header(&mut h, "anthropic-version", out.default_version.as_bytes());
    }
    if out.chunked {
        h.extend_from_slice(b"transfer-encoding: chunked\r\n");
    } else if out.body_len > 0
        || out.line.is_none() && req.framing != crate::http::head::BodyFraming::None
    {
        h.extend_from_slice(b"content-length: ");
        // Writing a number into a Vec cannot fail.
        let _ = write!(h, "{}\r\n", out.body_len);
    }
    h.extend_from_slice(b"\r\n");
    h
}

/// What a translated request needs besides the client's head.
pub struct Translated<'a> {
    pub path_prefix: &'a str,
    /// The dialect's path (and query) after the prefix.
    pub path: &'a str,
    pub host: &'a str,
    /// The dialect's own headers: the credential as it sends it, a signature, a beta list.
    pub extra: &'a [(&'a str, &'a str)],
    /// What the answer is asked to be.
    pub accept: &'a str,
    pub body_len: usize,
}

/// The head of a request translated for an upstream of another dialect. Of the client's headers
/// only those that mean something end to end go (custom `x-` headers, the user agent): not its
/// credentials, not the Anthropic API's own headers, not the framing and content headers the
/// translation replaces, not a cloud provider's own (`x-amz-*`, `x-goog-*`), which would
/// change what the gateway signs or bills.
pub fn translated_request(req: &RequestHead, out: &Translated<'_>) -> Vec<u8> {
    let mut h = Vec::with_capacity(256 + out.path.len());
    h.extend_from_slice(b"POST ");
    h.extend_from_slice(out.path_prefix.as_bytes());
    h.extend_from_slice(out.path.as_bytes());
    h.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    h.extend_from_slice(out.host.as_bytes());
    h.extend_from_slice(b"\r\n");
    let listed_names = connection_listed(req.headers());
    for (name, value) in req.headers() {
        let replaced = [
            "host",
            "content-length",
            "content-type",
            "content-encoding",
            "x-api-key",
            "authorization",
            "expect",
            "accept",
            "accept-encoding",
        ]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n));
        let prefixed = |p: &str| name.len() > p.len() && name[..p.len()].eq_ignore_ascii_case(p);
        let foreign = prefixed("anthropic-") || prefixed("x-amz-") || prefixed("x-goog-");
        if replaced || foreign || is_hop_by_hop(name) || listed(name, &listed_names) {
            continue;
        }
        push_header(&mut h, name, value);
    }
    for (name, value) in out.extra {
        push_header(&mut h, name, value.as_bytes());
    }
    push_header(&mut h, "accept", out.accept.as_bytes());
    push_header(&mut h, "content-type", CONTENT_TYPE.as_bytes());
    h.extend_from_slice(b"content-length: ");
    h.extend_from_slice(itoa::Buffer::new().format(out.body_len).as_bytes());
    h.extend_from_slice(b"\r\n\r\n");
    h
}

/// What every translated request body is.
pub const CONTENT_TYPE: &str = "application/json";

fn push_header(h: &mut Vec<u8>, name: &str, value: &[u8]) {
    h.extend_from_slice(name.as_bytes());
    h.extend_from_slice(b": ");
    h.extend_from_slice(value);
    h.extend_from_slice(b"\r\n");
}

/// The head of the response sent to the client, without its framing header (the caller adds
/// Content-Length or chunked).
///
/// `gateway` are the gateway's own headers for the answer (a limited key's
/// `anthropic-ratelimit-*`): when there are any, the upstream's `anthropic-ratelimit-*`, which
/// describe the upstream account's limits, give way to them.
pub fn client_response(
    up: &ResponseHead,
    request_id: &str,
    event_stream: bool,
    close: bool,
    gateway: &str,
) -> OutHead {
    let mut out = OutHead::with_reason(up.status, up.reason());
    let listed_names = connection_listed(up.headers());
    let mut has_request_id = false;
    let mut has_cache_control = false;
    for (name, value) in up.headers() {
        if is_hop_by_hop(name)
            || listed(name, &listed_names)
            || name.eq_ignore_ascii_case("content-length")
            || event_stream && name.eq_ignore_ascii_case("x-accel-buffering")
            || !gateway.is_empty() && is_rate_limit(name)
        {
            continue;
        }
        has_request_id |= name.eq_ignore_ascii_case("request-id");
        has_cache_control |= name.eq_ignore_ascii_case("cache-control");
        out.header(name, value);
    }
    out.lines(gateway);
    if !has_request_id {
        out.header("request-id", request_id.as_bytes());
    }
    if event_stream {
        if !has_cache_control {
            out.header("cache-control", b"no-cache");
        }
        out.header("x-accel-buffering", b"no");
    }
    if close {
        out.header("connection", b"close");
    }
    out
}

/// The head of a translated answer sent to the client, without its framing header: the status,
/// the content type of what the translation writes, and of the upstream's headers only
/// `retry-after` (the SDKs wait as it says); the rest describe the other API's answer.
pub fn translated_response(
    up: &ResponseHead,
    request_id: &str,
    event_stream: bool,
    close: bool,
    gateway: &str,
) -> OutHead {
    let mut out = OutHead::with_reason(up.status, up.reason());
    let content_type: &[u8] = match event_stream {
        true => b"text/event-stream; charset=utf-8",
        false => b"application/json",
    };
    out.header("content-type", content_type);
    out.header("request-id", request_id.as_bytes());
    out.lines(gateway);
    if let Some(wait) = up.header("retry-after") {
        out.header("retry-after", wait);
    }
    if event_stream {
        out.header("cache-control", b"no-cache");
        out.header("x-accel-buffering", b"no");
    }
    if close {
        out.header("connection", b"close");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::{parse, Parse};
    use bytes::Bytes;

    fn req(text: &str) -> RequestHead {
        let raw = Bytes::copy_from_slice(text.as_bytes());
        let Parse::Complete(parts) = parse(&raw).unwrap() else {
            panic!()
        };
        RequestHead::from_parts(raw.slice(..parts.len), parts).unwrap()
    }

    fn outbound(stream: bool) -> Outbound<'static> {
        Outbound {
            path_prefix: "/pre",
            host: "up.example:8443",
            api_key: Some("sk-upstream"),
            default_version: "2023-06-01",
            body_len: 42,
            chunked: false,
            stream,
            line: None,
        }
    }

    #[test]
    fn request_rules() {
        let r = req("POST /v1/messages?beta=true HTTP/1.1\r\nHost: gw\r\nX-Api-Key: client-key\r\nAuthorization: Bearer client\r\n\
                     Connection: keep-alive, X-Secret-Hop\r\nX-Secret-Hop: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nProxy-Authorization: x\r\n\
                     Content-Length: 42\r\nanthropic-beta: tools-2024\r\nX-Custom: yes\r\nAccept-Encoding: gzip\r\n\r\n");
        let h = String::from_utf8(upstream_request(&r, &outbound(false))).unwrap();
        assert!(
            h.starts_with("POST /pre/v1/messages?beta=true HTTP/1.1\r\nhost: up.example:8443\r\n"),
            "{h}"
        );
        let lower = h.to_ascii_lowercase();
        for gone in [
            "client-key",
            "bearer client",
            "x-secret-hop",
            "keep-alive",
            "\r\nte:",
            "proxy-authorization",
            "host: gw",
        ] {
            assert!(!lower.contains(gone), "{gone} in {h}");
        }
        for kept in [
            "anthropic-beta: tools-2024\r\n",
            "X-Custom: yes\r\n",
            "x-api-key: sk-upstream\r\n",
            "anthropic-version: 2023-06-01\r\n",
            "content-length: 42\r\n",
            "Accept-Encoding: gzip\r\n",
        ] {
            assert!(h.contains(kept), "{kept} missing from {h}");
        }
        assert!(h.ends_with("\r\n\r\n"));
        assert_eq!(lower.matches("x-api-key").count(), 1);
    }

    #[test]
    fn translated_requests_carry_the_dialects_auth_and_no_anthropic_headers() {
        let r = req("POST /v1/messages?beta=true HTTP/1.1\r\nHost: gw\r\nX-Api-Key: client-key\r\n\
                     anthropic-version: 2023-06-01\r\nanthropic-beta: tools\r\nAccept-Encoding: gzip\r\n\
                     Content-Length: 42\r\nContent-Type: application/json\r\nx-mock-deltas: 3\r\n\
                     User-Agent: claude-cli/2\r\nConnection: keep-alive\r\n\
                     X-Amz-Security-Token: theirs\r\nx-goog-user-project: theirs\r\n\r\n");
        let h = String::from_utf8(translated_request(
            &r,
            &Translated {
                path_prefix: "/v1",
                path: "/chat/completions",
                host: "up:8000",
                extra: &[("authorization", "Bearer sk-up")],
                accept: "text/event-stream",
                body_len: 7,
            },
        ))
        .unwrap();
        assert!(
            h.starts_with("POST /v1/chat/completions HTTP/1.1\r\nhost: up:8000\r\n"),
            "{h}"
        );
        for kept in [
            "x-mock-deltas: 3\r\n",
            "User-Agent: claude-cli/2\r\n",
            "authorization: Bearer sk-up\r\n",
            "accept: text/event-stream\r\n",
            "content-type: application/json\r\n",
            "content-length: 7\r\n\r\n",
        ] {
            assert!(h.contains(kept), "{kept} missing from {h}");
        }
        let lower = h.to_ascii_lowercase();
        for gone in [
            "client-key",
            "anthropic-",
            "gzip",
            "keep-alive",
            "host: gw",
            "?beta",
            "theirs",
        ] {
            assert!(!lower.contains(gone), "{gone} in {h}");
        }
        assert_eq!(lower.matches("content-type").count(), 1);
    }

    #[test]
    fn client_version_is_kept_and_streams_are_not_compressed() {
        let r = req("POST /v1/messages HTTP/1.1\r\nanthropic-version: 2099-01-01\r\nAccept-Encoding: gzip\r\nContent-Length: 42\r\n\r\n");
        let h = String::from_utf8(upstream_request(&r, &outbound(true))).unwrap();
        assert!(h.contains("anthropic-version: 2099-01-01\r\n"));
        assert!(!h.contains("2023-06-01"));
        assert!(!h.to_ascii_lowercase().contains("accept-encoding"));
    }

    #[test]
    fn response_rules() {
        let raw = Bytes::from_static(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-Accel-Buffering: yes\r\nanthropic-ratelimit-requests-remaining: 9\r\n\r\n");
        let (len, layout) = crate::upstream::response::parse(&raw).unwrap().unwrap();
        let up = ResponseHead::new(raw.slice(..len), layout, false).unwrap();
        let h =
            String::from_utf8(client_response(&up, "req_ours", true, false, "").finish_chunked())
                .unwrap();
        assert!(h.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(h.contains("request-id: req_ours\r\n"));
        assert!(h.contains("cache-control: no-cache\r\n"));
        assert!(h.contains("x-accel-buffering: no\r\n"));
        assert!(h.contains("anthropic-ratelimit-requests-remaining: 9\r\n"));
        assert_eq!(
            h.to_ascii_lowercase().matches("transfer-encoding").count(),
            1
        );
        assert!(!h.contains("Keep-Alive") && !h.contains("X-Accel-Buffering: yes"));
    }

    #[test]
    fn upstream_request_id_is_kept() {
        let raw = Bytes::from_static(
            b"HTTP/1.1 200 OK\r\nrequest-id: req_upstream\r\nContent-Length: 2\r\n\r\n",
        );
        let (len, layout) = crate::upstream::response::parse(&raw).unwrap().unwrap();
        let up = ResponseHead::new(raw.slice(..len), layout, false).unwrap();
        let h = String::from_utf8(
            client_response(&up, "req_ours", false, true, "").finish_with_length(2),
        )
        .unwrap();
        assert!(h.contains("request-id: req_upstream\r\n") && !h.contains("req_ours"));
        assert!(h.contains("connection: close\r\n") && h.contains("content-length: 2\r\n"));
    }
}
