//! `sseload` as a benchmark script runs it: a real `mock-upstream` process, real sockets, the
//! JSON it writes. Each run is short and every wait is bounded, so a broken binary fails these
//! tests instead of hanging them.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::Value;
use support::{Mock, WAIT};

mod support;

/// Runs `sseload` with `args`, killed if it outlives `limit`.
fn sseload(args: &[&str], limit: Duration) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_sseload"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sseload");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.expect("sseload output"),
        Err(_) => {
            // SAFETY: kill(2) on the child spawned above, which has not been reaped (its
            // waiter thread is still blocked on it).
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("sseload {args:?} did not finish within {limit:?}");
        }
    }
}

/// Runs `sseload` against `mock` with `args` and `--json`; returns the JSON and the table.
fn run(mock: &Mock, args: &[&str], limit: Duration) -> (Value, String) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path: PathBuf = std::env::temp_dir().join(format!(
        "sseload-cli-{}-{}.json",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let url = mock.url();
    let mut all = vec!["--url", url.as_str(), "--json", path.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = sseload(&all, limit);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let json = std::fs::read_to_string(&path).expect("the JSON file");
    let _ = std::fs::remove_file(&path);
    (serde_json::from_str(&json).expect("valid JSON"), stdout)
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{v} is not a count"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

/// Percentiles in order, as a histogram gives them.
fn assert_summary(s: &Value) {
    let p: Vec<u64> = ["p50", "p90", "p99", "p999", "max"]
        .iter()
        .map(|k| n(&s[k]))
        .collect();
    assert!(p.windows(2).all(|w| w[0] <= w[1]), "{s}");
    assert!(f(&s["mean"]) <= p[4] as f64, "{s}");
}

#[test]
fn closed_loop_without_streams() {
    let mock = Mock::start(&[]);
    let pid = mock.pid();
    let (v, table) = run(
        &mock,
        &[
            "--duration",
            "1",
            "--warmup",
            "0.2",
            "--concurrency",
            "4",
            "--label",
            "plain",
            "--cpu-pid",
            &pid,
            "--reply-bytes",
            "300",
        ],
        WAIT,
    );
    assert_eq!(
        (v["label"].as_str(), v["mode"].as_str()),
        (Some("plain"), Some("closed"))
    );
    assert_eq!(
        (
            v["stream"].as_bool(),
            n(&v["concurrency"]),
            n(&v["threads"])
        ),
        (Some(false), 4, 1)
    );
    assert!(v["target_rate"].is_null() && v["stream_stats"].is_null() && v["rss"].is_null());
    let requests = n(&v["requests"]);
    assert!(requests > 100, "{v}");
    assert_eq!(n(&v["errors"]), 0, "{v}");
    assert!(v["error_kinds"]
        .as_object()
        .unwrap()
        .values()
        .all(|k| n(k) == 0));
    assert!((f(&v["duration_s"]) - 1.0).abs() < 1e-6);
    assert!((f(&v["rate"]) - requests as f64).abs() <= 1.0, "{v}");
    assert_summary(&v["latency_us"]);
    assert!(n(&v["latency_us"]["p50"]) > 0);
    assert_eq!(v["cpu"]["pids"][0].to_string(), pid);
    let per_request = f(&v["cpu"]["cpu_us_per_request"]);
    assert!((per_request - n(&v["cpu"]["cpu_us"]) as f64 / requests as f64).abs() < 0.01);
    assert!(v["cpu"]["cpu_us_per_event"].is_null(), "{v}");
    assert!(
        table.contains("plain") && table.contains("latency"),
        "{table}"
    );
    assert!(
        matches!(v["io_driver"].as_str(), Some("io_uring" | "epoll")),
        "{v}"
    );
}

#[test]
fn a_request_budget_is_counted_exactly() {
    let mock = Mock::start(&[]);
    let (v, _) = run(
        &mock,
        &[
            "--requests",
            "300",
            "--warmup",
            "0.1",
            "--io-driver",
            "epoll",
        ],
        WAIT,
    );
    assert_eq!((n(&v["requests"]), n(&v["errors"])), (300, 0), "{v}");
    assert_eq!(v["io_driver"], "epoll");
    assert_eq!(n(&v["concurrency"]), 16);
    assert!(
        f(&v["duration_s"]) > 0.0 && f(&v["duration_s"]) < 5.0,
        "{v}"
    );
}

#[test]
fn closed_loop_streams_are_checked_event_by_event() {
    let mock = Mock::start(&[]);
    let pid = mock.pid();
    let (v, table) = run(
        &mock,
        &[
            "--cpu-pid",
            &pid,
            "--stream",
            "--deltas",
            "8",
            "--interval-ms",
            "5",
            "--concurrency",
            "4",
            "--duration",
            "1.5",
            "--warmup",
            "0.3",
        ],
        WAIT,
    );
    let requests = n(&v["requests"]);
    assert!(requests >= 20, "{v}");
    assert_eq!(n(&v["errors"]), 0, "{v}");
    let s = &v["stream_stats"];
    // 8 deltas, and message_start, content_block_start, ping, content_block_stop,
    // message_delta, message_stop.
    assert_eq!(n(&s["events"]), requests * 14, "{s}");
    assert_eq!(n(&s["deltas_expected"]), requests * 8);
    assert_eq!(n(&s["deltas_received"]), requests * 8);
    for k in [
        "lost_events",
        "garbled_events",
        "error_events",
        "incomplete_streams",
    ] {
        assert_eq!(n(&s[k]), 0, "{k}: {s}");
    }
    assert!(s["held_max"].is_null());
    for k in ["ttfe_us", "event_delay_us"] {
        assert_summary(&s[k]);
    }
    // The stamps are the mock's send times: on loopback, each delta arrives well within a
    // second of being written (a wrong or unparsed stamp would be years off, or zero).
    assert!(n(&s["event_delay_us"]["max"]) < 1_000_000, "{s}");
    assert!(
        n(&s["ttfe_us"]["p50"]) > 0 && n(&s["ttfe_us"]["p50"]) < 1_000_000,
        "{s}"
    );
    // Paced 5 ms apart, the events come in separate reads.
    let per_event = f(&s["reads_per_event"]);
    assert!(per_event > 0.5 && per_event <= 1.5, "{s}");
    assert_eq!(
        f(&s["reads_per_event"]),
        (n(&s["reads"]) as f64 / n(&s["events"]) as f64 * 1000.0).round() / 1000.0
    );
    assert!(n(&s["body_bytes"]) > requests * 8 * 60, "{s}");
    // The process's CPU over the events the client received.
    let per_event = f(&v["cpu"]["cpu_us_per_event"]);
    assert!(
        (per_event - n(&v["cpu"]["cpu_us"]) as f64 / n(&s["events"]) as f64).abs() < 0.001,
        "{v}"
    );
    assert!(table.contains("µs/event"), "{table}");
    // Each stream lasts 13 pauses of 5 ms.
    assert!(n(&v["latency_us"]["p50"]) >= 60_000, "{v}");
    assert!(table.contains("event delay"), "{table}");
}

#[test]
fn the_open_loop_keeps_its_rate() {
    let mock = Mock::start(&[]);
    let (v, _) = run(
        &mock,
        &[
            "--rate",
            "200",
            "--duration",
            "1.5",
            "--warmup",
            "0.2",
            "--connections",
            "32",
        ],
        WAIT,
    );
    assert_eq!(
        (
            v["mode"].as_str(),
            f(&v["target_rate"]),
            n(&v["concurrency"])
        ),
        (Some("open"), 200.0, 32)
    );
    let rate = f(&v["rate"]);
    assert!((180.0..=220.0).contains(&rate), "{v}");
    assert_eq!(n(&v["errors"]), 0);
    // Unloaded, a request takes far less than the 5 ms between two.
    assert!(n(&v["latency_us"]["p50"]) < 5_000, "{v}");
}

#[test]
fn the_open_loop_stops_with_its_budget_however_long_its_queue() {
    // One connection, streams of 7 pauses of 30 ms, 500 scheduled a second: the queue grows
    // by about 100 requests per stream. Once three are counted nothing more is sent: the run
    // does not drain the queue first (which would take a minute).
    let mock = Mock::start(&[]);
    let started = std::time::Instant::now();
    let (v, _) = run(
        &mock,
        &[
            "--rate",
            "500",
            "--connections",
            "1",
            "--requests",
            "3",
            "--warmup",
            "0",
            "--stream",
            "--deltas",
            "2",
            "--interval-ms",
            "30",
        ],
        WAIT,
    );
    assert_eq!((n(&v["requests"]), n(&v["errors"])), (3, 0), "{v}");
    assert!(started.elapsed() < Duration::from_secs(3), "{v}");
}

#[test]
fn a_schedule_past_the_clock_ends_the_load_rather_than_a_thread() {
    // The second request is due in 10^300 s: past what an Instant can hold.
    let mock = Mock::start(&[]);
    let (v, _) = run(
        &mock,
        &["--rate", "1e-300", "--duration", "0.3", "--warmup", "0"],
        WAIT,
    );
    assert_eq!((n(&v["requests"]), n(&v["errors"])), (1, 0), "{v}");
    let (v, _) = run(
        &mock,
        &[
            "--hold",
            "2",
            "--ramp",
            "1e-300",
            "--deltas",
            "1",
            "--interval-ms",
            "1",
        ],
        WAIT,
    );
    assert_eq!((n(&v["requests"]), n(&v["errors"])), (1, 0), "{v}");
}

#[test]
fn hold_mode_holds_every_stream() {
    let mock = Mock::start(&[]);
    let pid = mock.pid();
    let (v, table) = run(
        &mock,
        &[
            "--hold",
            "50",
            "--ramp",
            "1000",
            "--deltas",
            "10",
            "--interval-ms",
            "20",
            "--rss-pid",
            &pid,
            "--threads",
            "2",
        ],
        WAIT,
    );
    assert_eq!(
        (v["mode"].as_str(), v["stream"].as_bool()),
        (Some("hold"), Some(true))
    );
    assert_eq!((n(&v["requests"]), n(&v["errors"])), (50, 0), "{v}");
    let s = &v["stream_stats"];
    assert_eq!(n(&s["held_max"]), 50, "{s}");
    assert_eq!(n(&s["deltas_received"]), 500);
    assert_eq!((n(&s["lost_events"]), n(&s["garbled_events"])), (0, 0));
    let rss = &v["rss"];
    assert!(
        n(&rss["baseline_kib"]) > 0 && n(&rss["peak_kib"]) > 0,
        "{rss}"
    );
    assert!(f(&rss["per_stream_kib"]) >= 0.0, "{rss}");
    assert!(table.contains("held_max 50"), "{table}");
}

#[test]
fn the_rss_peak_is_the_most_seen_not_the_reading_when_the_last_stream_opened() {
    // This process is the one measured: it takes 64 MiB more once every stream is held, and
    // keeps them until the run ends.
    let mock = Mock::start(&[]);
    let me = std::process::id().to_string();
    let (done, wait) = mpsc::channel::<()>();
    let grower = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        let grown = vec![1u8; 64 << 20];
        let _ = wait.recv_timeout(WAIT);
        grown.iter().map(|&b| u64::from(b)).sum::<u64>()
    });
    let (v, _) = run(
        &mock,
        &[
            "--hold",
            "2",
            "--deltas",
            "8",
            "--interval-ms",
            "100",
            "--rss-pid",
            &me,
        ],
        WAIT,
    );
    drop(done);
    assert_eq!(grower.join().unwrap(), 64 << 20);
    let rss = &v["rss"];
    let grew = n(&rss["peak_kib"]).saturating_sub(n(&rss["baseline_kib"]));
    assert!(grew >= 60 << 10, "{rss}");
}

#[test]
fn a_stream_cut_short_is_seen() {
    let mock = Mock::start(&[]);
    let (v, _) = run(
        &mock,
        &[
            "--stream",
            "--deltas",
            "8",
            "--interval-ms",
            "2",
            "--concurrency",
            "2",
            "--duration",
            "0.5",
            "--warmup",
            "0",
            "--header",
            "x-mock-fault: drop_mid_stream",
        ],
        WAIT,
    );
    let requests = n(&v["requests"]);
    assert!(requests > 0, "{v}");
    // The mock sends four events (the first delta last) and closes the connection.
    assert_eq!(n(&v["error_kinds"]["closed_early"]), requests, "{v}");
    let s = &v["stream_stats"];
    assert_eq!(n(&s["incomplete_streams"]), requests, "{s}");
    assert_eq!(n(&s["lost_events"]), requests * 7, "{s}");
    assert_eq!(n(&s["deltas_received"]), requests, "{s}");
    assert_eq!(
        n(&v["latency_us"]["max"]),
        0,
        "failed streams have no latency: {v}"
    );
}

#[test]
fn error_statuses_are_counted_by_code() {
    let mock = Mock::start(&[]);
    let (v, table) = run(
        &mock,
        &[
            "--duration",
            "0.5",
            "--warmup",
            "0",
            "--concurrency",
            "2",
            "--header",
            "x-mock-fault: rate_limit",
        ],
        WAIT,
    );
    let requests = n(&v["requests"]);
    assert!(requests > 0);
    assert_eq!(n(&v["errors"]), requests);
    assert_eq!(n(&v["error_kinds"]["status_429"]), requests, "{v}");
    assert!(table.contains("status_429="), "{table}");
}

#[test]
fn bad_arguments_and_absent_targets_exit_2() {
    // A port nothing listens on: bind one, note it, free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = format!("http://127.0.0.1:{port}");
    for args in [
        &["--url", refused.as_str(), "--duration", "0.2"][..],
        &["--url", "https://127.0.0.1:1"],
        &["--url", "127.0.0.1:1"],
        &["--url", "http://127.0.0.1:1", "--rate", "10", "--hold", "5"],
        &[
            "--url",
            "http://127.0.0.1:1",
            "--header",
            "x-mock-deltas: 3",
        ],
        &["--duration", "1"],
    ] {
        let out = sseload(args, WAIT);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.trim().is_empty(), "{args:?} says nothing");
    }
    let out = sseload(&["--url", refused.as_str()], WAIT);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));
    let help = sseload(&["--help"], WAIT);
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--url",
        "--api-key",
        "--model",
        "--header",
        "--threads",
        "--concurrency",
        "--rate",
        "--connections",
        "--hold",
        "--ramp",
        "--duration",
        "--warmup",
        "--requests",
        "--stream",
        "--deltas",
        "--delta-bytes",
        "--interval-ms",
        "--reply-bytes",
        "--cpu-pid",
        "--rss-pid",
        "--label",
        "--json",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}
