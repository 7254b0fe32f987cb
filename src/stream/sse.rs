//! Where Server-Sent Events end.
//!
//! A client can only use whole events, so the relay cuts what it forwards at event boundaries: a
//! blank line, i.e. `\n\n` or `\r\n\r\n` (the Anthropic API uses the former).

/// The end (exclusive) of the last complete event in `data`, if any.
pub fn last_event_end(data: &[u8]) -> Option<usize> {
    let mut end = data.len();
    while let Some(i) = memchr::memrchr(b'\n', &data[..end]) {
        if i >= 1 && data[i - 1] == b'\n' {
            return Some(i + 1);
        }
        if i >= 3 && &data[i - 3..i] == b"\r\n\r" {
            return Some(i + 1);
        }
        end = i;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::last_event_end;

    #[test]
    fn finds_the_last_boundary() {
        assert_eq!(
            last_event_end(b"event: a\ndata: 1\n\nevent: b\nda"),
            Some(18)
        );
        assert_eq!(last_event_end(b"data: 1\n\ndata: 2\n\n"), Some(18));
        assert_eq!(last_event_end(b"data: 1\r\n\r\nxx"), Some(11));
        assert_eq!(last_event_end(b"data: 1\ndata: 2\n"), None);
        assert_eq!(last_event_end(b""), None);
        assert_eq!(last_event_end(b"\n"), None);
        assert_eq!(last_event_end(b"\n\n"), Some(2));
    }
}
