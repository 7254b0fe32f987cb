//! The one HTTP client of the credential refresher: blocking, on the refresher's own thread,
//! never on a worker.
//!
//! Token endpoints (STS, IMDS, Google's OAuth and metadata servers) are called a few times an
//! hour; `ureq` does that with rustls and no async runtime. Errors name the endpoint and what
//! went wrong, never a secret: request bodies (which carry assertions and tokens) are not quoted.

use std::sync::OnceLock;
use std::time::Duration;

/// How long one call to a token endpoint may take, all of it.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an answer read.
const MAX_ANSWER: u64 = 1 << 20;

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .user_agent("ringgate")
            .build();
        ureq::Agent::new_with_config(config)
    })
}

/// A call's answer: its status and body.
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    /// The body of a 2xx answer, or an error naming `what` and the status.
    pub fn ok(self, what: &str) -> Result<String, String> {
        match self.status {
            200..=299 => Ok(self.body),
            status => Err(format!("{what} answered {status}: {}", snippet(&self.body))),
        }
    }
}

/// Calls `url` with `method`, `headers` and an optional body.
pub fn call(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Answer, String> {
    let failed = |e: ureq::Error| format!("{method} {url}: {e}");
    let mut response = match (method, body) {
        ("GET", _) => {
            let mut req = agent().get(url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.call()
        }
        (_, body) => {
            let mut req = match method {
                "PUT" => agent().put(url),
                _ => agent().post(url),
            };
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.send(body.unwrap_or(b""))
        }
    }
    .map_err(failed)?;
    let status = response.status().as_u16();
    let body = (response.body_mut().with_config())
        .limit(MAX_ANSWER)
        .read_to_string()
        .map_err(failed)?;
    Ok(Answer { status, body })
}

/// The start of an error answer, for a log line (an error body names no secret of ours).
fn snippet(body: &str) -> String {
    let line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    }
}

/// `pairs` as an `application/x-www-form-urlencoded` body.
pub fn form(pairs: &[(&str, &str)]) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const VALUE: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&utf8_percent_encode(k, VALUE).to_string());
        out.push('=');
        out.push_str(&utf8_percent_encode(v, VALUE).to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn forms_are_encoded() {
        assert_eq!(
            super::form(&[("grant_type", "urn:a b"), ("x", "a+b/c=")]),
            "grant_type=urn%3Aa%20b&x=a%2Bb%2Fc%3D"
        );
    }
}
