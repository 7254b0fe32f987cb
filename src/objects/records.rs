//! The object records as a worker reaches them: every store call runs on the runtime's
//! blocking pool, so a disk that is slow to sync never stalls the connections of a core.
//!
//! A store that fails (a full disk, a directory made read-only) is said in the log with its
//! cause, and the client gets a 500 that says the gateway is at fault, never the details.

use std::sync::Arc;

use super::pages::Asked;
use super::store::{Cursor, Kind, Page, Record, Store, StoreError, StoreErrorKind};
use crate::http::{ApiError, ErrorType};

/// One store shared by every worker (the file is opened once per process).
#[derive(Clone)]
pub struct Records {
    store: Arc<Store>,
}

impl Records {
    pub fn new(store: Arc<Store>) -> Records {
        Records { store }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The record of `id`; none for an id no record could have (empty, too long).
    pub async fn get(&self, id: &str) -> Result<Option<Record>, ApiError> {
        let id = id.to_string();
        self.run(move |s| match s.get(&id) {
            Err(e) if e.kind() == StoreErrorKind::InvalidId => Ok(None),
            other => other,
        })
        .await
    }

    pub async fn put(&self, record: Record) -> Result<(), ApiError> {
        self.run(move |s| s.put(&record)).await
    }

    pub async fn remove(&self, id: &str) -> Result<(), ApiError> {
        let id = id.to_string();
        self.run(move |s| match s.remove(&id) {
            Err(e) if e.kind() == StoreErrorKind::InvalidId => Ok(()),
            other => other.map(drop),
        })
        .await
    }

    /// A page of `kind`'s records (`owner`'s only, when given), as `asked`.
    pub async fn page(
        &self,
        kind: Kind,
        owner: Option<&str>,
        asked: &Asked,
    ) -> Result<Page, ApiError> {
        let owner = owner.map(str::to_string);
        let asked = asked.clone();
        self.run(move |s| {
            let cursor = match (&asked.before_id, &asked.after_id) {
                (Some(before), _) => Cursor::Before(before),
                (None, Some(after)) => Cursor::After(after),
                (None, None) => Cursor::First,
            };
            s.page(kind, owner.as_deref(), cursor, asked.limit)
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.store.clone();
        let done = monoio::spawn_blocking(move || call(&store)).await;
        match done {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                log::error!("object records: {e}");
                Err(failed())
            }
            Err(_) => {
                log::error!("object records: the blocking pool dropped the call");
                Err(failed())
            }
        }
    }
}

fn failed() -> ApiError {
    ApiError::new(
        500,
        ErrorType::Api,
        "the gateway could not reach its record of batches and files; its log says why".into(),
    )
}
