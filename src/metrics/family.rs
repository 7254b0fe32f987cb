//! Metrics with labels whose values come with the requests (model ids, client key names,
//! credential names), kept per worker.
//!
//! The worker finds the value of a label set through a map of its own, without a lock. A new
//! label set is also appended to a list that the scrape loads through an `ArcSwap`, so the scrape
//! never holds a lock a worker could wait on. A new set costs a copy of that list (rare: label
//! values are bounded by the configuration and by the model cap); every other update costs one
//! hash lookup.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustc_hash::FxBuildHasher;

/// One label set and its value.
#[derive(Debug)]
pub struct Entry<V> {
    pub labels: Box<[Box<str>]>,
    pub value: V,
}

/// A family's entries as the scrape sees them.
pub type Published<V> = Arc<ArcSwap<Vec<Arc<Entry<V>>>>>;

pub fn published<V>() -> Published<V> {
    Arc::new(ArcSwap::from_pointee(Vec::new()))
}

/// The worker's side of a family: lookup by label values, and the publication of new ones.
pub struct Family<V> {
    /// Label-set hash to the indices of `entries` with that hash.
    index: RefCell<HashMap<u64, Vec<usize>, FxBuildHasher>>,
    entries: RefCell<Vec<Arc<Entry<V>>>>,
    published: Published<V>,
    /// Fast and unkeyed: the label sets are bounded (see the model cap), so no client can make
    /// collisions cost more than a few comparisons.
    hasher: FxBuildHasher,
}

impl<V: Default> Family<V> {
    /// Takes over what `published` already holds, so a family made again for the same shard
    /// never publishes a label set twice.
    pub fn new(published: Published<V>) -> Family<V> {
        let family = Family {
            index: RefCell::default(),
            entries: RefCell::new(published.load().to_vec()),
            published,
            hasher: FxBuildHasher,
        };
        for (i, e) in family.entries.borrow().iter().enumerate() {
            let labels: Vec<&str> = e.labels.iter().map(|l| &**l).collect();
            let h = family.hash(&labels);
            family.index.borrow_mut().entry(h).or_default().push(i);
        }
        family
    }

    /// Runs `update` on the value of `labels`, made (zero) and published on first use.
    pub fn with(&self, labels: &[&str], update: impl FnOnce(&V)) {
        let h = self.hash(labels);
        let same = |e: &Entry<V>| e.labels.iter().map(|l| &**l).eq(labels.iter().copied());
        {
            let index = self.index.borrow();
            let entries = self.entries.borrow();
            let found = index.get(&h).into_iter().flatten().map(|&i| &entries[i]);
            if let Some(e) = found.into_iter().find(|e| same(e)) {
                return update(&e.value);
            }
        }
        let entry = Arc::new(Entry {
            labels: labels.iter().map(|&l| Box::from(l)).collect(),
            value: V::default(),
        });
        update(&entry.value);
        let mut entries = self.entries.borrow_mut();
        self.index
            .borrow_mut()
            .entry(h)
            .or_default()
            .push(entries.len());
        entries.push(entry);
        self.published.store(Arc::new(entries.clone()));
    }

    fn hash(&self, labels: &[&str]) -> u64 {
        self.hasher.hash_one(labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::cell::Counter;

    #[test]
    fn values_are_found_again_and_published_once() {
        let shared = published::<Counter>();
        let f = Family::new(shared.clone());
        f.with(&["messages", "200"], |c| c.add(1));
        f.with(&["messages", "200"], |c| c.add(2));
        f.with(&["messages", "404"], |c| c.add(5));
        // A label value containing the separator of another pair is still another set.
        f.with(&["messages2", "00"], |c| c.add(7));
        let seen: Vec<(Vec<String>, u64)> = shared
            .load()
            .iter()
            .map(|e| {
                (
                    e.labels.iter().map(|l| l.to_string()).collect(),
                    e.value.get(),
                )
            })
            .collect();
        let want = |l: &[&str], v| (l.iter().map(|s| s.to_string()).collect(), v);
        assert_eq!(
            seen,
            vec![
                want(&["messages", "200"], 3),
                want(&["messages", "404"], 5),
                want(&["messages2", "00"], 7),
            ]
        );
    }

    #[test]
    fn a_family_made_again_takes_over_its_published_sets() {
        let shared = published::<Counter>();
        Family::new(shared.clone()).with(&["a"], |c| c.add(1));
        let again = Family::new(shared.clone());
        again.with(&["a"], |c| c.add(1));
        again.with(&["b"], |c| c.add(1));
        let all = shared.load();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].value.get(), 2);
    }
}
