//! The `ringgate` binary as a child process: started with a config file, its log captured,
//! signalled by its own PID (never by name), killed if a test leaves it running.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ringgate");

pub struct Process {
    child: Child,
    /// The first address it listens on.
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
    pub config: PathBuf,
}

impl Process {
    /// Writes `config` to a file of its own and runs `ringgate serve --config` on it (with
    /// `RUST_LOG=info`), until it says where it listens.
    pub fn start(config: &str) -> Process {
        Process::start_with(config, &[("RUST_LOG", Some("info"))])
    }

    /// As [`start`](Self::start), with these environment variables set (`Some`) or removed.
    pub fn start_with(config: &str, env: &[(&str, Option<&str>)]) -> Process {
        static FILES: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "ringgate-test-{}-{}.toml",
            std::process::id(),
            FILES.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, config).unwrap();
        let mut command = Command::new(BIN);
        command.args(["serve", "--config"]).arg(&path);
        for (name, value) in env {
            match value {
                Some(v) => command.env(name, v),
                None => command.env_remove(name),
            };
        }
        let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        // Read to the end, so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if let Some(rest) = line.split("listening on ").nth(1) {
                    if let Some(addr) = rest.split(' ').next().and_then(|a| a.parse().ok()) {
                        let _ = tx.send(addr);
                    }
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut process = Process {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            config: path,
        };
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => process.addr = addr,
            Err(_) => panic!("no listening line: {}", process.log()),
        }
        process
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` to this child only.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) with the PID of our own child, which `Drop` reaps only after this.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }

    /// The admin listener's address, from the line that announces it.
    pub fn admin_addr(&self) -> SocketAddr {
        assert!(self.wait_log("admin listener on ", 1, Duration::from_secs(10)));
        let log = self.log();
        let rest = log.split("admin listener on ").nth(1).unwrap();
        let addr: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '"')
            .collect();
        addr.parse().unwrap_or_else(|_| panic!("{addr:?}"))
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle` `times` times.
    pub fn wait_log(&self, needle: &str, times: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().matches(needle).count() >= times {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Replaces the config file's text (for a reload).
    pub fn write_config(&self, text: &str) {
        std::fs::write(&self.config, text).unwrap();
    }

    /// Its exit status, if it exits within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// Waits until the bytes that have arrived on `stream` (looked at, not read) contain `needle`.
pub fn wait_for_bytes(stream: &TcpStream, needle: &[u8], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = stream.peek(&mut buf).unwrap_or(0);
        if super::find(&buf[..n], needle).is_some() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {:?} within {timeout:?}: {:?}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(&buf[..n])
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether a new connection to `addr` is refused, trying until `timeout` (a listener being
/// closed may still take one in the meantime).
pub fn refused_within(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return true,
            _ if Instant::now() >= deadline => return false,
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}
