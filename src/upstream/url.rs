//! An upstream's `base_url`, parsed once at config time.
//!
//! Only what a gateway needs: scheme, host, port, and a path prefix that is put in front of every
//! forwarded path (so `http://proxy.internal/anthropic` works). Anything else in a URL (user info,
//! query, fragment) is rejected rather than silently dropped.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl {
    pub scheme: Scheme,
    /// Host name or IP literal, without brackets.
    pub host: String,
    pub port: u16,
    /// The path prefix without a trailing slash: "" or "/something".
    pub path_prefix: String,
    /// The value of the `Host` header for this upstream.
    pub host_header: String,
}

impl BaseUrl {
    pub fn parse(url: &str) -> Result<BaseUrl, String> {
        let (scheme, rest) = if let Some(r) = url.strip_prefix("http://") {
            (Scheme::Http, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (Scheme::Https, r)
        } else {
            return Err(format!("{url:?}: must start with http:// or https://"));
        };
        if rest.contains(['?', '#', '@']) || rest.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(format!(
                "{url:?}: only scheme, host, port and path are allowed (no user info, query, fragment or spaces)"
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let default_port = match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        let (host, port) = parse_authority(url, authority, default_port)?;
        let host_header = match (port == default_port, host.contains(':')) {
            (true, false) => host.clone(),
            (true, true) => format!("[{host}]"),
            (false, false) => format!("{host}:{port}"),
            (false, true) => format!("[{host}]:{port}"),
        };
        Ok(BaseUrl {
            scheme,
            host,
            port,
            path_prefix: path.trim_end_matches('/').to_string(),
            host_header,
        })
    }
}

/// Splits `host[:port]` or `[v6][:port]` into a host (without brackets) and a port. Shared
/// with `ProxyUrl::parse`, so both accept the same hosts and say the same things about bad ones.
pub(crate) fn parse_authority(
    url: &str,
    authority: &str,
    default_port: u16,
) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6
            .find(']')
            .ok_or_else(|| format!("{url:?}: unclosed [ in IPv6 address"))?;
        let host = &v6[..end];
        host.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("{url:?}: {host:?} is not an IPv6 address"))?;
        let port = match &v6[end + 1..] {
            "" => default_port,
            p => parse_port(url, p.strip_prefix(':').unwrap_or("x"))?,
        };
        (host.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), parse_port(url, p)?),
            None => (authority.to_string(), default_port),
        }
    };
    if host.is_empty() {
        return Err(format!("{url:?}: missing host"));
    }
    Ok((host, port))
}

fn parse_port(url: &str, p: &str) -> Result<u16, String> {
    p.parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| format!("{url:?}: {p:?} is not a valid port"))
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{s}://{}{}", self.host_header, self.path_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let u = BaseUrl::parse("https://api.anthropic.com").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port),
            (Scheme::Https, "api.anthropic.com", 443)
        );
        assert_eq!(u.host_header, "api.anthropic.com");
        let u = BaseUrl::parse("http://127.0.0.1:9000/prefix/").unwrap();
        assert_eq!((u.port, u.path_prefix.as_str()), (9000, "/prefix"));
        assert_eq!(u.host_header, "127.0.0.1:9000");
        let u = BaseUrl::parse("http://[::1]:8081").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 8081));
        assert_eq!(u.host_header, "[::1]:8081");
        assert_eq!(u.to_string(), "http://[::1]:8081");
    }

    #[test]
    fn rejects_what_it_cannot_honour() {
        for bad in [
            "api.anthropic.com",
            "ftp://x",
            "http://",
            "http://h:0",
            "http://h:99999",
            "http://u:p@h",
            "http://h/?q=1",
            "http://[::1",
            "http://[nothex]:1",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
