//! What the cloud credential tests share: answers in the words of AWS STS, IMDSv2 and Google's
//! token and metadata servers (served by the scripted [`Upstream`] over real sockets), gateways
//! started with an environment of their own (web identity reads `AWS_*` variables), the test
//! service account written with its `token_uri` pointed at a fake, SigV4 checked against what an
//! upstream received, and bounded polling.
//!
//! Nothing here knows the gateway's internals: a fake answers what the real service would, and a
//! check reads what arrived on the socket.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ringgate::dialect::bedrock::sigv4;
use ringgate::{Config, Gateway, GatewayHandle};

use super::{json_response, request, Action, Received, Upstream};

/// An Anthropic message, as Bedrock's `invoke` and Vertex's `rawPredict` answer one.
pub const MESSAGE: &str = r#"{"id":"msg_cloud","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"hello from the cloud"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":4}}"#;

/// The test key of `tests/data` (made for the tests, of no account anywhere).
pub const SERVICE_ACCOUNT: &str = include_str!("../data/test-service-account.json");

/// A client's request body for `model`.
pub fn body(model: &str) -> String {
    format!(
        r#"{{"model":"{model}","max_tokens":16,"messages":[{{"role":"user","content":"hi"}}]}}"#
    )
}

pub fn send(raw: Vec<u8>) -> Action {
    Action::Send(vec![raw], Duration::ZERO)
}

/// A gateway from config text whose `*_env` keys and `AWS_*` variables resolve from `env` (the
/// test's own environment is never read, nor changed).
pub fn gateway_with_env(toml: &str, env: &[(&str, &str)]) -> GatewayHandle {
    let env: Vec<(String, String)> = (env.iter())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |name: &str| {
        (env.iter())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let config = Config::parse(toml, "cloud-test.toml", &lookup).expect("valid test config");
    Gateway::start(config).expect("gateway starts")
}

/// Polls `done` every 10 ms until it holds; panics naming `what` after `limit`.
#[track_caller]
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A directory of its own under the system's temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "ringgate-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `contents` to `name` in the directory; its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// The test service account's key file, its `token_uri` pointed at `token_uri`.
    pub fn service_account(&self, token_uri: &str) -> PathBuf {
        let mut key: serde_json::Value = serde_json::from_str(SERVICE_ACCOUNT).unwrap();
        key["token_uri"] = token_uri.into();
        self.write("service-account.json", &key.to_string())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The fields of an `application/x-www-form-urlencoded` body, decoded.
pub fn form(body: &[u8]) -> BTreeMap<String, String> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        percent_encoding::percent_decode_str(&s)
            .decode_utf8()
            .expect("UTF-8 form field")
            .into_owned()
    };
    let text = std::str::from_utf8(body).expect("a form is text");
    (text.split('&'))
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// `t` as STS and IMDS write times (`2026-12-07T12:00:00Z`).
pub fn aws_time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The first whole second at least `ahead` from now: what an AWS `Expiration` can say.
pub fn whole_seconds_ahead(ahead: Duration) -> SystemTime {
    let t = SystemTime::now() + ahead;
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() + 1;
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// Temporary AWS keys as STS and IMDS hand them out.
#[derive(Clone, Debug)]
pub struct Keys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expires: SystemTime,
}

impl Keys {
    /// Keys named by `tag`, valid for an hour.
    pub fn hour(tag: &str) -> Keys {
        Keys {
            access_key_id: format!("ASIA{}", tag.to_uppercase()),
            secret_access_key: format!("secret-access-key-{tag}/K7MDENG+bPxRfiCY"),
            session_token: format!("session-token-{tag}-FwoGZXIvYXdzEJr//////////wEaDA=="),
            expires: SystemTime::now() + Duration::from_secs(3600),
        }
    }

    /// STS's answer to `AssumeRoleWithWebIdentity` with these keys (XML, as STS writes it,
    /// `&` escaped).
    pub fn sts_answer(&self) -> Action {
        let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;");
        let xml = format!(
            "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n\
             <AssumeRoleWithWebIdentityResult>\n<SubjectFromWebIdentityToken>system:serviceaccount:ns:sa</SubjectFromWebIdentityToken>\n\
             <Credentials>\n<AccessKeyId>{}</AccessKeyId>\n<SecretAccessKey>{}</SecretAccessKey>\n\
             <SessionToken>{}</SessionToken>\n<Expiration>{}</Expiration>\n</Credentials>\n\
             </AssumeRoleWithWebIdentityResult>\n<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>\n\
             </AssumeRoleWithWebIdentityResponse>\n",
            esc(&self.access_key_id),
            esc(&self.secret_access_key),
            esc(&self.session_token),
            aws_time(self.expires)
        );
        send(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{xml}",
                xml.len()
            )
            .into_bytes(),
        )
    }

    /// IMDS's JSON for a role's credentials.
    pub fn imds_answer(&self) -> Action {
        let json = serde_json::json!({
            "Code": "Success",
            "LastUpdated": aws_time(SystemTime::now()),
            "Type": "AWS-HMAC",
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "Token": self.session_token,
            "Expiration": aws_time(self.expires),
        });
        send(json_response(200, &json.to_string(), ""))
    }
}

