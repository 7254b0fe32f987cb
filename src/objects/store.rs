//! The persistent record of every batch and file the gateway created upstream.
//!
//! A batch or file can only be reached through the upstream credential that created it, and it
//! belongs to the client key that asked for it. This store remembers both, for any worker
//! thread, across config reloads and across restarts, in `<state dir>/objects.redb` (a
//! [redb](https://docs.rs/redb) file). The API blocks: the gateway calls it from its blocking
//! thread pool.
//!
//! # Layout
//! Three tables, all written in one transaction per change, so the indexes never disagree with
//! the records:
//! - `records`: id → the record's other fields, as JSON (see `Stored` for why);
//! - `by_kind`: `(kind, newest first, id)` → `()`, for listings across all owners;
//! - `by_owner`: `(kind, owner, newest first, id)` → `()`, for one client key's listings.
//!
//! The index keys are laid out by the `keys` module so that ascending byte order is the listing
//! order, and a page is one range scan that stops after `limit + 1` keys.
//!
//! # One `Store` per process
//! redb locks its file (`flock`) for as long as it is open. A second gateway on the same state
//! directory, and a second `Store` on the same directory in the same process, get a
//! [`StoreErrorKind::Locked`] error from every call until the first lets go; nothing is
//! corrupted. So the contract is: the gateway builds ONE `Store` at start and shares it behind
//! an `Arc`; a config reload keeps it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::ops::Bound;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::store_error::Fail;
pub use super::store_error::{StoreError, StoreErrorKind};
use super::store_keys as keys;

/// The name of the store's file within the state directory.
pub const FILE_NAME: &str = "objects.redb";

/// How much of the file redb may cache in memory. The records are small and few compared
/// with redb's default of 1 GiB.
const CACHE_BYTES: usize = 16 << 20;

const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");
const BY_KIND: TableDefinition<&[u8], ()> = TableDefinition::new("by_kind");
const BY_OWNER: TableDefinition<&[u8], ()> = TableDefinition::new("by_owner");

/// What sort of upstream object a record stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A Message Batch (`msgbatch_…`).
    Batch,
    /// A file of the Files API (`file_…`).
    File,
}

impl Kind {
    /// The name used in the stored records and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Batch => "batch",
            Kind::File => "file",
        }
    }

    fn parse(name: &str) -> Option<Kind> {
        match name {
            "batch" => Some(Kind::Batch),
            "file" => Some(Kind::File),
            _ => None,
        }
    }
}

/// Where one upstream object lives and whose it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The upstream's id for it, e.g. `msgbatch_…` or `file_…`; the store's key.
    pub id: String,
    /// Batch or file.
    pub kind: Kind,
    /// The upstream's name in the config.
    pub upstream: String,
    /// The credential's name within that upstream: the only one that can reach the object.
    pub credential: String,
    /// The name of the client key that created it; `""` when the gateway has no client keys.
    pub owner: String,
    /// When the gateway recorded it, in Unix milliseconds.
    pub created_ms: u64,
}

/// Where a page starts, in the newest-first order of [`Store::page`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cursor<'a> {
    /// From the newest record.
    First,
    /// The records older than the one with this id.
    After(&'a str),
    /// The records newer than the one with this id (the ones just before it).
    Before(&'a str),
}

/// One page of a listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// The records, newest first.
    pub records: Vec<Record>,
    /// Whether more records lie beyond this page in the direction of travel: older ones for
    /// [`Cursor::First`] and [`Cursor::After`], newer ones for [`Cursor::Before`].
    pub has_more: bool,
}

/// The stored form of a record, without its id (the table's key).
///
/// JSON through serde_json rather than a hand format: the crate already depends on it, the
/// records are a few hundred bytes and read a page at a time (size and speed do not matter
/// here), a field added later reads back from older files with `#[serde(default)]` while
/// older gateways skip fields they do not know, and a file can be inspected by hand.
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    kind: Cow<'a, str>,
    upstream: Cow<'a, str>,
    credential: Cow<'a, str>,
    owner: Cow<'a, str>,
    created_ms: u64,
}

