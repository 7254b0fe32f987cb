//! AWS Signature Version 4: the headers that make AWS accept a request to Bedrock.
//!
//! Bedrock authenticates each request by an HMAC over a canonical form of it (TRANSLATION.md §3).
//! `aws-sigv4` would do it but drags in the smithy runtime and a newer MSRV, while the algorithm
//! is small over `ring`. It is pure: the caller passes the time and the request exactly as it
//! will go on the wire, and adds the headers it gets back ([`Signed::headers`]) to the head it
//! writes.
//!
//! AWS answers a wrong signature with a bare 403, so every step of the canonical form follows
//! botocore, the reference the tests hold it to (`sigv4_vectors.json`):
//! - the path is encoded *again*: a model id sent as `…v1%3A0` is signed as `…v1%253A0`;
//! - the query is read as a form (`+` is a space) and each name and value encoded strictly;
//! - header values are trimmed and their inner runs of white space made one space; a name given
//!   twice is signed once, its values joined with `,`.

use std::borrow::Cow;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use percent_encoding::{percent_decode, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use ring::{digest, hmac};

/// The service Bedrock's runtime endpoints are signed for.
pub const BEDROCK: &str = "bedrock";

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The header that, when the caller sends it, stands for the body's hash in the signature.
const CONTENT_SHA256: &str = "x-amz-content-sha256";

/// Headers the signer writes itself: a caller's own would contradict them.
const OWNED: [&str; 3] = ["host", "x-amz-date", "x-amz-security-token"];

/// Headers never signed: `authorization` carries the signature, and the rest are hop-by-hop or
/// may be added or changed on the way by a proxy, an HTTP library or a tracer (botocore's list),
/// which would break the signature.
const UNSIGNED: [&str; 15] = [
    "authorization",
    "baggage",
    "connection",
    "expect",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "traceparent",
    "tracestate",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "x-amzn-trace-id",
];

/// RFC 3986's unreserved characters stay; every other byte becomes `%XX`, hex in upper case.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An AWS access key, and the session token that comes with temporary ones.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    /// With temporary credentials (STS, SSO, instance roles); `None` or empty otherwise.
    pub session_token: Option<&'a str>,
}

impl Credentials<'_> {
    /// The token, when there is one: botocore takes an empty one for none.
    fn token(&self) -> Option<&str> {
        self.session_token.filter(|t| !t.is_empty())
    }
}

impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key id names the key in logs and AWS's own errors; the rest sign for it.
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &format_args!("<redacted>"))
            .field(
                "session_token",
                &self.session_token.map(|_| format_args!("<redacted>")),
            )
            .finish()
    }
}

/// Where the signature is valid: the region and the service (for Bedrock, [`BEDROCK`]).
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
}

/// A request as it will go on the wire.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// `POST`, `GET`, as sent.
    pub method: &'a str,
    /// The `Host` header, e.g. `bedrock-runtime.us-east-1.amazonaws.com`: always signed, once.
    pub host: &'a str,
    /// The path as sent, each segment already percent-encoded once:
    /// `/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke`.
    pub path: &'a str,
    /// The query as sent, without the `?`; empty when there is none.
    pub query: &'a str,
    /// The other headers to sign, as sent (`content-type`, `accept`, …). `host`, `x-amz-date`
    /// and `x-amz-security-token` are the signer's and `connection` and the like are never
    /// signed (`UNSIGNED`): such entries are left out. An `x-amz-content-sha256` header is
    /// signed and its value taken for the body's hash, as botocore does: make it [`payload_hash`].
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("host", &self.host)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The headers that sign a request.
#[derive(Clone, PartialEq, Eq)]
pub struct Signed {
    /// `x-amz-date`: the time of signing, `YYYYMMDDTHHMMSSZ`.
    pub amz_date: String,
    /// `x-amz-security-token`, with temporary credentials.
    pub security_token: Option<String>,
    /// `authorization`: `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
    pub authorization: String,
}

impl Signed {
    /// The headers to add to the request's head, names in lower case.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        [
            ("x-amz-date", Some(self.amz_date.as_str())),
            ("x-amz-security-token", self.security_token.as_deref()),
            ("authorization", Some(self.authorization.as_str())),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
    }
}

impl fmt::Debug for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A signature replays the request for minutes; the scope and signed names are what a
        // 403 is debugged with.
        let scope = self
            .authorization
            .split_once("Signature=")
            .map_or("", |(scope, _)| scope);
        f.debug_struct("Signed")
            .field("amz_date", &self.amz_date)
            .field(
                "security_token",
                &self
                    .security_token
                    .as_ref()
                    .map(|_| format_args!("<redacted>")),
            )
            .field(
                "authorization",
                &format_args!("{scope}Signature=<redacted>"),
            )
            .finish()
    }
}

/// Signs `req` for `scope` with `creds`, at time `at`.
pub fn sign(
    req: &Request<'_>,
    creds: &Credentials<'_>,
    scope: &Scope<'_>,
    at: SystemTime,
) -> Signed {
    // A clock before 1970 is broken; signing for 1970 gets AWS's "signature expired", which says
    // what is wrong better than a panic would.
    let unix = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let amz_date = amz_date(unix);
    let date = &amz_date[..8];
    let token = creds.token();
    let (canonical, signed_headers) = canonical_request(req, &amz_date, token);
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let to_sign = string_to_sign(&amz_date, &credential_scope, &canonical);
    let key = signing_key(creds.secret_access_key, date, scope.region, scope.service);
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    let signature = hex(hmac::sign(&key, to_sign.as_bytes()).as_ref());
    let authorization = format!(
        "{ALGORITHM} Credential={}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}",
        creds.access_key_id
    );
    Signed {
        amz_date,
        security_token: token.map(str::to_string),
        authorization,
    }
}