/// A text/plain answer.
pub fn text_answer(text: &str) -> Action {
    send(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        )
        .into_bytes(),
    )
}

/// An instance metadata service (IMDSv2) whose instance has `role` with `keys`: a `PUT
/// /latest/api/token` with a TTL header gets the session token `token`, and, as IMDSv2 does, a
/// read without that token is refused (401), so a client that skipped the PUT or the header
/// gets no keys at all.
pub fn fake_imds(keys: &Keys, token: &'static str, role: &'static str) -> Upstream {
    let keys = keys.clone();
    Upstream::start(move |r| {
        let (method, path) = target(r);
        if method == "PUT" {
            let ttl = r.headers("x-aws-ec2-metadata-token-ttl-seconds");
            return match path.as_str() {
                "/latest/api/token" if ttl.len() == 1 => text_answer(token),
                _ => send(json_response(400, "{}", "")),
            };
        }
        if r.headers("x-aws-ec2-metadata-token") != [token] {
            return send(json_response(401, "{}", ""));
        }
        let roles = "/latest/meta-data/iam/security-credentials/";
        match path.strip_prefix(roles) {
            Some("") => text_answer(&format!("{role}\n")),
            Some(r) if r == role => keys.imds_answer(),
            _ => send(json_response(404, "{}", "")),
        }
    })
}

/// An OAuth token answer, as Google's token endpoint and metadata server give one.
pub fn token_answer(token: &str, expires_in: u64) -> Action {
    let json = serde_json::json!({"access_token": token, "expires_in": expires_in, "token_type": "Bearer"});
    send(json_response(200, &json.to_string(), ""))
}

/// The one value of header `name` in `r`.
#[track_caller]
pub fn header(r: &Received, name: &str) -> String {
    let values = r.headers(name);
    assert_eq!(values.len(), 1, "{name} once in {}", r.head);
    values[0].clone()
}

/// The request's method and target (path and query).
pub fn target(r: &Received) -> (String, String) {
    let mut parts = r.request_line().split(' ');
    let method = parts.next().unwrap_or("").to_string();
    (method, parts.next().unwrap_or("").to_string())
}

/// Checks the SigV4 signature of a Bedrock request as `r` received it, with `secret`, for
/// `region`: recomputed by the crate's signer from the received method, host, path, query,
/// `accept`, `content-type`, `x-amz-date`, token and body, it must be the one that came. Returns
/// the access key id the request names.
#[track_caller]
pub fn check_sigv4(r: &Received, secret: &str, region: &str) -> String {
    let authorization = header(r, "authorization");
    let amz_date = header(r, "x-amz-date");
    let token = r.headers("x-amz-security-token").first().cloned();
    let credential = (authorization.split("Credential=").nth(1))
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("no Credential= in {authorization}"));
    let access_key_id = credential.split('/').next().unwrap().to_string();
    // 20261207T120000Z, read as the time it says.
    let d = &amz_date;
    assert_eq!(d.len(), 16, "{d}");
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &d[0..4],
        &d[4..6],
        &d[6..8],
        &d[9..11],
        &d[11..13],
        &d[13..15]
    );
    let at = humantime::parse_rfc3339(&rfc3339).unwrap();
    let (method, target) = target(r);
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let host = header(r, "host");
    let (accept, content_type) = (header(r, "accept"), header(r, "content-type"));
    let signed = [
        ("accept", accept.as_str()),
        ("content-type", content_type.as_str()),
    ];
    let expected = sigv4::sign(
        &sigv4::Request {
            method: &method,
            host: &host,
            path,
            query,
            headers: &signed,
            body: &r.body,
        },
        &sigv4::Credentials {
            access_key_id: &access_key_id,
            secret_access_key: secret,
            session_token: token.as_deref(),
        },
        &sigv4::Scope {
            region,
            service: sigv4::BEDROCK,
        },
        at,
    );
    assert_eq!(expected.amz_date, amz_date);
    assert_eq!(
        expected.authorization, authorization,
        "the signature received is not the one for the request received"
    );
    access_key_id
}

