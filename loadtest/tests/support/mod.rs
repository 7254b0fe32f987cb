//! What the CLI tests share: a `mock-upstream` process on a port of its own choosing.
// Each test file compiles this module for itself and uses only some of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The longest any one wait of these tests lasts.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running `mock-upstream`, killed when dropped so a failed assertion leaves no process behind.
pub struct Mock {
    child: Child,
    pub addr: SocketAddr,
    stderr: Option<ChildStderr>,
}

impl Mock {
    pub fn start(args: &[&str]) -> Mock {
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

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Kills the process and returns all it wrote on stderr.
    pub fn stop(mut self) -> String {
        self.child.kill().expect("kill mock-upstream");
        self.stderr_text()
    }

    /// Sends SIGTERM (to this child, by its PID), waits until it exits and returns all it wrote
    /// on stderr.
    pub fn terminate(mut self) -> String {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) with a PID we spawned and still own (not yet waited for).
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "mock-upstream exited with {status}");
                break;
            }
            assert!(Instant::now() < deadline, "mock-upstream ignored SIGTERM");
            thread::sleep(Duration::from_millis(10));
        }
        self.stderr_text()
    }

    pub fn stderr_text(&mut self) -> String {
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
