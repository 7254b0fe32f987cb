//! The `ringgate` binary as a user runs it: `check`, and `serve` with no config at all.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ringgate");

#[test]
fn check_accepts_the_example_and_never_prints_the_key() {
    let out = Command::new(BIN)
        .args([
            "check",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/ringgate.toml"),
        ])
        .env("ANTHROPIC_API_KEY", "sk-ant-very-secret")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(": ok") && stdout.contains("\"anthropic\""),
        "{stdout}"
    );
    assert!(!stdout.contains("sk-ant-very-secret"));
}

#[test]
fn check_names_the_problem_and_its_line() {
    let path = std::env::temp_dir().join(format!("ringgate-bad-{}.toml", std::process::id()));
    std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:8080\"\n\n[[upstreams]]\nname = \"a\"\nkind = \"anthropic\"\n[[upstreams.credentials]]\nname = \"k\"\napi_key_env = \"RINGGATE_TEST_UNSET_VAR\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .env_remove("RINGGATE_TEST_UNSET_VAR")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("(line 7)") && stderr.contains("RINGGATE_TEST_UNSET_VAR is not set"),
        "{stderr}"
    );
}

#[test]
fn serve_without_config_or_key_runs_the_mock_and_stops_on_sigterm() {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", "2"])
        .env_remove("ANTHROPIC_API_KEY")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = loop {
        assert!(Instant::now() < deadline, "no listening line: {log}");
        let line = lines.next().expect("log line").unwrap();
        log.push_str(&line);
        log.push('\n');
        if let Some(rest) = line.split("listening on ").nth(1) {
            let (addr, how) = rest.split_once(' ').unwrap();
            assert!(
                how == "(2 workers, io_uring)" || how == "(2 workers, epoll)",
                "{line}"
            );
            break addr.parse::<std::net::SocketAddr>().unwrap();
        }
    };
    assert!(
        log.contains("BUILT-IN MOCK"),
        "the mock is announced loudly: {log}"
    );
    let body = r#"{"model":"claude-sonnet-4-5","max_tokens":32,"messages":[{"role":"user","content":"hello"}]}"#;
    let r = support::request(addr, &support::messages_request(body, ""));
    assert_eq!(r.status, 200);
    assert!(r.text().contains("You said: hello"));

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit 0 after SIGTERM: {status:?}");
}