/// A record's stored bytes.
fn encode(record: &Record) -> Vec<u8> {
    let stored = Stored {
        kind: Cow::Borrowed(record.kind.as_str()),
        upstream: Cow::Borrowed(&record.upstream),
        credential: Cow::Borrowed(&record.credential),
        owner: Cow::Borrowed(&record.owner),
        created_ms: record.created_ms,
    };
    // Serializing strings and a number into a Vec cannot fail.
    serde_json::to_vec(&stored).unwrap_or_default()
}

/// A record back from its id and stored bytes; `None` if the bytes are not a record.
fn decode(id: &str, bytes: &[u8]) -> Option<Record> {
    let stored: Stored<'_> = serde_json::from_slice(bytes).ok()?;
    Some(Record {
        id: id.to_string(),
        kind: Kind::parse(&stored.kind)?,
        upstream: stored.upstream.into_owned(),
        credential: stored.credential.into_owned(),
        owner: stored.owner.into_owned(),
        created_ms: stored.created_ms,
    })
}

/// The embedded store of object records; see the module doc. `Send + Sync`: share it behind
/// an `Arc`, one per process.
pub struct Store {
    dir: PathBuf,
    path: PathBuf,
    /// The open database, once a call needed it. Reset after an I/O failure, which leaves a
    /// redb handle unusable, so that the next call opens the file afresh.
    db: Mutex<Option<Arc<redb::Database>>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// What every operation answers.
type Res<T> = Result<T, StoreError>;

impl Store {
    /// A store whose file is `<dir>/objects.redb`. Touches nothing on disk: the directory
    /// (mode 0700) and the file (mode 0600) are created by the first write, and a read before
    /// any write answers empty without creating anything.
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        let dir = dir.into();
        let path = dir.join(FILE_NAME);
        Store {
            dir,
            path,
            db: Mutex::new(None),
        }
    }

    /// The file the records live in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Inserts `record`, or replaces the one with the same id (indexes included), durably.
    pub fn put(&self, record: &Record) -> Res<()> {
        const OP: &str = "put";
        self.check_id(OP, &record.id)?;
        let Some(db) = self.open(OP, true)? else {
            return Err(self.vanished(OP));
        };
        let bytes = encode(record);
        self.run(OP, || {
            let txn = db.begin_write()?;
            {
                let mut records = txn.open_table(RECORDS)?;
                let mut by_kind = txn.open_table(BY_KIND)?;
                let mut by_owner = txn.open_table(BY_OWNER)?;
                let old = records
                    .get(record.id.as_str())?
                    .map(|v| decode(&record.id, v.value()));
                if let Some(old) = old {
                    let Some(old) = old else {
                        return Err(Fail::record(&record.id));
                    };
                    by_kind.remove(keys::kind_key(old.kind, old.created_ms, &old.id).as_slice())?;
                    by_owner.remove(owner_key(&old).as_slice())?;
                }
                records.insert(record.id.as_str(), bytes.as_slice())?;
                by_kind.insert(
                    keys::kind_key(record.kind, record.created_ms, &record.id).as_slice(),
                    (),
                )?;
                by_owner.insert(owner_key(record).as_slice(), ())?;
            }
            txn.commit()?;
            Ok(())
        })
    }

    /// The record with this id, if any.
    pub fn get(&self, id: &str) -> Res<Option<Record>> {
        const OP: &str = "get";
        self.check_id(OP, id)?;
        let Some(db) = self.open(OP, false)? else {
            return Ok(None);
        };
        self.run(OP, || {
            let txn = db.begin_read()?;
            let Some(records) = open_read(&txn, RECORDS)? else {
                return Ok(None);
            };
            match records.get(id)? {
                None => Ok(None),
                Some(b) => decode(id, b.value())
                    .map(Some)
                    .ok_or_else(|| Fail::record(id)),
            }
        })
    }

