//! The access log's one writer thread, which does the blocking writes to stderr.
//!
//! A worker must never wait for stderr (a slow pipe, a stalled log shipper): when the writer
//! falls `QUEUE` batches behind, further batches are dropped and counted, and the count is a
//! metric. One batch is one `write_all` on locked stderr, so lines never interleave with the
//! gateway's other records.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

/// Batches waiting for the writer before new ones are dropped.
pub const QUEUE: usize = 64;

enum Message {
    Lines(String),
    /// Answered once everything sent before it is written.
    Written(mpsc::Sender<()>),
}

/// A writer thread and the lines it could not take.
pub struct Sink {
    /// `None` when the thread could not be started: lines are then counted as dropped.
    tx: Option<SyncSender<Message>>,
    dropped: AtomicU64,
}

impl Sink {
    /// Starts the writer thread on `out` (stderr for the process; a test's buffer otherwise).
    pub fn start(out: Box<dyn Write + Send>) -> Sink {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let spawned = std::thread::Builder::new()
            .name("ringgate-log".into())
            .spawn(move || write(rx, out));
        Sink {
            tx: spawned.is_ok().then_some(tx),
            dropped: AtomicU64::new(0),
        }
    }

    /// Hands `text` (`lines` lines) to the writer, or counts it dropped when the writer is too
    /// far behind; never waits.
    pub fn send(&self, text: String, lines: u64) {
        self.send_until(text, lines, Instant::now());
    }

    /// As `send`, but waits for room until `deadline`.
    pub fn send_until(&self, text: String, lines: u64, deadline: Instant) {
        if self.offer(Message::Lines(text), deadline).is_err() {
            self.dropped.fetch_add(lines, Relaxed);
        }
    }

    /// Waits until everything sent so far is written, or `deadline`; true if it was.
    pub fn wait_written(&self, deadline: Instant) -> bool {
        let (done, written) = mpsc::channel();
        // Not a blocking send: a writer stuck on stderr must not keep the process from exiting.
        self.offer(Message::Written(done), deadline).is_ok()
            && written
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .is_ok()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    fn offer(&self, mut message: Message, deadline: Instant) -> Result<(), ()> {
        let tx = self.tx.as_ref().ok_or(())?;
        loop {
            match tx.try_send(message) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                    message = m;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => return Err(()),
            }
        }
    }
}

fn write(rx: Receiver<Message>, mut out: Box<dyn Write + Send>) {
    for message in rx {
        match message {
            Message::Lines(text) => {
                // A closed or failing stderr has nowhere to report to; the lines are lost.
                let _ = out.write_all(text.as_bytes());
            }
            Message::Written(done) => {
                let _ = out.flush();
                let _ = done.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::buffer::Batch;
    use super::*;
    use std::fmt::Write as _;
    use std::sync::{Arc, Barrier, Mutex};

    /// A destination the test can read.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    #[test]
    fn lines_from_many_threads_arrive_whole_and_in_order() {
        const THREADS: usize = 8;
        const LINES: usize = 3000;
        let out = Shared::default();
        let sink = Arc::new(Sink::start(Box::new(out.clone())));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    let mut batch = Batch::new();
                    for n in 0..LINES {
                        let full = batch.push(|s| {
                            let _ = write!(s, "t{t} n{n} {}", "x".repeat(n % 61));
                        });
                        if full {
                            let (text, lines) = batch.take().unwrap();
                            sink.send(text, lines);
                        }
                    }
                    if let Some((text, lines)) = batch.take() {
                        sink.send(text, lines);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(sink.wait_written(soon()));
        // ~1.2 MB is ~40 batches: the queue never fills, so nothing may be missing.
        assert_eq!(sink.dropped(), 0);
        let text = out.text();
        let mut next = [0usize; THREADS];
        for line in text.lines() {
            let mut fields = line.split(' ');
            let t: usize = fields.next().unwrap()[1..].parse().unwrap();
            let n: usize = fields.next().unwrap()[1..].parse().unwrap();
            assert_eq!(fields.next(), Some("x".repeat(n % 61).as_str()), "{line}");
            assert_eq!(fields.next(), None, "{line}");
            assert_eq!(n, next[t], "thread {t}'s lines out of order");
            next[t] += 1;
        }
        assert_eq!(next, [LINES; THREADS]);
        assert!(text.ends_with('\n'));
    }

    /// Holds its first write until the test lets it go (two meetings: "entered", "go on").
    struct Stuck {
        gate: Arc<Barrier>,
        held: bool,
        out: Shared,
    }

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if !self.held {
                self.held = true;
                self.gate.wait();
                self.gate.wait();
            }
            self.out.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_writer_that_falls_behind_costs_lines_not_waiting() {
        let gate = Arc::new(Barrier::new(2));
        let out = Shared::default();
        let sink = Sink::start(Box::new(Stuck {
            gate: gate.clone(),
            held: false,
            out: out.clone(),
        }));
        sink.send("held\n".into(), 1);
        gate.wait();
        // The writer holds the first batch; QUEUE more fit, the next ones are dropped at once.
        for _ in 0..QUEUE {
            sink.send("queued\n".into(), 1);
        }
        assert_eq!(sink.dropped(), 0);
        for _ in 0..10 {
            sink.send("two lines\nof a batch\n".into(), 2);
        }
        assert_eq!(sink.dropped(), 20);
        gate.wait();
        assert!(sink.wait_written(soon()));
        assert_eq!(out.text().lines().count(), 1 + QUEUE);
    }

    #[test]
    fn waiting_on_a_stuck_writer_gives_up_at_the_deadline() {
        let gate = Arc::new(Barrier::new(2));
        let sink = Sink::start(Box::new(Stuck {
            gate: gate.clone(),
            held: false,
            out: Shared::default(),
        }));
        sink.send("held\n".into(), 1);
        gate.wait();
        for _ in 0..QUEUE {
            sink.send("queued\n".into(), 1);
        }
        let started = Instant::now();
        assert!(!sink.wait_written(Instant::now() + Duration::from_millis(50)));
        assert!(started.elapsed() < Duration::from_secs(5));
        gate.wait();
    }
}
