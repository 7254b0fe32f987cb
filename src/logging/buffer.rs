//! Each thread's access lines not yet handed to the process's writer (on stderr): appending one
//! is a push onto a thread-local string, no lock, no system call, which is what makes a line
//! per request affordable on a worker.

use std::cell::RefCell;
use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::sink::Sink;

/// A buffer is handed over when it holds this much.
pub const BATCH: usize = 32 * 1024;
/// How long `finish` waits for the writer.
const FINISH: Duration = Duration::from_secs(2);

/// Lines gathered for one hand-over, and how many (what is counted if they are dropped).
pub struct Batch {
    text: String,
    lines: u64,
}

impl Batch {
    pub const fn new() -> Batch {
        Batch {
            text: String::new(),
            lines: 0,
        }
    }

    /// Appends one line (`write` writes it without its newline); true when the batch is full.
    pub fn push(&mut self, write: impl FnOnce(&mut String)) -> bool {
        if self.text.capacity() == 0 {
            // Room for a full batch and the line that crosses the mark: no regrowth on the way.
            self.text.reserve(BATCH + BATCH / 8);
        }
        write(&mut self.text);
        self.text.push('\n');
        self.lines += 1;
        self.text.len() >= BATCH
    }

    /// What there is to hand over, leaving the batch empty.
    pub fn take(&mut self) -> Option<(String, u64)> {
        (self.lines > 0).then(|| {
            (
                std::mem::take(&mut self.text),
                std::mem::take(&mut self.lines),
            )
        })
    }
}

/// A thread that ends without a last `flush_thread` still gets its lines written.
struct Local(RefCell<Batch>);

impl Drop for Local {
    fn drop(&mut self) {
        // Only a sink already started: a thread must not be spawned from a thread-local's
        // destructor, and lines in a batch mean it was (or failed to be) started.
        if let (Some((text, lines)), Some(sink)) = (self.0.get_mut().take(), started()) {
            sink.send(text, lines);
        }
    }
}

thread_local! {
    static BUFFER: Local = const { Local(RefCell::new(Batch::new())) };
}

/// Appends one access line to this thread's buffer. `write` appends the line's text WITHOUT the
/// trailing newline (this function adds it). The buffer is handed to the writer thread when it
/// holds >= 32 KiB; otherwise by flush_thread().
pub fn access(write: impl FnOnce(&mut String)) {
    let mut write = Some(write);
    let full = BUFFER
        .try_with(|local| {
            let mut batch = local.0.try_borrow_mut().ok()?;
            Some(batch.push(write.take()?))
        })
        .ok()
        .flatten();
    match (full, write) {
        (Some(true), _) => flush_thread(),
        (Some(false), _) | (None, None) => {}
        // Logged from inside `write`, or from a thread-local's destructor: the line goes alone.
        (None, Some(write)) => {
            let mut batch = Batch::new();
            batch.push(write);
            if let Some((text, lines)) = batch.take() {
                global().send(text, lines);
            }
        }
    }
}

/// Hands this thread's buffered access lines to the writer thread (workers call it from a
/// periodic task every 250 ms and when they stop).
pub fn flush_thread() {
    if let Some((text, lines)) = take() {
        global().send(text, lines);
    }
}

/// Flushes the calling thread and waits (up to 2 s) until the writer thread has written
/// everything handed to it; called by main before exit.
pub fn finish() {
    let deadline = Instant::now() + FINISH;
    // At exit, a full queue is waited for (until the deadline) rather than dropped at once.
    if let Some((text, lines)) = take() {
        global().send_until(text, lines, deadline);
    }
    if let Some(sink) = started() {
        sink.wait_written(deadline);
    }
}

/// Access lines dropped because the writer thread could not keep up (for a metric).
pub fn dropped_lines() -> u64 {
    started().map_or(0, Sink::dropped)
}

fn take() -> Option<(String, u64)> {
    BUFFER
        .try_with(|local| local.0.try_borrow_mut().ok()?.take())
        .ok()
        .flatten()
}

/// Standard error, locked for each whole batch (a `write` at a time would let another thread's
/// record in between the pieces of a partial write).
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

/// The process's sink, its thread started on first need.
fn global() -> &'static Sink {
    SINK.get_or_init(|| Sink::start(Box::new(Stderr)))
}

/// The process's sink if anything was ever handed to it.
fn started() -> Option<&'static Sink> {
    SINK.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_full_at_32_kib_and_counts_its_lines() {
        let mut batch = Batch::new();
        assert!(batch.take().is_none());
        let line = "x".repeat(1023);
        for _ in 0..31 {
            assert!(!batch.push(|s| s.push_str(&line)));
        }
        assert!(batch.push(|s| s.push_str(&line)));
        let (text, lines) = batch.take().unwrap();
        assert_eq!((text.len(), lines), (BATCH, 32));
        assert!(text.ends_with("x\n"));
        assert!(batch.take().is_none());
    }
}
