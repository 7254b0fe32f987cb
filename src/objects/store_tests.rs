use super::*;
use proptest::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh directory under the system temp dir, removed on drop. The store's own directory is
/// `state/` inside it, so tests can see whether the store created it.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "ringgate-objects-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn state(&self) -> PathBuf {
        self.0.join("state")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rec(id: &str, kind: Kind, owner: &str, created_ms: u64) -> Record {
    Record {
        id: id.into(),
        kind,
        upstream: "anthropic".into(),
        credential: "key-1".into(),
        owner: owner.into(),
        created_ms,
    }
}

fn ids(page: &Page) -> Vec<&str> {
    page.records.iter().map(|r| r.id.as_str()).collect()
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Store>();
    check::<StoreError>();
}

#[test]
fn put_get_remove() {
    let tmp = TempDir::new();
    let store = Store::new(tmp.state());
    assert_eq!(store.path(), tmp.state().join("objects.redb"));
    let r = Record {
        upstream: "bedrock \"east\"\n".into(),
        ..rec("msgbatch_01", Kind::Batch, "team-ü", 1_700_000_000_000)
    };
    store.put(&r).unwrap();
    assert_eq!(store.get("msgbatch_01").unwrap(), Some(r.clone()));
    assert_eq!(store.get("msgbatch_02").unwrap(), None);
    assert_eq!(store.remove("msgbatch_01").unwrap(), Some(r));
    assert_eq!(store.remove("msgbatch_01").unwrap(), None);
    assert_eq!(store.get("msgbatch_01").unwrap(), None);
    let page = store.page(Kind::Batch, None, Cursor::First, 10).unwrap();
    assert_eq!(page, Page::default());
    assert!(store.owners().unwrap().is_empty());
}

#[test]
fn bad_ids_are_refused_and_nothing_is_written() {
    let tmp = TempDir::new();
    let store = Store::new(tmp.state());
    let long = "x".repeat(257);
    for id in ["", "a\0b", long.as_str()] {
        let err = store.put(&rec(id, Kind::File, "", 1)).unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::InvalidId);
        assert!(err.to_string().contains("objects.redb"), "{err}");
        assert_eq!(store.get(id).unwrap_err().kind(), StoreErrorKind::InvalidId);
        assert_eq!(
            store.remove(id).unwrap_err().kind(),
            StoreErrorKind::InvalidId
        );
    }
    assert!(!tmp.state().exists());
    store
        .put(&rec(&"x".repeat(256), Kind::File, "", 1))
        .unwrap();
}

#[test]
fn replace_moves_the_index_entries() {
    let tmp = TempDir::new();
    let store = Store::new(tmp.state());
    store.put(&rec("obj_1", Kind::Batch, "a", 1)).unwrap();
    store.put(&rec("obj_2", Kind::Batch, "a", 2)).unwrap();
    let moved = rec("obj_1", Kind::File, "b", 5);
    store.put(&moved).unwrap();
    assert_eq!(store.get("obj_1").unwrap(), Some(moved.clone()));
    let page = |kind, owner| store.page(kind, owner, Cursor::First, 10).unwrap();
    assert_eq!(ids(&page(Kind::Batch, None)), ["obj_2"]);
    assert_eq!(ids(&page(Kind::Batch, Some("a"))), ["obj_2"]);
    assert_eq!(ids(&page(Kind::File, None)), ["obj_1"]);
    assert_eq!(ids(&page(Kind::File, Some("b"))), ["obj_1"]);
    assert!(page(Kind::File, Some("a")).records.is_empty());
    // Same kind and owner, new time: one entry, at its new place.
    store.put(&rec("obj_2", Kind::Batch, "a", 0)).unwrap();
    store.put(&rec("obj_3", Kind::Batch, "a", 1)).unwrap();
    assert_eq!(ids(&page(Kind::Batch, Some("a"))), ["obj_3", "obj_2"]);
    assert_eq!(ids(&page(Kind::Batch, None)), ["obj_3", "obj_2"]);
    let owners = store.owners().unwrap();
    let expected = BTreeMap::from([
        (
            "a".to_string(),
            vec![(Kind::Batch, "obj_3".into()), (Kind::Batch, "obj_2".into())],
        ),
        ("b".to_string(), vec![(Kind::File, "obj_1".into())]),
    ]);
    assert_eq!(owners, expected);
    store.remove("obj_1").unwrap();
    assert!(page(Kind::File, None).records.is_empty());
    assert!(!store.owners().unwrap().contains_key("b"));
}

