//! Finding the top-level `model` and `stream` of a Messages request without parsing it.
//!
//! Bodies can be megabytes of conversation; the gateway needs two keys. The skim walks the
//! top-level object once, stepping over nested values by tracking strings and brackets, so text
//! inside messages that happens to read `"model": "x"` is never mistaken for the real key. Keys
//! written with escapes (`"mod\u0065l"`) are decoded before comparing, as any JSON parser
//! upstream would; a key given twice is refused, so the gateway and the upstream can never
//! disagree about which model a request is for.

use std::borrow::Cow;
use std::ops::Range;

/// What the skim found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Skim {
    /// The raw bytes of the `model` string, between its quotes (still escaped).
    pub model: Option<Range<usize>>,
    /// `Some` when `stream` is a JSON boolean.
    pub stream: Option<bool>,
    /// The raw bytes of `metadata.user_id` when it is a string (still escaped): the conversation's
    /// identity for session affinity. Repeated keys are not refused here (they only steer which
    /// credential is preferred); the last `metadata` and its last `user_id` count, as in most
    /// JSON parsers.
    pub user_id: Option<Range<usize>>,
}

impl Skim {
    /// The model id, with JSON escapes decoded.
    pub fn model<'a>(&self, body: &'a [u8]) -> Option<Cow<'a, str>> {
        let raw = &body[self.model.clone()?];
        unescape(raw)
    }

    pub fn is_stream(&self) -> bool {
        self.stream == Some(true)
    }

    /// `metadata.user_id` as sent (escapes not decoded: it is only hashed).
    pub fn user_id<'a>(&self, body: &'a [u8]) -> Option<&'a [u8]> {
        Some(&body[self.user_id.clone()?])
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkimError(pub &'static str);

/// Skims a JSON request body.
pub fn skim(body: &[u8]) -> Result<Skim, SkimError> {
    let mut p = Cursor { b: body, i: 0 };
    let mut out = Skim::default();
    let mut seen_model = false;
    let mut seen_stream = false;
    p.ws();
    if p.peek() != Some(b'{') {
        return Err(SkimError("the request body must be a JSON object"));
    }
    p.members(|key, p| {
        match key {
            "model" => {
                if std::mem::replace(&mut seen_model, true) {
                    return Err(SkimError("the key \"model\" appears twice"));
                }
                if p.peek() == Some(b'"') {
                    let r = p.string()?;
                    unescape(&body[r.clone()]).ok_or(SkimError("invalid escape in model"))?;
                    out.model = Some(r);
                } else {
                    p.value()?;
                }
            }
            "stream" => {
                if std::mem::replace(&mut seen_stream, true) {
                    return Err(SkimError("the key \"stream\" appears twice"));
                }
                let start = p.i;
                p.value()?;
                out.stream = match &body[start..p.i] {
                    b"true" => Some(true),
                    b"false" => Some(false),
                    _ => None,
                };
            }
            "metadata" if p.peek() == Some(b'{') => out.user_id = p.user_id()?,
            "metadata" => {
                out.user_id = None;
                p.value()?;
            }
            _ => p.value()?,
        }
        Ok(())
    })?;
    p.end(out)
}

/// The members of the JSON object `object`, each key (escapes decoded) with the raw bytes of
/// its value (`12`, `null`, `"text"`, `{…}`), in order. For the `usage` of an answer, where a
/// general parser costs more than the rest of the request's handling.
pub fn members<'a>(
    object: &'a [u8],
    mut each: impl FnMut(&str, &'a [u8]),
) -> Result<(), SkimError> {
    let mut p = Cursor { b: object, i: 0 };
    p.ws();
    if p.peek() != Some(b'{') {
        return Err(SkimError("expected an object"));
    }
    p.members(|key, p| {
        let start = p.i;
        p.value()?;
        each(key, &object[start..p.i]);
        Ok(())
    })
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek();
        self.i += c.is_some() as usize;
        c
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn end(mut self, out: Skim) -> Result<Skim, SkimError> {
        self.ws();
        match self.peek() {
            None => Ok(out),
            Some(_) => Err(SkimError("unexpected data after the JSON object")),
        }
    }

    /// The members of the object at the cursor, up to its closing brace: `each` gets every key
    /// (escapes decoded) with the cursor at its value, and must step over the value.
    fn members(
        &mut self,
        mut each: impl FnMut(&str, &mut Self) -> Result<(), SkimError>,
    ) -> Result<(), SkimError> {
        self.next();
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        let b = self.b;
        loop {
            self.ws();
            let key = self.string()?;
            let key = unescape(&b[key]).ok_or(SkimError("invalid escape in a key"))?;
            self.ws();
            if self.next() != Some(b':') {
                return Err(SkimError("expected ':' after a key"));
            }
            self.ws();
            each(&key, self)?;
            self.ws();
            match self.next() {
                Some(b',') => continue,
                Some(b'}') => return Ok(()),
                _ => return Err(SkimError("expected ',' or '}' after a value")),
            }
        }
    }

    /// The `metadata` object at the cursor, stepped over; its last `user_id`, if that is a string.
    fn user_id(&mut self) -> Result<Option<Range<usize>>, SkimError> {
        let mut found = None;
        self.members(|key, p| {
            if key != "user_id" {
                return p.value();
            }
            found = None;
            if p.peek() == Some(b'"') {
                found = Some(p.string()?);
            } else {
                p.value()?;
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// A string at the cursor; returns the range of its contents.
    fn string(&mut self) -> Result<Range<usize>, SkimError> {
        if self.next() != Some(b'"') {
            return Err(SkimError("expected a string"));
        }
        let start = self.i;
        loop {
            let rest = &self.b[self.i..];
            let j = rest
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .ok_or(SkimError("unterminated string"))?;
            self.i += j;
            match self.b[self.i] {
                b'"' => {
                    self.i += 1;
                    return Ok(start..self.i - 1);
                }
                b'\\' => {
                    if self.i + 1 >= self.b.len() {
                        return Err(SkimError("unterminated string"));
                    }
                    self.i += 2;
                }
                _ => return Err(SkimError("control character in a string")),
            }
        }
    }

    /// Steps over any value: scalars up to their delimiter, containers to their matching end.
    fn value(&mut self) -> Result<(), SkimError> {
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                loop {
                    match self.peek() {
                        Some(b'"') => {
                            self.string()?;
                            continue;
                        }
                        Some(b'{' | b'[') => depth += 1,
                        Some(b'}' | b']') => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Ok(());
                            }
                        }
                        Some(_) => {}
                        None => return Err(SkimError("unterminated object or array")),
                    }
                    self.i += 1;
                }
            }
            Some(c) if c == b'-' || c.is_ascii_alphanumeric() => {
                let start = self.i;
                while matches!(self.peek(), Some(c) if c == b'-' || c == b'+' || c == b'.' || c.is_ascii_alphanumeric())
                {
                    self.i += 1;
                }
                let tok = &self.b[start..self.i];
                let ok = matches!(tok, b"true" | b"false" | b"null")
                    || tok[0] == b'-'
                    || tok[0].is_ascii_digit();
                ok.then_some(()).ok_or(SkimError("invalid literal"))
            }
            _ => Err(SkimError("expected a value")),
        }
    }
}

/// Decodes JSON string escapes; borrows when there are none.
pub fn unescape(raw: &[u8]) -> Option<Cow<'_, str>> {
    if !raw.contains(&b'\\') {
        return std::str::from_utf8(raw).ok().map(Cow::Borrowed);
    }
    let mut out = String::with_capacity(raw.len());
    let s = std::str::from_utf8(raw).ok()?;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            '/' => out.push('/'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let hi = hex4(&mut chars)?;
                let code = if (0xD800..0xDC00).contains(&hi) {
                    if chars.next()? != '\\' || chars.next()? != 'u' {
                        return None;
                    }
                    let lo = hex4(&mut chars)?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return None;
                    }
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else {
                    hi
                };
                out.push(char::from_u32(code)?);
            }
            _ => return None,
        }
    }
    Some(Cow::Owned(out))
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    let mut v = 0;
    for _ in 0..4 {
        v = v << 4 | chars.next()?.to_digit(16)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_of(body: &str) -> Option<String> {
        let s = skim(body.as_bytes()).unwrap();
        s.model(body.as_bytes()).map(|m| m.into_owned())
    }

    #[test]
    fn finds_top_level_keys() {
        let body = r#"{"model":"claude-sonnet-4-5","max_tokens":10,"stream":true,"messages":[]}"#;
        let s = skim(body.as_bytes()).unwrap();
        assert_eq!(
            s.model(body.as_bytes()).as_deref(),
            Some("claude-sonnet-4-5")
        );
        assert!(s.is_stream());
    }

    #[test]
    fn nested_lookalikes_do_not_fool_it() {
        let body = r#"{"messages":[{"role":"user","content":"{\"model\":\"fake\",\"stream\":true}"},{"model":"nested","stream":true}],"metadata":{"model":"x"},"model":"real","max_tokens":5}"#;
        let s = skim(body.as_bytes()).unwrap();
        assert_eq!(s.model(body.as_bytes()).as_deref(), Some("real"));
        assert_eq!(s.stream, None);
    }

    #[test]
    fn escaped_keys_and_values_are_decoded() {
        assert_eq!(model_of(r#"{"mod\u0065l":"a\/b"}"#).as_deref(), Some("a/b"));
    }

    #[test]
    fn duplicate_keys_are_refused() {
        assert!(skim(br#"{"model":"a","model":"b"}"#).is_err());
        assert!(skim(br#"{"stream":false,"stream":true}"#).is_err());
    }

    #[test]
    fn finds_metadata_user_id_only_at_its_place() {
        let body = br#"{"messages":[{"metadata":{"user_id":"fake"}}],"metadata":{"x":[1,{"user_id":"n"}],"user_id":"u-1"},"model":"m"}"#;
        let s = skim(body).unwrap();
        assert_eq!(s.user_id(body), Some(&b"u-1"[..]));
        assert_eq!(s.model(body).as_deref(), Some("m"));
        for none in [
            r#"{"metadata":{}}"#,
            r#"{"metadata":{"user_id":7}}"#,
            r#"{"metadata":"u"}"#,
            r#"{"user_id":"u"}"#,
        ] {
            assert_eq!(skim(none.as_bytes()).unwrap().user_id, None, "{none}");
        }
        assert!(skim(br#"{"metadata":{"user_id" "u"}}"#).is_err());
        assert!(skim(br#"{"metadata":{"user_id":"u",}}"#).is_err());
    }

    #[test]
    fn stream_must_be_boolean() {
        assert_eq!(skim(br#"{"stream":"true"}"#).unwrap().stream, None);
        assert_eq!(skim(br#"{"stream": false }"#).unwrap().stream, Some(false));
    }

    #[test]
    fn rejects_non_objects_and_broken_json() {
        for bad in [
            "",
            "[]",
            "\"x\"",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{\"a\":1} x",
            "{\"a\":\"unterminated}",
            "{\"a\":[1,2}",
            "{\"a\":@}",
            "{\"a\":\"\n\"}",
        ] {
            assert!(skim(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert_eq!(skim(b" { } ").unwrap(), Skim::default());
    }

    #[test]
    fn unescape_handles_surrogates() {
        assert_eq!(unescape(br"\ud83d\ude00").as_deref(), Some("😀"));
        assert_eq!(unescape(br"\ud83d"), None);
        assert_eq!(unescape(br"\x"), None);
    }
}