    /// Removes the record with this id and answers it, durably; `None` if there was none.
    pub fn remove(&self, id: &str) -> Res<Option<Record>> {
        const OP: &str = "remove";
        self.check_id(OP, id)?;
        // Nothing to remove from a file that does not exist: do not create it.
        let Some(db) = self.open(OP, false)? else {
            return Ok(None);
        };
        self.run(OP, || {
            let txn = db.begin_write()?;
            let old = {
                let mut records = txn.open_table(RECORDS)?;
                let mut by_kind = txn.open_table(BY_KIND)?;
                let mut by_owner = txn.open_table(BY_OWNER)?;
                let old = records.remove(id)?.map(|v| decode(id, v.value()));
                let Some(old) = old else { return Ok(None) };
                let Some(old) = old else {
                    return Err(Fail::record(id));
                };
                by_kind.remove(keys::kind_key(old.kind, old.created_ms, &old.id).as_slice())?;
                by_owner.remove(owner_key(&old).as_slice())?;
                old
            };
            txn.commit()?;
            Ok(Some(old))
        })
    }

    /// One page of `kind`'s records, newest first by `(created_ms, id)` descending; `owner:
    /// None` lists every owner's.
    ///
    /// [`Cursor::After`]`(x)` gives the `limit` records after `x` in that order (older);
    /// [`Cursor::Before`]`(x)` the `limit` records immediately before `x` (newer), still newest
    /// first. A cursor id that is not among the selected records (another owner's, another
    /// kind's, unknown) gives an empty page with `has_more` false.
    ///
    /// A `limit` of 0 is taken as 1: a page with no records but `has_more` true would leave a
    /// client paging with it nowhere to go. Capping the client's limit is the caller's business.
    pub fn page(
        &self,
        kind: Kind,
        owner: Option<&str>,
        cursor: Cursor<'_>,
        limit: usize,
    ) -> Res<Page> {
        const OP: &str = "page";
        let limit = limit.max(1);
        let Some(db) = self.open(OP, false)? else {
            return Ok(Page::default());
        };
        self.run(OP, || {
            let txn = db.begin_read()?;
            let Some(records) = open_read(&txn, RECORDS)? else {
                return Ok(Page::default());
            };
            let (index, prefix) = match owner {
                None => (open_read(&txn, BY_KIND)?, keys::kind_prefix(kind)),
                Some(owner) => (open_read(&txn, BY_OWNER)?, keys::owner_prefix(kind, owner)),
            };
            let Some(index) = index else {
                return Ok(Page::default());
            };
            // The cursor's own index key, if it is among the selected records.
            let anchor = match cursor {
                Cursor::First => None,
                Cursor::After(id) | Cursor::Before(id) => {
                    let found = match records.get(id)? {
                        Some(bytes) => decode(id, bytes.value()),
                        None => None,
                    };
                    match found {
                        Some(r) if r.kind == kind && owner.map_or(true, |o| o == r.owner) => {
                            Some(match owner {
                                None => keys::kind_key(kind, r.created_ms, id),
                                Some(_) => owner_key(&r),
                            })
                        }
                        _ => return Ok(Page::default()),
                    }
                }
            };
            let mut keys_found: Vec<Vec<u8>> = Vec::new();
            let mut has_more = false;
            let take = limit.saturating_add(1);
            match (cursor, &anchor) {
                (Cursor::Before(_), Some(anchor)) => {
                    let range = index.range::<&[u8]>(prefix.as_slice()..anchor.as_slice())?;
                    for entry in range.rev().take(take) {
                        keys_found.push(entry?.0.value().to_vec());
                    }
                    // Found nearest first: the page is the nearest `limit`, newest first.
                    keys_found.reverse();
                    if keys_found.len() > limit {
                        keys_found.remove(0);
                        has_more = true;
                    }
                }
                _ => {
                    let start = match &anchor {
                        Some(a) => Bound::Excluded(a.as_slice()),
                        None => Bound::Included(prefix.as_slice()),
                    };
                    let range = index.range::<&[u8]>((start, Bound::Unbounded))?;
                    for entry in range.take(take) {
                        let key = entry?.0.value().to_vec();
                        if !key.starts_with(&prefix) {
                            break;
                        }
                        keys_found.push(key);
                    }
                    has_more = keys_found.len() > limit;
                    keys_found.truncate(limit);
                }
            }
            let mut page = Page {
                records: Vec::with_capacity(keys_found.len()),
                has_more,
            };
            for key in keys_found {
                let Some(id) = keys::id_after_prefix(&key, prefix.len()) else {
                    return Err(Fail::Corrupt("an index entry cannot be read".to_string()));
                };
                let record = match records.get(id.as_str())? {
                    Some(bytes) => decode(&id, bytes.value()),
                    None => None,
                };
                let Some(record) = record else {
                    return Err(Fail::record(&id));
                };
                page.records.push(record);
            }
            Ok(page)
        })
    }