/// Five batches `b1`..`b5`, `b5` newest; listed as b5, b4, b3, b2, b1.
fn five(tmp: &TempDir) -> Store {
    let store = Store::new(tmp.state());
    for i in 1..=5 {
        store
            .put(&rec(&format!("b{i}"), Kind::Batch, "o", i * 10))
            .unwrap();
    }
    store
}

#[test]
fn pages_go_forward() {
    let tmp = TempDir::new();
    let store = five(&tmp);
    let page = |cursor, limit| store.page(Kind::Batch, None, cursor, limit).unwrap();
    let p = page(Cursor::First, 2);
    assert_eq!((ids(&p), p.has_more), (vec!["b5", "b4"], true));
    let p = page(Cursor::After("b4"), 2);
    assert_eq!((ids(&p), p.has_more), (vec!["b3", "b2"], true));
    let p = page(Cursor::After("b2"), 2);
    assert_eq!((ids(&p), p.has_more), (vec!["b1"], false));
    let p = page(Cursor::After("b1"), 2);
    assert_eq!((ids(&p), p.has_more), (vec![], false));
    // Exact boundaries and a limit larger than the set.
    let p = page(Cursor::First, 5);
    assert_eq!((p.records.len(), p.has_more), (5, false));
    let p = page(Cursor::First, 4);
    assert_eq!((p.records.len(), p.has_more), (4, true));
    let p = page(Cursor::First, usize::MAX);
    assert_eq!((p.records.len(), p.has_more), (5, false));
    let p = page(Cursor::After("b3"), 2);
    assert_eq!((ids(&p), p.has_more), (vec!["b2", "b1"], false));
    // A limit of 0 is taken as 1.
    let p = page(Cursor::First, 0);
    assert_eq!((ids(&p), p.has_more), (vec!["b5"], true));
}

#[test]
fn pages_go_back() {
    let tmp = TempDir::new();
    let store = five(&tmp);
    let page = |cursor, limit| store.page(Kind::Batch, Some("o"), cursor, limit).unwrap();
    let p = page(Cursor::Before("b1"), 2);
    assert_eq!((ids(&p), p.has_more), (vec!["b3", "b2"], true));
    let p = page(Cursor::Before("b3"), 2);
    assert_eq!((ids(&p), p.has_more), (vec!["b5", "b4"], false));
    let p = page(Cursor::Before("b4"), 2);
    assert_eq!((ids(&p), p.has_more), (vec!["b5"], false));
    let p = page(Cursor::Before("b5"), 2);
    assert_eq!((ids(&p), p.has_more), (vec![], false));
    let p = page(Cursor::Before("b1"), 4);
    assert_eq!((ids(&p), p.has_more), (vec!["b5", "b4", "b3", "b2"], false));
    let p = page(Cursor::Before("b1"), 3);
    assert_eq!((ids(&p), p.has_more), (vec!["b4", "b3", "b2"], true));
    let p = page(Cursor::Before("b2"), 0);
    assert_eq!((ids(&p), p.has_more), (vec!["b3"], true));
}

#[test]
fn equal_times_order_by_id_descending() {
    let tmp = TempDir::new();
    let store = Store::new(tmp.state());
    for id in ["f_a", "f_abc", "f_ab", "f_b"] {
        store.put(&rec(id, Kind::File, "", 7)).unwrap();
    }
    let p = store.page(Kind::File, Some(""), Cursor::First, 10).unwrap();
    assert_eq!(ids(&p), ["f_b", "f_abc", "f_ab", "f_a"]);
    let p = store
        .page(Kind::File, None, Cursor::After("f_abc"), 1)
        .unwrap();
    assert_eq!((ids(&p), p.has_more), (vec!["f_ab"], true));
}

