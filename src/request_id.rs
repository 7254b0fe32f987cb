//! Request ids: `req_` and 24 random characters, carried in `request-id` and error bodies.
//!
//! Ids are made for every request, so they are a fixed-size `Copy` value: no allocation, and
//! cheap to hand to every place that reports on the request.

use std::fmt;

const LEN: usize = 28;

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RequestId {
    bytes: [u8; LEN],
}

impl RequestId {
    /// An id for a connection-level error that belongs to no request.
    pub const EMPTY: RequestId = RequestId {
        bytes: *b"req_000000000000000000000000",
    };

    pub fn new() -> RequestId {
        let mut bytes = [0u8; LEN];
        bytes[..4].copy_from_slice(b"req_");
        for b in &mut bytes[4..] {
            *b = fastrand::alphanumeric() as u8;
        }
        RequestId { bytes }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written into `bytes`.
        std::str::from_utf8(&self.bytes).unwrap_or("req_invalid")
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_distinct_and_well_formed() {
        let a = super::RequestId::new();
        let b = super::RequestId::new();
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("req_") && a.as_str().len() == 28);
        assert_eq!(super::RequestId::EMPTY.as_str().len(), 28);
    }
}
