use super::*;

const CT: &[u8] = b"multipart/form-data; boundary=XyZ";

fn body(parts: &[&str]) -> Vec<u8> {
    let mut b = Vec::new();
    for p in parts {
        b.extend_from_slice(b"--XyZ\r\n");
        b.extend_from_slice(p.as_bytes());
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(b"--XyZ--\r\n");
    b
}

#[test]
fn boundaries_are_read_quoted_or_not() {
    assert_eq!(boundary(CT).unwrap(), "XyZ");
    assert_eq!(
        boundary(b"Multipart/Form-Data;charset=utf-8; boundary=\"a b;c\"").unwrap(),
        "a b;c"
    );
    for bad in [
        &b"application/json"[..],
        b"multipart/form-data",
        b"multipart/form-data; boundary=",
        b"multipart/form-data; boundary=\"\"",
    ] {
        assert_eq!(boundary(bad).unwrap_err().status, 400, "{bad:?}");
    }
    let long = format!("multipart/form-data; boundary={}", "b".repeat(71));
    assert!(boundary(long.as_bytes()).is_err());
}

#[test]
fn the_file_part_is_found_among_others() {
    let b = body(&[
        "Content-Disposition: form-data; name=\"purpose\"\r\n\r\nuser_data",
        "Content-Disposition: form-data; name=\"file\"; filename=\"a;b \\\"q\\\".txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\nworld",
        "Content-Disposition: form-data; name=\"after\"\r\n\r\nx",
    ]);
    let p = find(Some(CT), &b, "file").unwrap();
    assert_eq!(p.filename.as_deref(), Some("a;b \"q\".txt"));
    assert_eq!(p.content_type.as_deref(), Some("text/plain"));
    assert_eq!(&b[p.data], b"hello\r\nworld");
    assert_eq!(parts(&b, "XyZ").unwrap().len(), 3);
}

#[test]
fn a_preamble_and_an_epilogue_are_skipped() {
    let mut b = b"this is a preamble\r\n".to_vec();
    b.extend(body(&[
        "content-disposition: form-data; name=file; filename=x.bin\r\n\r\n\x00\x01--XyZ\x02",
    ]));
    b.extend_from_slice(b"epilogue --XyZ\r\n");
    let p = find(Some(CT), &b, "file").unwrap();
    assert_eq!(p.filename.as_deref(), Some("x.bin"));
    assert_eq!(p.content_type, None);
    // A boundary that is not at a line's start is data.
    assert_eq!(&b[p.data], b"\x00\x01--XyZ\x02");
}

#[test]
fn an_empty_file_is_a_file() {
    let b = body(&["Content-Disposition: form-data; name=\"file\"; filename=\"e\"\r\n\r\n"]);
    let p = find(Some(CT), &b, "file").unwrap();
    assert!(p.data.is_empty());
}

#[test]
fn extended_file_names_are_decoded() {
    let b = body(&[
        "Content-Disposition: form-data; name=\"file\"; filename=\"plain\"; filename*=utf-8''na%C3%AFve.txt\r\n\r\nx",
    ]);
    let p = find(Some(CT), &b, "file").unwrap();
    assert_eq!(p.filename.as_deref(), Some("naïve.txt"));
}

#[test]
fn broken_bodies_are_refused() {
    let ok_part = "Content-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\nx";
    let missing = body(&["Content-Disposition: form-data; name=\"other\"\r\n\r\nx"]);
    let unterminated = format!("--XyZ\r\n{ok_part}");
    let no_disposition = body(&["Content-Type: text/plain\r\n\r\nx"]);
    let no_head_end = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"".to_string();
    let bad_line = format!("--XyZjunk\r\n{ok_part}\r\n--XyZ--");
    for (what, b) in [
        ("missing", missing),
        ("unterminated", unterminated.into_bytes()),
        ("no disposition", no_disposition),
        ("no head end", no_head_end.into_bytes()),
        ("bad line", bad_line.into_bytes()),
        ("no boundary", b"just bytes".to_vec()),
    ] {
        let e = find(Some(CT), &b, "file").unwrap_err();
        assert_eq!(e.status, 400, "{what}");
    }
    let e = find(None, &body(&[ok_part]), "file").unwrap_err();
    assert!(e.message.contains("multipart/form-data"), "{}", e.message);
}

#[test]
fn parts_are_bounded() {
    let many: Vec<&str> = std::iter::repeat("Content-Disposition: form-data; name=\"x\"\r\n\r\n")
        .take(MAX_PARTS + 1)
        .collect();
    assert!(parts(&body(&many), "XyZ").is_err());
    let huge_head = format!(
        "X-Pad: {}\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx",
        "p".repeat(MAX_PART_HEAD)
    );
    assert!(parts(&body(&[&huge_head]), "XyZ").is_err());
}

#[test]
fn parameters_split_on_unquoted_semicolons() {
    assert_eq!(
        parameters(" name=\"a;b\"; filename=c.txt ;x"),
        vec![
            ("name".to_string(), "a;b".to_string()),
            ("filename".to_string(), "c.txt".to_string()),
            ("x".to_string(), String::new()),
        ]
    );
    assert!(parameters("").is_empty());
}