#[test]
fn owners_are_kept_apart() {
    let tmp = TempDir::new();
    let store = Store::new(tmp.state());
    store.put(&rec("b_a1", Kind::Batch, "a", 1)).unwrap();
    store.put(&rec("b_ab1", Kind::Batch, "ab", 2)).unwrap();
    store.put(&rec("b_a2", Kind::Batch, "a", 3)).unwrap();
    store.put(&rec("f_a1", Kind::File, "a", 4)).unwrap();
    let page = |owner, cursor| store.page(Kind::Batch, owner, cursor, 10).unwrap();
    assert_eq!(ids(&page(Some("a"), Cursor::First)), ["b_a2", "b_a1"]);
    assert_eq!(ids(&page(Some("ab"), Cursor::First)), ["b_ab1"]);
    assert!(page(Some("b"), Cursor::First).records.is_empty());
    assert_eq!(ids(&page(None, Cursor::First)), ["b_a2", "b_ab1", "b_a1"]);
    assert_eq!(ids(&page(None, Cursor::After("b_a2"))), ["b_ab1", "b_a1"]);
    // Cursors outside the selection: another owner's, another kind's, unknown.
    for cursor in [
        Cursor::After("b_ab1"),
        Cursor::Before("b_ab1"),
        Cursor::After("f_a1"),
        Cursor::Before("f_a1"),
        Cursor::After("nope"),
        Cursor::Before("nope"),
        Cursor::After(""),
    ] {
        assert_eq!(page(Some("a"), cursor), Page::default(), "{cursor:?}");
    }
    assert_eq!(page(None, Cursor::After("f_a1")), Page::default());
    let owners = store.owners().unwrap();
    assert_eq!(owners.keys().collect::<Vec<_>>(), ["a", "ab"]);
    assert_eq!(
        owners["a"],
        [
            (Kind::Batch, "b_a2".to_string()),
            (Kind::Batch, "b_a1".to_string()),
            (Kind::File, "f_a1".to_string())
        ]
    );
}

#[test]
fn threads_share_one_store() {
    let tmp = TempDir::new();
    let store = Arc::new(Store::new(tmp.state()));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..8u64 {
                    let id = format!("b{t}_{i}");
                    store.put(&rec(&id, Kind::Batch, "o", t * 100 + i)).unwrap();
                    assert!(store.get(&id).unwrap().is_some());
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let p = store
        .page(Kind::Batch, Some("o"), Cursor::First, 100)
        .unwrap();
    assert_eq!((p.records.len(), p.has_more), (32, false));
    assert_eq!(p.records[0].id, "b3_7");
}

#[test]
fn records_survive_a_restart() {
    let tmp = TempDir::new();
    let store = Store::new(tmp.state());
    store.put(&rec("b1", Kind::Batch, "o", 1)).unwrap();
    store.put(&rec("f1", Kind::File, "o", 2)).unwrap();
    store.remove("f1").unwrap();
    drop(store);
    let store = Store::new(tmp.state());
    assert_eq!(
        store.get("b1").unwrap(),
        Some(rec("b1", Kind::Batch, "o", 1))
    );
    assert_eq!(store.get("f1").unwrap(), None);
    let p = store
        .page(Kind::Batch, Some("o"), Cursor::First, 5)
        .unwrap();
    assert_eq!(ids(&p), ["b1"]);
}

#[test]
fn reads_before_the_first_write_create_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new();
    let store = Store::new(tmp.state());
    assert_eq!(store.get("b1").unwrap(), None);
    assert_eq!(store.remove("b1").unwrap(), None);
    assert_eq!(
        store.page(Kind::Batch, None, Cursor::First, 5).unwrap(),
        Page::default()
    );
    let p = store
        .page(Kind::File, Some("o"), Cursor::After("x"), 5)
        .unwrap();
    assert_eq!(p, Page::default());
    assert!(store.owners().unwrap().is_empty());
    assert!(!tmp.state().exists());
    store.put(&rec("b1", Kind::Batch, "o", 1)).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&tmp.state()), 0o700);
    assert_eq!(mode(store.path()), 0o600);
}

