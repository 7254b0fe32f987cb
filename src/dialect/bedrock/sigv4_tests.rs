//! SigV4 step by step, then whole against AWS's published examples and botocore's signatures
//! (`sigv4_vectors.json`, made by `tests/oracles/sigv4_vectors.py`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::*;

const HOST: &str = "bedrock-runtime.us-east-1.amazonaws.com";

fn request<'a>(path: &'a str, query: &'a str, headers: &'a [(&'a str, &'a str)]) -> Request<'a> {
    Request {
        method: "POST",
        host: HOST,
        path,
        query,
        headers,
        body: b"{}",
    }
}

fn time(unix: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix)
}

#[test]
fn canonical_uri_encodes_each_segment_again() {
    // A model id is encoded once on the wire; its `%` is encoded again in the signature.
    assert_eq!(
        canonical_uri(
            "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream"
        ),
        "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%253A0/invoke-with-response-stream"
    );
    // An inference-profile ARN: its `:` and its `/` are `%3A` and `%2F` on the wire.
    let arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0";
    let sent = percent_encode(arn.as_bytes(), STRICT).to_string();
    assert_eq!(
        sent,
        "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-sonnet-4-5-20250929-v1%3A0"
    );
    assert_eq!(
        canonical_uri(&format!("/model/{sent}/invoke")),
        "/model/arn%253Aaws%253Abedrock%253Aus-east-1%253A123456789012%253Ainference-profile%252Fus.anthropic.claude-sonnet-4-5-20250929-v1%253A0/invoke"
    );
    // What the wire leaves raw is encoded once; the unreserved characters stay.
    assert_eq!(
        canonical_uri("/model/anthropic.claude-v2:1/invoke"),
        "/model/anthropic.claude-v2%3A1/invoke"
    );
    assert_eq!(canonical_uri("/a-b_c.d~e/F9"), "/a-b_c.d~e/F9");
    assert_eq!(canonical_uri("/é x+*@"), "/%C3%A9%20x%2B%2A%40");
    // Lower-case hex on the wire is not normalised: AWS encodes what it received.
    assert_eq!(canonical_uri("/v1%3a0"), "/v1%253a0");
}

#[test]
fn canonical_uri_removes_dot_and_empty_segments() {
    assert_eq!(canonical_uri(""), "/");
    assert_eq!(canonical_uri("/"), "/");
    assert_eq!(canonical_uri("//"), "/");
    assert_eq!(canonical_uri("/model//./a/../invoke"), "/model/invoke");
    assert_eq!(canonical_uri("/../../x"), "/x");
    assert_eq!(canonical_uri("/foundation-models/"), "/foundation-models/");
    assert_eq!(canonical_uri("/a/b/.."), "/a");
    // An encoded dot is a name, not a dot segment.
    assert_eq!(canonical_uri("/a/%2E%2E/b"), "/a/%252E%252E/b");
}

#[test]
fn canonical_query_sorts_by_name_then_value_and_encodes_strictly() {
    assert_eq!(canonical_query(""), "");
    assert_eq!(
        canonical_query("b=2&a=1&a=0&B=3"),
        "B=3&a=0&a=1&b=2",
        "sorted by bytes: upper case first"
    );
    // A name without `=` has the empty value; empty pairs are nothing.
    assert_eq!(canonical_query("flag&&x=1&"), "flag=&x=1");
    // Decoded, then encoded strictly: `+` is a space, `/`, `:`, `*` and `=` in a value are
    // encoded, lower-case hex becomes upper case, unreserved characters are not encoded.
    assert_eq!(
        canonical_query("note=a+b/c:d%2Be%7Ef*g%3dh&%41=x=y"),
        "A=x%3Dy&note=a%20b%2Fc%3Ad%2Be~f%2Ag%3Dh"
    );
    // A stray `%` is kept as a character.
    assert_eq!(canonical_query("p=100%&q=%zz"), "p=100%25&q=%25zz");
    // Sorted after encoding: `%20` sorts before letters whatever the raw characters were.
    assert_eq!(canonical_query("k=b&k=a+z&k=a"), "k=a&k=a%20z&k=b");
}

#[test]
fn canonical_headers_lowercase_trim_sort_and_join() {
    let headers = [
        ("Content-Type", "  application/json ;   charset=utf-8  "),
        ("Accept", "\tapplication/json"),
        ("X-Note", "a  \t b   c"),
        ("x-note", " second  value "),
        ("X-Empty", "   "),
    ];
    let (lines, signed) = canonical_headers(
        &request("/", "", &headers),
        "20250929T123456Z",
        Some(" tok "),
    );
    assert_eq!(
        lines,
        "accept:application/json\n\
         content-type:application/json ; charset=utf-8\n\
         host:bedrock-runtime.us-east-1.amazonaws.com\n\
         x-amz-date:20250929T123456Z\n\
         x-amz-security-token:tok\n\
         x-empty:\n\
         x-note:a b c,second value\n"
    );
    assert_eq!(
        signed,
        "accept;content-type;host;x-amz-date;x-amz-security-token;x-empty;x-note"
    );
}

