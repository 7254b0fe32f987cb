//! How the objects store says what went wrong.
//!
//! Every failure names the operation and the file, and sorts itself into a [`StoreErrorKind`]
//! so that the gateway can tell a client's bad id from its own trouble (a locked, corrupt or
//! unwritable file). redb's many error types meet here in [`Fail`], inside an operation, and
//! leave as a [`StoreError`].

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What sort of failure a [`StoreError`] is, for callers that answer differently (a refused
/// id is the caller's mistake; the rest are the gateway's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The id is empty, longer than 256 bytes or holds a NUL; nothing was stored.
    InvalidId,
    /// The file is held by another process, or by another `Store` in this one.
    Locked,
    /// The file is not a redb file, or its contents cannot be read as records.
    Corrupt,
    /// The directory or file cannot be created, read or written.
    Io,
}

/// A failed store call. Its `Display` names the operation, the file and the cause.
#[derive(Debug)]
pub struct StoreError {
    kind: StoreErrorKind,
    op: &'static str,
    path: PathBuf,
    detail: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// What sort of failure it is.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// The file the store keeps its records in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn new(
        kind: StoreErrorKind,
        op: &'static str,
        path: &Path,
        detail: String,
    ) -> StoreError {
        StoreError {
            kind,
            op,
            path: path.to_path_buf(),
            detail,
            source: None,
        }
    }

    /// An I/O failure outside redb: `detail` says what could not be done.
    pub(super) fn from_io(
        op: &'static str,
        path: &Path,
        detail: String,
        err: io::Error,
    ) -> StoreError {
        StoreError {
            source: Some(Box::new(err)),
            ..StoreError::new(StoreErrorKind::Io, op, path, detail)
        }
    }

    pub(super) fn from_redb(op: &'static str, path: &Path, err: redb::Error) -> StoreError {
        use StoreErrorKind::*;
        let (kind, detail) = match &err {
            redb::Error::DatabaseAlreadyOpen => (
                Locked,
                "the file is held by another process (another gateway on the same state \
                 directory?) or by a second Store in this process"
                    .to_string(),
            ),
            redb::Error::Io(e) if e.kind() == io::ErrorKind::InvalidData => (
                Corrupt,
                "the file is not a redb database, or is corrupt".to_string(),
            ),
            redb::Error::Io(e) => (Io, e.to_string()),
            redb::Error::Corrupted(what) => (Corrupt, format!("the file is corrupt: {what}")),
            redb::Error::UpgradeRequired(v) => (
                Corrupt,
                format!("the file is in redb's older format {v}, which this gateway cannot read"),
            ),
            redb::Error::TableTypeMismatch { .. }
            | redb::Error::TableIsMultimap(_)
            | redb::Error::TypeDefinitionChanged { .. } => (
                Corrupt,
                format!("the file's tables are not laid out as this gateway's: {err}"),
            ),
            _ => (Io, err.to_string()),
        };
        StoreError {
            source: Some(Box::new(err)),
            ..StoreError::new(kind, op, path, detail)
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "objects store {}: {} failed: {}",
            self.path.display(),
            self.op,
            self.detail
        )
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Why the redb part of an operation failed.
pub(super) enum Fail {
    /// redb's own error, boxed: some of its variants are large.
    Db(Box<redb::Error>),
    /// A stored record or index key that cannot be read; says which.
    Corrupt(String),
}

impl Fail {
    pub(super) fn record(id: &str) -> Fail {
        Fail::Corrupt(format!("the stored record for {id:?} cannot be read"))
    }
}

macro_rules! fail_from {
    ($($error:ty),*) => {$(
        impl From<$error> for Fail {
            fn from(err: $error) -> Fail {
                Fail::Db(Box::new(err.into()))
            }
        }
    )*};
}

fail_from!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