#[test]
fn a_second_store_on_the_same_dir_gets_a_clear_error() {
    let tmp = TempDir::new();
    let first = Store::new(tmp.state());
    first.put(&rec("b1", Kind::Batch, "o", 1)).unwrap();
    let second = Store::new(tmp.state());
    let err = second.get("b1").unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Locked);
    let msg = err.to_string();
    assert!(
        msg.contains("objects.redb") && msg.contains("another process"),
        "{msg}"
    );
    let err = second.put(&rec("b2", Kind::Batch, "o", 2)).unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Locked);
    // The first is unharmed, and the second gets in once the first lets go.
    assert_eq!(
        ids(&first.page(Kind::Batch, None, Cursor::First, 5).unwrap()),
        ["b1"]
    );
    drop(first);
    assert!(second.get("b1").unwrap().is_some());
    assert_eq!(second.get("b2").unwrap(), None);
}

#[test]
fn an_unusable_dir_gets_a_clear_error() {
    let tmp = TempDir::new();
    // A regular file where a directory should be: no permission bits to bypass, even as root.
    let blocker = tmp.0.join("blocker");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let store = Store::new(blocker.join("state"));
    let err = store.put(&rec("b1", Kind::Batch, "o", 1)).unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Io);
    let msg = err.to_string();
    assert!(
        msg.contains("cannot create the directory") && msg.contains("blocker"),
        "{msg}"
    );
    // A read cannot tell either: it says so rather than answer empty.
    let err = store.get("b1").unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Io);
    assert!(err.to_string().contains("cannot open the file"), "{err}");
}

#[test]
fn a_corrupt_file_gets_a_clear_error_and_is_left_alone() {
    let tmp = TempDir::new();
    std::fs::create_dir_all(tmp.state()).unwrap();
    let path = tmp.state().join("objects.redb");
    let junk = b"this is not a redb file, and never was".repeat(100);
    std::fs::write(&path, &junk).unwrap();
    let store = Store::new(tmp.state());
    let err = store.get("b1").unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Corrupt);
    assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
    assert!(err.to_string().contains("corrupt"), "{err}");
    let err = store.put(&rec("b1", Kind::Batch, "o", 1)).unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Corrupt);
    assert_eq!(std::fs::read(&path).unwrap(), junk);
}

#[test]
fn a_damaged_file_errs_without_panicking() {
    let tmp = TempDir::new();
    let store = Store::new(tmp.state());
    for i in 0..20 {
        store
            .put(&rec(&format!("b{i}"), Kind::Batch, "o", i))
            .unwrap();
    }
    drop(store);
    // Keep redb's header, scribble over everything after it.
    let path = tmp.state().join("objects.redb");
    let mut bytes = std::fs::read(&path).unwrap();
    for b in bytes.iter_mut().skip(64) {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let store = Store::new(tmp.state());
    let result = std::panic::catch_unwind(|| store.page(Kind::Batch, None, Cursor::First, 50));
    let result = result.expect("no panic");
    assert!(result.is_err(), "{result:?}");
}

#[test]
fn an_unreadable_record_gets_a_clear_error() {
    let tmp = TempDir::new();
    let store = Store::new(tmp.state());
    store.put(&rec("b1", Kind::Batch, "o", 1)).unwrap();
    store.put(&rec("b2", Kind::Batch, "o", 2)).unwrap();
    drop(store);
    let db = redb::Database::open(tmp.state().join("objects.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(RECORDS)
        .unwrap()
        .insert("b1", b"{not json".as_slice())
        .unwrap();
    txn.commit().unwrap();
    drop(db);
    let store = Store::new(tmp.state());
    let err = store.get("b1").unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Corrupt);
    assert!(err.to_string().contains("record for \"b1\""), "{err}");
    let err = store.page(Kind::Batch, None, Cursor::First, 5).unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Corrupt);
    assert_eq!(
        store.remove("b1").unwrap_err().kind(),
        StoreErrorKind::Corrupt
    );
    // The readable record is still there, alone.
    let p = store.page(Kind::Batch, None, Cursor::First, 1).unwrap();
    assert_eq!((ids(&p), p.has_more), (vec!["b2"], true));
}

/// One step of the property test.
#[derive(Clone, Debug)]
enum Op {
    Put {
        id: u8,
        kind: bool,
        owner: u8,
        created: u8,
    },
    Remove {
        id: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..12, any::<bool>(), 0u8..3, 0u8..4)
            .prop_map(|(id, kind, owner, created)| Op::Put { id, kind, owner, created }),
        1 => (0u8..12).prop_map(|id| Op::Remove { id }),
    ]
}

