//! How the store's index keys are laid out, as pure functions over bytes.
//!
//! redb orders byte-string keys lexicographically, and a page query is a range scan over one
//! index. So an index key is built such that plain ascending byte order is the order a listing
//! wants, newest first by `(created_ms, id)` descending:
//!
//! - `by_kind`:  `[kind] [!created_ms, 8 bytes BE] [!id bytes…] [0xFF]`
//! - `by_owner`: `[kind] [owner length, 4 bytes BE] [owner bytes…] [!created_ms …] [!id …] [0xFF]`
//!
//! The time is stored complemented (`u64::MAX - t`), so a later time sorts first. The id is
//! stored with each byte complemented and a `0xFF` after it, so that ids too sort descending,
//! including the case where one id is a prefix of another (`"ab"` after `"abc"`): a valid id has
//! no NUL byte, so no complemented id byte is `0xFF` and the terminator always sorts last. The
//! owner's length prefix keeps one owner's keys contiguous even when an owner's name is a
//! prefix of another's; the order between owners does not matter to any query.

use super::store::Kind;

/// The longest id the store accepts, in bytes.
pub const MAX_ID_LEN: usize = 256;

/// Why an id is refused, or `None` for a valid one: non-empty, at most [`MAX_ID_LEN`] bytes and
/// free of NUL (the key encoding relies on that).
pub fn invalid_id(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("the id is empty")
    } else if id.len() > MAX_ID_LEN {
        Some("the id is longer than 256 bytes")
    } else if id.as_bytes().contains(&0) {
        Some("the id contains a NUL byte")
    } else {
        None
    }
}

/// The byte that stands for a kind at the head of every index key.
pub fn kind_byte(kind: Kind) -> u8 {
    match kind {
        Kind::Batch => b'b',
        Kind::File => b'f',
    }
}

/// The kind a key's first byte stands for.
pub fn kind_of_byte(byte: u8) -> Option<Kind> {
    match byte {
        b'b' => Some(Kind::Batch),
        b'f' => Some(Kind::File),
        _ => None,
    }
}

/// Appends the ordered tail shared by both indexes: complemented time, complemented id, `0xFF`.
fn push_time_id(key: &mut Vec<u8>, created_ms: u64, id: &str) {
    key.extend_from_slice(&(u64::MAX - created_ms).to_be_bytes());
    key.extend(id.bytes().map(|b| !b));
    key.push(0xFF);
}

/// Reads back `(created_ms, id)` from a tail written by [`push_time_id`].
fn decode_time_id(tail: &[u8]) -> Option<(u64, String)> {
    let (time, rest) = tail.split_first_chunk::<8>()?;
    let (&last, id) = rest.split_last()?;
    if last != 0xFF {
        return None;
    }
    let id: Vec<u8> = id.iter().map(|b| !b).collect();
    let id = String::from_utf8(id).ok()?;
    Some((u64::MAX - u64::from_be_bytes(*time), id))
}

/// The prefix every `by_kind` key of one kind starts with.
pub fn kind_prefix(kind: Kind) -> Vec<u8> {
    vec![kind_byte(kind)]
}

/// The `by_kind` key of one record.
pub fn kind_key(kind: Kind, created_ms: u64, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + 8 + id.len() + 1);
    key.push(kind_byte(kind));
    push_time_id(&mut key, created_ms, id);
    key
}

/// The prefix every `by_owner` key of one kind and owner starts with.
pub fn owner_prefix(kind: Kind, owner: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + 4 + owner.len() + 8 + MAX_ID_LEN / 4);
    key.push(kind_byte(kind));
    // An owner is a client key's name from the config: never near 4 GiB.
    let len = u32::try_from(owner.len()).unwrap_or(u32::MAX);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(owner.as_bytes());
    key
}

/// The `by_owner` key of one record.
pub fn owner_key(kind: Kind, owner: &str, created_ms: u64, id: &str) -> Vec<u8> {
    let mut key = owner_prefix(kind, owner);
    push_time_id(&mut key, created_ms, id);
    key
}

