use super::*;

fn ids(n: usize) -> Vec<String> {
    // Newest first: o9, o8, ... as a list endpoint sees them.
    (0..n).rev().map(|i| format!("o{i}")).collect()
}

fn q(limit: usize, after: Option<&str>, before: Option<&str>) -> PageQuery {
    PageQuery {
        limit,
        after_id: after.map(str::to_string),
        before_id: before.map(str::to_string),
    }
}

fn taken(ids: &[String], q: &PageQuery) -> (Vec<String>, bool) {
    let p = page(ids, q).unwrap();
    (ids[p.range].to_vec(), p.has_more)
}

#[test]
fn the_first_page_is_the_newest() {
    let all = ids(5);
    assert_eq!(
        taken(&all, &q(2, None, None)),
        (vec!["o4".into(), "o3".into()], true)
    );
    assert!(!taken(&all, &q(5, None, None)).1);
    assert_eq!(taken(&all, &q(20, None, None)).0.len(), 5);
    assert_eq!(taken(&ids(0), &q(20, None, None)), (vec![], false));
}

#[test]
fn after_id_walks_to_older_objects() {
    let all = ids(5);
    assert_eq!(
        taken(&all, &q(2, Some("o3"), None)),
        (vec!["o2".into(), "o1".into()], true)
    );
    assert_eq!(
        taken(&all, &q(2, Some("o1"), None)),
        (vec!["o0".into()], false)
    );
    assert_eq!(taken(&all, &q(2, Some("o0"), None)), (vec![], false));
}

#[test]
fn before_id_takes_the_newer_objects_right_before_it() {
    let all = ids(6);
    // o5 o4 o3 o2 o1 o0: the two before o1 are o3 and o2, and o5, o4 are newer still.
    assert_eq!(
        taken(&all, &q(2, None, Some("o1"))),
        (vec!["o3".into(), "o2".into()], true)
    );
    assert_eq!(
        taken(&all, &q(9, None, Some("o1"))),
        (
            vec!["o5".into(), "o4".into(), "o3".into(), "o2".into()],
            false
        )
    );
    assert_eq!(taken(&all, &q(2, None, Some("o5"))), (vec![], false));
}

#[test]
fn both_cursors_bound_the_page() {
    let all = ids(6);
    assert_eq!(
        taken(&all, &q(9, Some("o5"), Some("o1"))),
        (vec!["o4".into(), "o3".into(), "o2".into()], false)
    );
    assert_eq!(
        taken(&all, &q(1, Some("o5"), Some("o1"))),
        (vec!["o2".into()], true)
    );
    assert_eq!(taken(&all, &q(9, Some("o1"), Some("o4"))), (vec![], false));
}

#[test]
fn an_unknown_cursor_is_refused() {
    let e = page(&ids(3), &q(2, Some("nope"), None)).unwrap_err();
    assert_eq!(e.status, 400);
    assert!(e.message.contains("after_id"), "{}", e.message);
    let e = page(&ids(3), &q(2, None, Some("nope"))).unwrap_err();
    assert!(e.message.contains("before_id"), "{}", e.message);
}

#[test]
fn queries_are_read_and_checked() {
    assert_eq!(PageQuery::parse("").unwrap(), q(20, None, None));
    assert_eq!(
        PageQuery::parse("beta=true&limit=7&after_id=a%5Fb&before_id=c").unwrap(),
        q(7, Some("a_b"), Some("c"))
    );
    assert_eq!(PageQuery::parse("limit=1000").unwrap().limit, 1000);
    for bad in ["limit=0", "limit=1001", "limit=x", "limit=", "limit=-1"] {
        let e = PageQuery::parse(bad).unwrap_err();
        assert_eq!(e.status, 400, "{bad}");
        assert!(e.message.contains("limit"), "{bad}");
    }
}

#[test]
fn pages_render_with_their_first_and_last_ids() {
    let v: serde_json::Value = serde_json::from_str(&render(
        vec![
            serde_json::json!({"id": "a"}),
            serde_json::json!({"id": "b"}),
        ],
        &["a", "b"],
        &PageQuery::default(),
        true,
    ))
    .unwrap();
    assert_eq!(v["first_id"], "a");
    assert_eq!(v["last_id"], "b");
    assert_eq!(v["has_more"], true);
    assert_eq!(v["next_page"], "page_b");
    let q = PageQuery::parse("page=page_b&limit=3").unwrap();
    assert_eq!((q.after_id.as_deref(), q.limit), (Some("b"), 3));
    assert_eq!(PageQuery::parse("page=b").unwrap_err().status, 400);
    let v: serde_json::Value =
        serde_json::from_str(&render(vec![], &[], &PageQuery::default(), false)).unwrap();
    assert!(v["next_page"].is_null());
    assert!(v["first_id"].is_null() && v["last_id"].is_null());
    assert_eq!(v["data"], serde_json::json!([]));
}
