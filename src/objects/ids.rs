//! Which object a path names, and who may reach it.
//!
//! An object belongs to the client key (by name) that created it; every other key is told it
//! does not exist, exactly as for an id that never existed, so ids cannot be probed. A gateway
//! without client keys serves only loopback, and there everything belongs to everyone.

use super::store::{Kind, Record};
use crate::http::{ApiError, ErrorType};
use crate::server::router::Route;

/// The kind of object a route is about.
pub fn kind_of(route: Route) -> Kind {
    match route {
        Route::Files | Route::File | Route::FileContent => Kind::File,
        _ => Kind::Batch,
    }
}

/// The id in a path such as `/v1/messages/batches/{id}/results` or `/v1/files/{id}` (the
/// router has checked its shape; the query is not part of it).
pub fn id_of(path: &str) -> &str {
    let rest = (path.strip_prefix("/v1/messages/batches/"))
        .or_else(|| path.strip_prefix("/v1/files/"))
        .unwrap_or("");
    rest.split('/').next().unwrap_or("")
}

/// The owner recorded for an object created by `caller` (`""`: no client keys).
pub fn owner_of(caller: Option<&str>) -> &str {
    caller.unwrap_or("")
}

/// Whether `caller` may reach the object: its owner may; without client keys, anyone may.
pub fn visible(record: &Record, caller: Option<&str>) -> bool {
    caller.map_or(true, |name| record.owner == name)
}

/// The answer for an object that does not exist or is not the caller's: the same either way.
pub fn not_found(kind: Kind, id: &str) -> ApiError {
    let shown: String = id.chars().take(100).collect();
    ApiError::new(
        404,
        ErrorType::NotFound,
        format!("{} {shown:?} not found", noun(kind)).into(),
    )
}

pub fn noun(kind: Kind) -> &'static str {
    match kind {
        Kind::Batch => "message batch",
        Kind::File => "file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(owner: &str) -> Record {
        Record {
            id: "msgbatch_1".into(),
            kind: Kind::Batch,
            upstream: "anthropic".into(),
            credential: "a".into(),
            owner: owner.into(),
            created_ms: 1,
        }
    }

    #[test]
    fn ids_from_paths() {
        assert_eq!(id_of("/v1/messages/batches/msgbatch_1"), "msgbatch_1");
        assert_eq!(
            id_of("/v1/messages/batches/msgbatch_1/results"),
            "msgbatch_1"
        );
        assert_eq!(
            id_of("/v1/messages/batches/msgbatch_1/cancel"),
            "msgbatch_1"
        );
        assert_eq!(id_of("/v1/files/file_9/content"), "file_9");
        assert_eq!(id_of("/v1/files/file_9"), "file_9");
        assert_eq!(id_of("/v1/models"), "");
        assert_eq!(kind_of(Route::FileContent), Kind::File);
        assert_eq!(kind_of(Route::BatchResults), Kind::Batch);
    }

    #[test]
    fn an_object_is_its_owners_unless_nobody_has_a_key() {
        assert!(visible(&record("team-a"), Some("team-a")));
        assert!(!visible(&record("team-a"), Some("team-b")));
        assert!(visible(&record("team-a"), None));
        // Made before client keys were configured: nobody's, so no key's.
        assert!(!visible(&record(""), Some("team-a")));
        assert_eq!(owner_of(None), "");
        let (a, b) = (
            not_found(Kind::File, "file_x"),
            not_found(Kind::File, "file_x"),
        );
        assert_eq!((a.status, a.message), (b.status, b.message));
    }
}