/// The hex SHA-256 of a body: the value of an `x-amz-content-sha256` header.
pub fn payload_hash(body: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, body).as_ref())
}

/// The canonical request, and the names of the signed headers (`host;x-amz-date;…`).
fn canonical_request(req: &Request<'_>, amz_date: &str, token: Option<&str>) -> (String, String) {
    let (headers, signed) = canonical_headers(req, amz_date, token);
    let payload = match req
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(CONTENT_SHA256))
    {
        Some((_, value)) => (*value).to_string(),
        None => payload_hash(req.body),
    };
    let canonical = format!(
        "{}\n{}\n{}\n{headers}\n{signed}\n{payload}",
        req.method,
        canonical_uri(req.path),
        canonical_query(req.query),
    );
    (canonical, signed)
}

/// The path with its dot segments and empty segments removed, and each segment encoded again.
/// AWS decodes nothing before comparing: it encodes the path it received, so a `%` on the wire
/// is `%25` here.
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    let mut out = String::with_capacity(path.len() + 8);
    for segment in &segments {
        out.push('/');
        out.extend(percent_encode(segment.as_bytes(), STRICT));
    }
    if out.is_empty() || path.ends_with('/') {
        out.push('/');
    }
    out
}

/// The query's pairs, each name and value decoded and encoded strictly, sorted by name then
/// value. A name without `=` has the empty value.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (reencoded(name), reencoded(value))
        })
        .collect();
    pairs.sort_unstable();
    let mut out = String::with_capacity(query.len() + 16);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// A query name or value as sent, in the strict encoding. It is read as a form reads it, `+`
/// for a space, as botocore sends spaces, and a query may encode anything any way: decoding it
/// first gives the one form AWS computes.
fn reencoded(sent: &str) -> String {
    let spaced: Cow<'_, str> = match sent.contains('+') {
        true => Cow::Owned(sent.replace('+', " ")),
        false => Cow::Borrowed(sent),
    };
    let raw: Vec<u8> = percent_decode(spaced.as_bytes()).collect();
    percent_encode(&raw, STRICT).to_string()
}

/// The canonical header lines (each ending in `\n`), and the signed names joined by `;`.
fn canonical_headers(req: &Request<'_>, amz_date: &str, token: Option<&str>) -> (String, String) {
    let mut headers: Vec<(Cow<'_, str>, String)> = Vec::with_capacity(req.headers.len() + 3);
    headers.push((Cow::Borrowed("host"), trimmed(req.host)));
    headers.push((Cow::Borrowed("x-amz-date"), amz_date.to_string()));
    if let Some(token) = token {
        headers.push((Cow::Borrowed("x-amz-security-token"), trimmed(token)));
    }
    for (name, value) in req.headers {
        let name = name.to_ascii_lowercase();
        if OWNED.contains(&name.as_str()) || UNSIGNED.contains(&name.as_str()) {
            continue;
        }
        headers.push((Cow::Owned(name), trimmed(value)));
    }
    // Stable, so the values of a name given twice keep their order.
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let mut lines = String::with_capacity(256);
    let mut signed = String::with_capacity(96);
    let mut previous: Option<&str> = None;
    for (name, value) in &headers {
        if previous == Some(name.as_ref()) {
            lines.pop();
            lines.push(',');
        } else {
            if previous.is_some() {
                signed.push(';');
            }
            signed.push_str(name);
            lines.push_str(name);
            lines.push(':');
        }
        lines.push_str(value);
        lines.push('\n');
        previous = Some(name.as_ref());
    }
    (lines, signed)
}

/// A header value without white space at its ends and with each inner run of it one space.
fn trimmed(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value.split(is_space).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// White space as botocore's `str.split()` sees it among ASCII characters, tabs included.
fn is_space(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r' | '\x1c'..='\x1f'
    )
}

/// What the key signs: the algorithm, the time, the scope and the canonical request's hash.
fn string_to_sign(amz_date: &str, credential_scope: &str, canonical: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{credential_scope}\n{}",
        payload_hash(canonical.as_bytes())
    )
}

/// The key for one day, region and service: the secret never signs a request itself, so a
/// leaked derived key is worth one scope.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut key = hmac::Key::new(hmac::HMAC_SHA256, format!("AWS4{secret}").as_bytes());
    let mut out = [0; 32];
    for part in [date, region, service, "aws4_request"] {
        out.copy_from_slice(hmac::sign(&key, part.as_bytes()).as_ref());
        key = hmac::Key::new(hmac::HMAC_SHA256, &out);
    }
    out
}

/// `YYYYMMDDTHHMMSSZ` for a time in seconds since 1970, in UTC.
fn amz_date(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The Gregorian date `days` after 1970-01-01: Howard Hinnant's `civil_from_days`, counting in
/// 400-year eras from 0000-03-01 so that February, and its leap day, ends each year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + yoe + u64::from(month <= 2);
    (year, month, day)
}

/// Lower-case hex, as the signature and hashes are written.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

#[cfg(test)]
#[path = "sigv4_tests.rs"]
mod tests;
