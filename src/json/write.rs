//! Writing JSON by hand: the few documents the gateway makes itself (errors, mock answers,
//! translated events).
//!
//! Writing them by hand keeps the error path free of a serializer; escaping is the one part that
//! must be exactly right, so it lives here, once.

/// Appends `s` to `out` as a JSON string literal, quotes included.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    escaped(s, |piece| out.push_str(piece));
    out.push('"');
}

/// [`push_str`] for a byte buffer.
pub fn push_str_bytes(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escaped(s, |piece| out.extend_from_slice(piece.as_bytes()));
    out.push(b'"');
}

/// `s` as a JSON string literal.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_str(&mut out, s);
    out
}

/// Hands `put` the inside of `s` as a JSON string literal, in pieces: runs of characters that
/// need no escape as they are, and each escape.
fn escaped<'a>(s: &'a str, mut put: impl FnMut(&'a str)) {
    let mut start = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => CONTROL[usize::from(b)],
            _ => continue,
        };
        put(&s[start..i]);
        put(escape);
        start = i + 1;
    }
    put(&s[start..]);
}

/// The `\u` escapes of the control characters.
const CONTROL: [&str; 32] = [
    "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
    "\\u0008", "\\u0009", "\\u000a", "\\u000b", "\\u000c", "\\u000d", "\\u000e", "\\u000f",
    "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
    "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
];

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_what_json_requires() {
        assert_eq!(
            super::string("a\"b\\c\nd\u{1}é"),
            "\"a\\\"b\\\\c\\nd\\u0001é\""
        );
    }
}
