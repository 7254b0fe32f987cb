//! `mock-upstream` as the separate process a gateway test runs it as: faults chosen by API key,
//! and the request log such a test counts attempts from. Every wait is bounded, so a broken
//! binary fails these tests instead of hanging them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ringgate::mock::answers::FAULTS;
use ringgate::mock::server::key_fingerprint;

const WAIT: Duration = Duration::from_secs(10);
const BODY: &str =
    r#"{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;

/// A running `mock-upstream`, killed when dropped so a failed assertion leaves no process behind.
struct Mock {
    child: Child,
    addr: SocketAddr,
    stderr: Option<ChildStderr>,
}

impl Mock {
    fn start(args: &[&str]) -> Mock {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mock-upstream"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mock-upstream");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.parse::<SocketAddr>().expect("an address"));
                }
            }
        });
        let mut mock = Mock {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            stderr,
        };
        mock.addr = rx
            .recv_timeout(WAIT)
            .expect("mock-upstream prints `listening on ADDR`");
        mock
    }

    /// Kills the process and returns all it wrote on stderr.
    fn stop(mut self) -> String {
        self.child.kill().expect("kill mock-upstream");
        let mut stderr = self.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            let _ = tx.send(text);
        });
        rx.recv_timeout(WAIT).expect("stderr ends once killed")
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends the messages request with this key; returns the status and the response head.
fn post(addr: SocketAddr, key: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "POST /v1/messages HTTP/1.1\r\nhost: mock\r\nx-api-key: {key}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    )
    .unwrap();
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        assert!(Instant::now() < deadline, "no whole response in time");
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(got[..end].to_vec()).unwrap();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .expect("a content-length");
            if got.len() >= end + 4 + length {
                let status = head[9..12].parse().unwrap();
                return (status, head.to_ascii_lowercase());
            }
        }
        let n = s.read(&mut buf).expect("read the response");
        assert!(n > 0, "connection closed mid-response");
        got.extend_from_slice(&buf[..n]);
    }
}

fn answered(status: u16, key: &str) -> String {
    format!(
        "answered POST /v1/messages key={} status={status}",
        key_fingerprint(key.as_bytes())
    )
}

#[test]
fn faults_by_key_and_the_request_log() {
    let mock = Mock::start(&["--log-requests", "--fault-for-key", "key-a=rate_limit"]);
    let (status, head) = post(mock.addr, "key-a");
    assert_eq!(status, 429, "{head}");
    assert!(head.contains("\r\nretry-after: 1"), "{head}");
    let (status, head) = post(mock.addr, "key-b");
    assert_eq!(status, 200, "{head}");

    let log = mock.stop();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("answered")).collect();
    assert_eq!(lines.len(), 2, "{log}");
    for expected in [answered(429, "key-a"), answered(200, "key-b")] {
        let n = lines.iter().filter(|l| l.ends_with(&expected)).count();
        assert_eq!(n, 1, "{expected} in:\n{log}");
    }
    for line in &lines {
        // `[2025-01-01T00:00:00.123Z DEBUG mock::requests] answered …`: milliseconds, so a test
        // can measure the spacing of attempts.
        let stamp = line.trim_start_matches('[').split(' ').next().unwrap();
        let millis = stamp.rsplit_once('.').map(|(_, m)| m);
        assert!(
            millis.is_some_and(|m| m.len() == 4 && m.ends_with('Z')),
            "{line}"
        );
        assert!(line.contains("mock::requests"), "{line}");
    }
    assert!(!log.contains("key-a") && !log.contains("key-b"), "{log}");
}

#[test]
fn fault_keys_are_known_keys_and_nothing_is_logged_unasked() {
    let mock = Mock::start(&["--api-key", "main", "--fault-for-key", "key-a=overloaded"]);
    assert_eq!(post(mock.addr, "key-a").0, 529);
    assert_eq!(post(mock.addr, "main").0, 200);
    assert_eq!(post(mock.addr, "key-b").0, 401);
    let log = mock.stop();
    assert!(!log.contains("answered"), "{log}");
}

#[test]
fn an_unknown_fault_is_refused_at_startup() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-upstream"))
        .args(["--listen", "127.0.0.1:0", "--fault-for-key", "x=bogus"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mock-upstream");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mock-upstream started despite an unknown fault");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success());
    assert!(stderr.contains("bogus"), "{stderr}");
    for fault in FAULTS {
        assert!(stderr.contains(fault), "{fault} missing from: {stderr}");
    }
}
