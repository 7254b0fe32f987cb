//! The access log's way to stderr: lines gather in a buffer per thread, full buffers (and, every
//! 250 ms, whatever a worker has) go to one writer thread, which does the blocking writes.
//!
//! A worker must never wait for stderr (a slow pipe, a stalled log shipper): when the writer
//! falls `QUEUE` batches behind, further batches are dropped and counted, and the count is a
//! metric. One batch is one `write_all` on locked stderr, so lines never interleave with the
//! gateway's other records.

use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::Duration;

/// A buffer is handed over when it holds this much.
const BATCH: usize = 32 * 1024;
/// Batches waiting for the writer before new ones are dropped.
const QUEUE: usize = 64;

enum Message {
    Lines(String),
    /// Answered once everything sent before it is written.
    Flushed(mpsc::Sender<()>),
}

/// A writer thread and what it has been unable to take.
pub struct Sink {
    tx: SyncSender<Message>,
    dropped: AtomicU64,
}

impl Sink {
    /// Starts the writer thread on `out`.
    pub fn start(out: Box<dyn Write + Send>) -> Sink {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("ringgate-log".into())
            .spawn(move || write_all(rx, out))
            .expect("the log writer thread starts");
        Sink {
            tx,
            dropped: AtomicU64::new(0),
        }
    }

    /// Hands `text` (`lines` lines) to the writer, or counts it dropped when the writer is
    /// too far behind.
    pub fn send(&self, text: String, lines: u64) {
        match self.tx.try_send(Message::Lines(text)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(lines, Relaxed);
            }
        }
    }

    /// Waits up to `timeout` until everything sent so far is written.
    pub fn wait_written(&self, timeout: Duration) -> bool {
        let (done, written) = mpsc::channel();
        // Waits for room: at exit, a full queue is written rather than dropped.
        if self.tx.send(Message::Flushed(done)).is_err() {
            return false;
        }
        written.recv_timeout(timeout).is_ok()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}

fn write_all(rx: Receiver<Message>, mut out: Box<dyn Write + Send>) {
    for message in rx {
        match message {
            Message::Lines(text) => {
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
            Message::Flushed(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Standard error, locked for each batch.
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stderr().lock().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        std::io::stderr().lock().write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

static SINK: OnceLock<Sink> = OnceLock::new();

fn sink() -> &'static Sink {
    SINK.get_or_init(|| Sink::start(Box::new(Stderr)))
}

thread_local! {
    /// This thread's lines not yet handed over, and how many.
    static BUFFER: RefCell<(String, u64)> = const { RefCell::new((String::new(), 0)) };
}

/// Appends one access line (`write` writes it without its newline) to this thread's buffer.
pub fn access(write: impl FnOnce(&mut String)) {
    let full = BUFFER.with_borrow_mut(|(text, lines)| {
        if text.capacity() == 0 {
            text.reserve(BATCH + 1024);
        }
        write(text);
        text.push('\n');
        *lines += 1;
        text.len() >= BATCH
    });
    if full {
        flush_thread();
    }
}

/// Hands this thread's buffered lines to the writer.
pub fn flush_thread() {
    let batch = BUFFER.with_borrow_mut(|(text, lines)| {
        (*lines > 0).then(|| (std::mem::take(text), std::mem::take(lines)))
    });
    if let Some((text, lines)) = batch {
        sink().send(text, lines);
    }
}

/// Flushes this thread and waits (up to 2 s) until the writer has written all it was given.
pub fn finish() {
    flush_thread();
    if let Some(sink) = SINK.get() {
        sink.wait_written(Duration::from_secs(2));
    }
}

/// Access lines dropped because the writer could not keep up.
pub fn dropped_lines() -> u64 {
    SINK.get().map_or(0, Sink::dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier, Mutex};

    /// A destination the test can read.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_from_many_threads_arrive_whole() {
        let out = Shared::default();
        let sink = Arc::new(Sink::start(Box::new(out.clone())));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for batch in 0..50 {
                        let text: String = (0..20)
                            .map(|i| {
                                format!("thread {t} batch {batch} line {i} {}\n", "x".repeat(i * 7))
                            })
                            .collect();
                        sink.send(text, 20);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(sink.wait_written(Duration::from_secs(5)));
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() as u64 + sink.dropped(), 4 * 50 * 20);
        for line in lines {
            let i: usize = line.split(' ').nth(5).unwrap().parse().unwrap();
            assert_eq!(
                line.split(' ').nth(6).unwrap_or(""),
                "x".repeat(i * 7),
                "{line}"
            );
        }
    }

    /// Blocks its first write until the test lets it go.
    struct Stuck(Arc<Barrier>, bool);

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if !self.1 {
                self.1 = true;
                self.0.wait();
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_writer_that_falls_behind_costs_lines_not_waiting() {
        let gate = Arc::new(Barrier::new(2));
        let sink = Sink::start(Box::new(Stuck(gate.clone(), false)));
        // The writer holds one batch, the queue QUEUE more; the rest must be dropped at once.
        for _ in 0..QUEUE + 10 {
            sink.send("line\n".into(), 1);
        }
        assert!(sink.dropped() >= 9, "{}", sink.dropped());
        gate.wait();
        assert!(sink.wait_written(Duration::from_secs(5)));
    }
}