#[test]
fn canonical_headers_leave_out_the_signers_own_and_the_unsigned() {
    let headers = [
        ("Host", "evil.example"),
        ("X-Amz-Date", "19990101T000000Z"),
        ("x-amz-security-token", "stale"),
        ("Authorization", "Bearer x"),
        ("Connection", "keep-alive"),
        ("Transfer-Encoding", "chunked"),
        ("User-Agent", "ringgate"),
        ("content-type", "application/json"),
    ];
    let (lines, signed) = canonical_headers(&request("/", "", &headers), "20250929T123456Z", None);
    assert_eq!(signed, "content-type;host;x-amz-date");
    assert_eq!(
        lines,
        "content-type:application/json\nhost:bedrock-runtime.us-east-1.amazonaws.com\nx-amz-date:20250929T123456Z\n"
    );
}

#[test]
fn canonical_request_hashes_the_body_unless_the_hash_is_sent() {
    let empty = Request {
        body: b"",
        ..request("/", "", &[])
    };
    let (canonical, _) = canonical_request(&empty, "20250929T123456Z", None);
    assert!(
        canonical.ends_with("\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(
        canonical,
        "POST\n/\n\nhost:bedrock-runtime.us-east-1.amazonaws.com\nx-amz-date:20250929T123456Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    // The header stands for the body, as AWS reads it; it is signed too.
    let sent = [("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD")];
    let (canonical, signed) = canonical_request(&request("/", "", &sent), "20250929T123456Z", None);
    assert!(canonical.ends_with(
        "\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:20250929T123456Z\n\n\
         host;x-amz-content-sha256;x-amz-date\nUNSIGNED-PAYLOAD"
    ));
    assert_eq!(signed, "host;x-amz-content-sha256;x-amz-date");
    assert_eq!(
        payload_hash(b"{}"),
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
}

#[test]
fn amz_date_formats_known_instants() {
    assert_eq!(amz_date(0), "19700101T000000Z");
    assert_eq!(amz_date(951_782_400), "20000229T000000Z");
    assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
    assert_eq!(amz_date(1_709_251_199), "20240229T235959Z");
    assert_eq!(amz_date(1_709_251_200), "20240301T000000Z");
    assert_eq!(amz_date(1_767_225_599), "20251231T235959Z");
    assert_eq!(amz_date(4_107_542_400), "21000301T000000Z");
    assert_eq!(amz_date(253_402_300_799), "99991231T235959Z");
}

#[test]
fn amz_date_agrees_with_httpdate() {
    // httpdate writes the IMF date (`Tue, 29 Feb 2000 00:00:00 GMT`) with its own calendar code:
    // the same instant in both formats, over 1970–2200 at a stride that visits every day of
    // the month, leap days and the hours.
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut unix = 0u64;
    while unix < 7_258_118_400 {
        let imf = httpdate::fmt_http_date(time(unix));
        let f: Vec<&str> = imf.split([' ', ':']).collect();
        let month = MONTHS.iter().position(|m| *m == f[2]).unwrap() + 1;
        let want = format!("{}{month:02}{}T{}{}{}Z", f[3], f[1], f[4], f[5], f[6]);
        assert_eq!(amz_date(unix), want, "{imf}");
        unix += 86_400 * 7 + 3_607;
    }
}

#[test]
fn signing_key_matches_the_aws_documentation_example() {
    // AWS's "derive a signing key" example (IAM, 2012-02-15).
    let key = signing_key(
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "20120215",
        "us-east-1",
        "iam",
    );
    assert_eq!(
        hex(&key),
        "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
    );
}

#[test]
fn signs_the_aws_test_suite_get_vanilla() {
    // `get-vanilla` of AWS's SigV4 test suite: GET / to example.amazonaws.com, nothing else.
    let req = Request {
        method: "GET",
        host: "example.amazonaws.com",
        path: "/",
        query: "",
        headers: &[],
        body: b"",
    };
    let creds = Credentials {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token: None,
    };
    let scope = Scope {
        region: "us-east-1",
        service: "service",
    };
    let signed = sign(&req, &creds, &scope, time(1_440_938_160));
    assert_eq!(signed.amz_date, "20150830T123600Z");
    assert_eq!(signed.security_token, None);
    assert_eq!(
        signed.authorization,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=host;x-amz-date, \
         Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
    // `get-vanilla-query-order-key-case`: the same, with a query to sort.
    let req = Request {
        query: "Param2=value2&Param1=value1",
        ..req
    };
    assert!(sign(&req, &creds, &scope, time(1_440_938_160))
        .authorization
        .ends_with("Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"));
}

#[test]
fn a_session_token_is_signed_and_returned_and_an_empty_one_is_none() {
    let scope = Scope {
        region: "us-east-1",
        service: BEDROCK,
    };
    let mut creds = Credentials {
        access_key_id: "AKID",
        secret_access_key: "secret",
        session_token: Some("token/+="),
    };
    let req = request("/model/x/invoke", "", &[]);
    let signed = sign(&req, &creds, &scope, time(1_759_149_296));
    assert_eq!(signed.security_token.as_deref(), Some("token/+="));
    assert!(signed
        .authorization
        .contains("SignedHeaders=host;x-amz-date;x-amz-security-token, "));
    assert_eq!(
        signed.headers().collect::<Vec<_>>(),
        [
            ("x-amz-date", "20250929T123456Z"),
            ("x-amz-security-token", "token/+="),
            ("authorization", signed.authorization.as_str()),
        ]
    );
    creds.session_token = Some("");
    let signed = sign(&req, &creds, &scope, time(1_759_149_296));
    assert_eq!(signed.security_token, None);
    assert!(signed
        .authorization
        .contains("SignedHeaders=host;x-amz-date, "));
    assert_eq!(
        signed.headers().map(|(name, _)| name).collect::<Vec<_>>(),
        ["x-amz-date", "authorization"]
    );
}

#[test]
fn debug_output_shows_no_secret() {
    let creds = Credentials {
        access_key_id: "AKIDSHOWN",
        secret_access_key: "SECRETKEY",
        session_token: Some("SESSIONTOKEN"),
    };
    let shown = format!("{creds:?}");
    assert!(shown.contains("AKIDSHOWN"), "{shown}");
    assert!(
        !shown.contains("SECRETKEY") && !shown.contains("SESSIONTOKEN"),
        "{shown}"
    );
    let scope = Scope {
        region: "us-east-1",
        service: BEDROCK,
    };
    let signed = sign(&request("/", "", &[]), &creds, &scope, time(0));
    let signature = signed.authorization.rsplit('=').next().unwrap();
    let shown = format!("{signed:?}");
    assert!(
        shown.contains("SignedHeaders=host;x-amz-date;x-amz-security-token"),
        "{shown}"
    );
    assert!(
        !shown.contains("SESSIONTOKEN") && !shown.contains(signature),
        "{shown}"
    );
    assert!(!format!("{:?}", request("/", "", &[])).contains("[123, 125]"));
}

/// Each case of `sigv4_vectors.json`: the canonical request, the string to sign and the three
/// headers equal botocore's byte for byte.
#[test]
fn botocore_vectors() {
    let cases: Vec<Value> = serde_json::from_str(include_str!("sigv4_vectors.json")).unwrap();
    assert!(cases.len() >= 10);
    let text = |case: &Value, key: &str| -> String {
        case[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} in {}", case["name"]))
            .to_string()
    };
    for case in &cases {
        let name = text(case, "name");
        let headers: Vec<(String, String)> = case["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
            .collect();
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let (method, host, path, query, body) = (
            text(case, "method"),
            text(case, "host"),
            text(case, "path"),
            text(case, "query"),
            text(case, "body"),
        );
        let req = Request {
            method: &method,
            host: &host,
            path: &path,
            query: &query,
            headers: &headers,
            body: body.as_bytes(),
        };
        let token = case["session_token"].as_str();
        let creds = Credentials {
            access_key_id: &text(case, "access_key_id"),
            secret_access_key: &text(case, "secret_access_key"),
            session_token: token,
        };
        let (region, service) = (text(case, "region"), text(case, "service"));
        let scope = Scope {
            region: &region,
            service: &service,
        };
        let at = time(case["unix_time"].as_u64().unwrap());

        let amz_date = amz_date(case["unix_time"].as_u64().unwrap());
        let (canonical, _) = canonical_request(&req, &amz_date, token);
        assert_eq!(canonical, text(case, "canonical_request"), "{name}");
        let credential_scope = format!("{}/{region}/{service}/aws4_request", &amz_date[..8]);
        assert_eq!(
            string_to_sign(&amz_date, &credential_scope, &canonical),
            text(case, "string_to_sign"),
            "{name}"
        );

        let signed = sign(&req, &creds, &scope, at);
        assert_eq!(signed.amz_date, text(case, "x_amz_date"), "{name}");
        assert_eq!(
            signed.security_token.as_deref(),
            case["x_amz_security_token"].as_str(),
            "{name}"
        );
        assert_eq!(signed.authorization, text(case, "authorization"), "{name}");
    }
}