/// The page a plain sorted Vec gives for the same query.
fn model_page(
    model: &[Record],
    kind: Kind,
    owner: Option<&str>,
    cursor: Cursor<'_>,
    limit: usize,
) -> (Vec<String>, bool) {
    let limit = limit.max(1);
    let mut sel: Vec<&Record> = model
        .iter()
        .filter(|r| r.kind == kind && owner.map_or(true, |o| o == r.owner))
        .collect();
    sel.sort_by(|a, b| (b.created_ms, &b.id).cmp(&(a.created_ms, &a.id)));
    let ids: Vec<String> = sel.iter().map(|r| r.id.clone()).collect();
    let pos = |x: &str| ids.iter().position(|id| id == x);
    match cursor {
        Cursor::First => (ids.iter().take(limit).cloned().collect(), ids.len() > limit),
        Cursor::After(x) => match pos(x) {
            None => (vec![], false),
            Some(i) => {
                let rest = &ids[i + 1..];
                (
                    rest.iter().take(limit).cloned().collect(),
                    rest.len() > limit,
                )
            }
        },
        Cursor::Before(x) => match pos(x) {
            None => (vec![], false),
            Some(i) => (ids[i.saturating_sub(limit)..i].to_vec(), i > limit),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn pages_match_a_sorted_vec(
        ops in proptest::collection::vec(op(), 0..24),
        queries in proptest::collection::vec((any::<bool>(), 0u8..4, 0u8..3, 0u8..13, 0usize..6), 1..12),
    ) {
        let tmp = TempDir::new();
        let store = Store::new(tmp.state());
        let owners = ["", "a", "ab"];
        let mut model: Vec<Record> = Vec::new();
        for op in ops {
            match op {
                Op::Put { id, kind, owner, created } => {
                    let kind = if kind { Kind::Batch } else { Kind::File };
                    let r = rec(&format!("id{id}"), kind, owners[owner as usize], created as u64);
                    store.put(&r).unwrap();
                    model.retain(|m| m.id != r.id);
                    model.push(r);
                }
                Op::Remove { id } => {
                    let id = format!("id{id}");
                    let got = store.remove(&id).unwrap();
                    let pos = model.iter().position(|m| m.id == id);
                    prop_assert_eq!(got, pos.map(|i| model.remove(i)));
                }
            }
        }
        for (kind, owner, cursor, at, limit) in queries {
            let kind = if kind { Kind::Batch } else { Kind::File };
            let owner = owners.get(owner as usize).copied();
            let at = format!("id{at}");
            let cursor = match cursor {
                0 => Cursor::First,
                1 => Cursor::After(&at),
                _ => Cursor::Before(&at),
            };
            let page = store.page(kind, owner, cursor, limit).unwrap();
            let want = model_page(&model, kind, owner, cursor, limit);
            let got: Vec<String> = page.records.iter().map(|r| r.id.clone()).collect();
            prop_assert_eq!((got, page.has_more), want, "{:?} {:?} {:?} {}", kind, owner, cursor, limit);
            for r in &page.records {
                prop_assert!(model.contains(r));
            }
        }
    }
}
