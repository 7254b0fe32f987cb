//! A small `multipart/form-data` reader, for the Files API's upload (`POST /v1/files`).
//!
//! The mock needs one part of an upload (the one named `file`: its file name, content type and
//! bytes), so this reads no more than that: the boundary from the request's `Content-Type`
//! (quoted or not), the parts between the delimiters (a preamble before the first and an
//! epilogue after the last are skipped), each part's headers (bounded in size and count). The
//! part's bytes are given as a range of the body, so a large upload is not copied.

use std::ops::Range;

use memchr::memmem;

use crate::http::ApiError;

/// The most parts a body may have.
const MAX_PARTS: usize = 100;
/// The longest a part's header section may be.
const MAX_PART_HEAD: usize = 16 * 1024;
/// RFC 2046: a boundary is 1 to 70 characters.
const MAX_BOUNDARY: usize = 70;

/// One part of a multipart body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The `name` of its `Content-Disposition`.
    pub name: String,
    /// Its `filename`, if it has one.
    pub filename: Option<String>,
    /// Its `Content-Type`, if it has one.
    pub content_type: Option<String>,
    /// Where its bytes are in the body.
    pub data: Range<usize>,
}

fn invalid(message: String) -> ApiError {
    ApiError::invalid_request(message.into())
}

/// The boundary a `multipart/form-data` content type declares.
pub fn boundary(content_type: &[u8]) -> Result<String, ApiError> {
    let text = std::str::from_utf8(content_type)
        .map_err(|_| invalid("content-type: not valid UTF-8".into()))?;
    let (kind, params) = text.split_once(';').unwrap_or((text, ""));
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return Err(invalid(format!(
            "content-type: expected multipart/form-data, got {}",
            kind.trim().chars().take(100).collect::<String>()
        )));
    }
    let boundary = parameters(params)
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("boundary"))
        .map(|(_, value)| value)
        .ok_or_else(|| invalid("content-type: multipart/form-data without a boundary".into()))?;
    if boundary.is_empty() || boundary.len() > MAX_BOUNDARY {
        return Err(invalid(format!(
            "content-type: a boundary must be 1 to {MAX_BOUNDARY} characters"
        )));
    }
    Ok(boundary)
}

/// The `name=value` parameters after a header's first value (`; a=b; c="d;e"`); quoted values
/// are unquoted, backslash escapes in them undone.
pub fn parameters(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ';' || c.is_whitespace()).is_some() {}
        let mut name = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && *c != ';') {
            name.push(c);
        }
        if name.is_empty() && chars.peek().is_none() {
            return out;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'=').is_some() {
            while chars.next_if(|c| *c == ' ').is_some() {}
            if chars.next_if_eq(&'"').is_some() {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => value.extend(chars.next()),
                        c => value.push(c),
                    }
                }
                // Anything between the closing quote and the next ';' is dropped.
                while chars.next_if(|c| *c != ';').is_some() {}
            } else {
                while let Some(c) = chars.next_if(|c| *c != ';') {
                    value.push(c);
                }
                value.truncate(value.trim_end().len());
            }
        }
        out.push((name.trim().to_string(), value));
    }
}

/// The parts of `body`, delimited by `boundary`.
pub fn parts(body: &[u8], boundary: &str) -> Result<Vec<Part>, ApiError> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    // The first delimiter: at the very start, or at the start of a line after a preamble.
    let mut at = if body.starts_with(delimiter) {
        0
    } else {
        let line_delimiter = [b"\r\n", delimiter].concat();
        memmem::find(body, &line_delimiter)
            .ok_or_else(|| invalid("multipart body: no part (its boundary is not in it)".into()))?
            + 2
    };
    let closing = [b"\r\n", delimiter].concat();
    let finder = memmem::Finder::new(&closing);
    let mut parts = Vec::new();
    loop {
        at += delimiter.len();
        let rest = &body[at..];
        if rest.starts_with(b"--") {
            // The closing delimiter; whatever follows is an epilogue.
            return Ok(parts);
        }
        // Transport padding (spaces, tabs) may follow a delimiter before its line ends.
        let pad = rest
            .iter()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .count();
        if !rest[pad..].starts_with(b"\r\n") {
            return Err(invalid(
                "multipart body: a boundary line does not end".into(),
            ));
        }
        at += pad + 2;
        if parts.len() == MAX_PARTS {
            return Err(invalid(format!(
                "multipart body: more than {MAX_PARTS} parts"
            )));
        }
        let window = &body[at..body.len().min(at + MAX_PART_HEAD + 4)];
        let head_len = if window.starts_with(b"\r\n") {
            0
        } else {
            memmem::find(window, b"\r\n\r\n")
                .ok_or_else(|| invalid("multipart body: a part's headers do not end".into()))?
                + 2
        };
        let head = &body[at..at + head_len];
        let data_start = at + head_len + 2;
        let end = finder
            .find(&body[data_start..])
            .ok_or_else(|| invalid("multipart body: it ends before its closing boundary".into()))?
            + data_start;
        parts.push(part(head, data_start..end)?);
        at = end + 2;
    }
}

/// A part from its header section (lines ending in CRLF) and where its bytes are.
fn part(head: &[u8], data: Range<usize>) -> Result<Part, ApiError> {
    let head = std::str::from_utf8(head)
        .map_err(|_| invalid("multipart body: a part's headers are not UTF-8".into()))?;
    let mut part = Part {
        name: String::new(),
        filename: None,
        content_type: None,
        data,
    };
    let mut disposed = false;
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid("multipart body: a part's header has no ':'".into()))?;
        if name.trim().eq_ignore_ascii_case("content-disposition") {
            let (kind, params) = value.split_once(';').unwrap_or((value, ""));
            if !kind.trim().eq_ignore_ascii_case("form-data") {
                return Err(invalid(
                    "multipart body: a part's content-disposition is not form-data".into(),
                ));
            }
            disposed = true;
            let mut extended = None;
            for (k, v) in parameters(params) {
                match k.to_ascii_lowercase().as_str() {
                    "name" => part.name = v,
                    "filename" => part.filename = Some(v),
                    "filename*" => extended = extended_value(&v),
                    _ => {}
                }
            }
            // RFC 6266: `filename*` wins over `filename`.
            if extended.is_some() {
                part.filename = extended;
            }
        } else if name.trim().eq_ignore_ascii_case("content-type") {
            part.content_type = Some(value.trim().to_string());
        }
    }
    if !disposed {
        return Err(invalid(
            "multipart body: a part has no content-disposition".into(),
        ));
    }
    Ok(part)
}

/// An RFC 5987 value (`utf-8''na%C3%AFve.txt`), decoded; `None` if it is not one in UTF-8.
fn extended_value(v: &str) -> Option<String> {
    let (charset, rest) = v.split_once('\'')?;
    let (_language, encoded) = rest.split_once('\'')?;
    if !charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .ok()?;
    Some(decoded.into_owned())
}

/// The part named `name` of the multipart body a request with `content_type` carries; a 400 if
/// the body is not one or has no such part.
pub fn find(content_type: Option<&[u8]>, body: &[u8], name: &str) -> Result<Part, ApiError> {
    let content_type =
        content_type.ok_or_else(|| invalid("content-type: expected multipart/form-data".into()))?;
    let boundary = boundary(content_type)?;
    parts(body, &boundary)?
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| {
            invalid(format!(
                "{name}: Field required (a multipart part named {name:?})"
            ))
        })
}

#[cfg(test)]
#[path = "multipart_tests.rs"]
mod tests;