    /// For the admin view: every owner's ids, by kind (batches then files, newest first within
    /// each). Reads the owner index only, whole.
    pub fn owners(&self) -> Res<BTreeMap<String, Vec<(Kind, String)>>> {
        const OP: &str = "owners";
        let mut owners: BTreeMap<String, Vec<(Kind, String)>> = BTreeMap::new();
        let Some(db) = self.open(OP, false)? else {
            return Ok(owners);
        };
        self.run(OP, || {
            let txn = db.begin_read()?;
            let Some(index) = open_read(&txn, BY_OWNER)? else {
                return Ok(());
            };
            for entry in index.iter()? {
                let (key, _) = entry?;
                let Some((kind, owner, _, id)) = keys::decode_owner_key(key.value()) else {
                    return Err(Fail::Corrupt("an index entry cannot be read".to_string()));
                };
                owners.entry(owner).or_default().push((kind, id));
            }
            Ok(())
        })?;
        Ok(owners)
    }

    fn check_id(&self, op: &'static str, id: &str) -> Res<()> {
        match keys::invalid_id(id) {
            None => Ok(()),
            Some(why) => Err(StoreError::new(
                StoreErrorKind::InvalidId,
                op,
                &self.path,
                why.into(),
            )),
        }
    }

    fn vanished(&self, op: &'static str) -> StoreError {
        let detail = "the file vanished while being opened".to_string();
        StoreError::new(StoreErrorKind::Io, op, &self.path, detail)
    }

    /// Runs the redb part of an operation, turning its failures into a [`StoreError`]. An
    /// I/O failure leaves a redb handle unusable, so it is dropped for the next call to reopen.
    fn run<T>(&self, op: &'static str, f: impl FnOnce() -> Result<T, Fail>) -> Res<T> {
        match f() {
            Ok(result) => Ok(result),
            Err(Fail::Corrupt(detail)) => Err(StoreError::new(
                StoreErrorKind::Corrupt,
                op,
                &self.path,
                detail,
            )),
            Err(Fail::Db(err)) => {
                if matches!(*err, redb::Error::Io(_) | redb::Error::PreviousIo) {
                    *self.db.lock().unwrap_or_else(|p| p.into_inner()) = None;
                }
                Err(StoreError::from_redb(op, &self.path, *err))
            }
        }
    }

    /// The open database; opened now if need be. `create`: make the directory and the file if
    /// they are missing; otherwise a missing file answers `None`.
    fn open(&self, op: &'static str, create: bool) -> Res<Option<Arc<redb::Database>>> {
        let mut slot = self.db.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(db) = slot.as_ref() {
            return Ok(Some(db.clone()));
        }
        let io_err = |what: String, e: io::Error| StoreError::from_io(op, &self.path, what, e);
        if create {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(|e| {
                    let what = format!("cannot create the directory {}: {e}", self.dir.display());
                    io_err(what, e)
                })?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .mode(0o600)
            .open(&self.path);
        let file = match file {
            Ok(file) => file,
            Err(e) if !create && e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(format!("cannot open the file: {e}"), e)),
        };
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create_file(file)
            .map_err(|e| StoreError::from_redb(op, &self.path, e.into()))?;
        let db = Arc::new(db);
        *slot = Some(db.clone());
        Ok(Some(db))
    }
}

/// A table opened for reading; `None` if no write has created it yet.
fn open_read<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &redb::ReadTransaction,
    table: TableDefinition<K, V>,
) -> Result<Option<redb::ReadOnlyTable<K, V>>, Fail> {
    match txn.open_table(table) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A record's `by_owner` key.
fn owner_key(r: &Record) -> Vec<u8> {
    keys::owner_key(r.kind, &r.owner, r.created_ms, &r.id)
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