/// The id a key of either index names, given the length of that index's prefix for the key.
pub fn id_after_prefix(key: &[u8], prefix_len: usize) -> Option<String> {
    decode_time_id(key.get(prefix_len..)?).map(|(_, id)| id)
}

/// Everything a `by_owner` key holds: kind, owner, created_ms, id.
pub fn decode_owner_key(key: &[u8]) -> Option<(Kind, String, u64, String)> {
    let (&kind, rest) = key.split_first()?;
    let kind = kind_of_byte(kind)?;
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    let owner = rest.get(..len)?;
    let owner = String::from_utf8(owner.to_vec()).ok()?;
    let (created_ms, id) = decode_time_id(&rest[len..])?;
    Some((kind, owner, created_ms, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(invalid_id("msgbatch_01").is_none());
        assert!(invalid_id(&"x".repeat(MAX_ID_LEN)).is_none());
        assert!(invalid_id("").is_some());
        assert!(invalid_id(&"x".repeat(MAX_ID_LEN + 1)).is_some());
        assert!(invalid_id("a\0b").is_some());
    }

    #[test]
    fn newer_sorts_first() {
        assert!(kind_key(Kind::Batch, 2, "a") < kind_key(Kind::Batch, 1, "z"));
        assert!(kind_key(Kind::Batch, u64::MAX, "a") < kind_key(Kind::Batch, 0, "a"));
        assert!(owner_key(Kind::File, "k", 10, "a") < owner_key(Kind::File, "k", 9, "b"));
    }

    #[test]
    fn equal_times_sort_by_id_descending_even_for_prefixes() {
        let order = ["b", "a\u{7f}", "abc", "ab", "a\u{1}", "a"];
        for pair in order.windows(2) {
            assert!(
                kind_key(Kind::File, 5, pair[0]) < kind_key(Kind::File, 5, pair[1]),
                "{pair:?}"
            );
            assert!(
                owner_key(Kind::File, "o", 5, pair[0]) < owner_key(Kind::File, "o", 5, pair[1])
            );
        }
        // Multi-byte UTF-8 compares as bytes, like `str`'s own order.
        assert!(kind_key(Kind::File, 5, "é") < kind_key(Kind::File, 5, "z"));
    }

    #[test]
    fn prefixes_hold_exactly_their_keys() {
        let key = owner_key(Kind::Batch, "ab", 7, "id");
        assert!(key.starts_with(&owner_prefix(Kind::Batch, "ab")));
        assert!(!key.starts_with(&owner_prefix(Kind::Batch, "a")));
        assert!(!key.starts_with(&owner_prefix(Kind::File, "ab")));
        assert!(owner_key(Kind::Batch, "", 7, "id").starts_with(&owner_prefix(Kind::Batch, "")));
        assert!(kind_key(Kind::File, 1, "x").starts_with(&kind_prefix(Kind::File)));
        assert!(!kind_key(Kind::File, 1, "x").starts_with(&kind_prefix(Kind::Batch)));
    }

    #[test]
    fn keys_decode_back() {
        let key = owner_key(Kind::File, "team-ü", 1_700_000_000_123, "file_01é");
        assert_eq!(
            decode_owner_key(&key),
            Some((
                Kind::File,
                "team-ü".into(),
                1_700_000_000_123,
                "file_01é".into()
            ))
        );
        let prefix = owner_prefix(Kind::File, "team-ü").len();
        assert_eq!(id_after_prefix(&key, prefix).as_deref(), Some("file_01é"));
        let key = kind_key(Kind::Batch, 0, "msgbatch_1");
        assert_eq!(id_after_prefix(&key, 1).as_deref(), Some("msgbatch_1"));
        assert_eq!(decode_owner_key(b"b\0\0\0\x09short"), None);
        assert_eq!(id_after_prefix(b"b1234567", 1), None);
    }
}