/// [`check_sigv4`] with the secret of the one of `issued` whose session token `r` carries.
#[track_caller]
pub fn check_sigv4_by(r: &Received, issued: &[Keys], region: &str) -> String {
    let token = header(r, "x-amz-security-token");
    let keys = (issued.iter())
        .find(|k| k.session_token == token)
        .unwrap_or_else(|| panic!("a session token STS never gave: {token}"));
    check_sigv4(r, &keys.secret_access_key, region)
}

/// The role of the web identity tests.
pub const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/ringgate-bedrock";

/// A web identity token file (as the EKS pod identity webhook mounts one) and the environment
/// that names it.
pub struct WebIdentity {
    // Kept for the file's life.
    _dir: TempDir,
    pub token_file: String,
}

impl WebIdentity {
    pub fn new(tag: &str) -> WebIdentity {
        let dir = TempDir::new(tag);
        let token_file = dir.write("token", &format!("web-identity-token-{tag}-eyJhbGciOi"));
        let token_file = token_file.to_str().unwrap().to_string();
        WebIdentity {
            _dir: dir,
            token_file,
        }
    }

    pub fn env(&self) -> [(&str, &str); 2] {
        [
            ("AWS_WEB_IDENTITY_TOKEN_FILE", self.token_file.as_str()),
            ("AWS_ROLE_ARN", ROLE_ARN),
        ]
    }
}

/// An STS that gives new keys at every call (`{tag}1`, `{tag}2`, …, each valid for an hour);
/// the keys it gave.
pub fn numbered_sts(tag: &'static str) -> (Upstream, Arc<Mutex<Vec<Keys>>>) {
    let issued = Arc::new(Mutex::new(Vec::new()));
    let record = issued.clone();
    let sts = Upstream::start(move |_| {
        let mut issued = record.lock().unwrap();
        let keys = Keys::hour(&format!("{tag}{}", issued.len() + 1));
        issued.push(keys.clone());
        keys.sts_answer()
    });
    (sts, issued)
}

/// Config lines for a Bedrock upstream `name` in us-east-1 at `upstream` (with `extra` lines)
/// with one web-identity credential `wi` fetched from `sts`.
pub fn bedrock_lines(name: &str, upstream: SocketAddr, sts: SocketAddr, extra: &str) -> String {
    format!(
        "[[upstreams]]\nname = \"{name}\"\nkind = \"bedrock\"\nregion = \"us-east-1\"\n\
         base_url = \"http://{upstream}\"\n{extra}\n\
         [[upstreams.credentials]]\nname = \"wi\"\naws_credentials = \"web-identity\"\n\
         sts_endpoint = \"http://{sts}/\"\n"
    )
}

/// The admin listener's `/metrics`, parsed: the value of `name` with all of `labels` (0 when
/// there is no such sample).
pub fn metric(admin: SocketAddr, name: &str, labels: &[(&str, &str)]) -> f64 {
    use prometheus_parse::{Scrape, Value};
    let r = request(
        admin,
        b"GET /metrics HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("valid exposition");
    let found: Vec<f64> = (scrape.samples.iter())
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => panic!("{name}: not a plain sample"),
        })
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?}: {found:?}");
    found.first().copied().unwrap_or(0.0)
}

/// `GET` on the admin listener (loopback, no token), as JSON.
pub fn admin_json(admin: SocketAddr, path: &str) -> serde_json::Value {
    let r = request(
        admin,
        format!("GET {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n").as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

/// The state `/admin/credentials` gives `credential` of `upstream`.
pub fn credential_state(admin: SocketAddr, upstream: &str, credential: &str) -> String {
    let doc = admin_json(admin, "/admin/credentials");
    let all = doc["credentials"].as_array().unwrap();
    let c = (all.iter())
        .find(|c| c["upstream"] == upstream && c["credential"] == credential)
        .unwrap_or_else(|| panic!("no {upstream}/{credential} in {doc}"));
    c["state"].as_str().unwrap().to_string()
}
