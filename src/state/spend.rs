//! Each client key's spend, kept across restarts.
//!
//! Budgets count spend in atomics on the request path; a thread of its own writes their
//! snapshot to `spend.json` in the state directory once a second when it changed, and once more
//! when the gateway stops, so a restart loses at most the last second of spend (a crash) or
//! nothing (a stop). The file is replaced whole (written beside it, then renamed), so a crash
//! never leaves half of one. At start the saved spend is merged back into the keys still
//! configured; a period that has ended since counts for nothing.
//!
//! What can go wrong: an unwritable directory or a full disk (said once in the log, retried
//! each second; requests are never held up by it), an unreadable or corrupt file at start (said
//! in the log; spend starts from zero rather than the gateway refusing to start).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::limits::registry::Registry;

pub const FILE_NAME: &str = "spend.json";

/// How often the spend is written when it changed.
const EVERY: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Saved {
    day_spent_micro_usd: u64,
    day_period: u32,
    month_spent_micro_usd: u64,
    month_period: u32,
}

#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct File {
    keys: BTreeMap<String, Saved>,
}

/// Every limited key's spend, as it would be saved.
fn collect(registry: &Registry) -> File {
    let keys = (registry.keys())
        .map(|(name, limits)| {
            let s = limits.budget().snapshot();
            let saved = Saved {
                day_spent_micro_usd: s.day_spent,
                day_period: s.day_period,
                month_spent_micro_usd: s.month_spent,
                month_period: s.month_period,
            };
            (name.to_string(), saved)
        })
        .filter(|(_, s)| s.day_spent_micro_usd > 0 || s.month_spent_micro_usd > 0)
        .collect();
    File { keys }
}

/// Merges the spend saved in `dir` into `registry`'s keys (call once, at start).
pub fn restore(dir: &Path, registry: &Registry) {
    let path = dir.join(FILE_NAME);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            log::error!(
                "spend: cannot read {}: {e}; counting from zero",
                path.display()
            );
            return;
        }
    };
    let file: File = match serde_json::from_str(&text) {
        Ok(file) => file,
        Err(e) => {
            log::error!(
                "spend: {} is not a spend file ({e}); counting from zero",
                path.display()
            );
            return;
        }
    };
    for (name, s) in &file.keys {
        if let Some(limits) = registry.get(name) {
            limits.budget().restore(
                s.day_spent_micro_usd,
                s.day_period,
                s.month_spent_micro_usd,
                s.month_period,
            );
        }
    }
}

/// Writes `file` to `dir` whole: beside it first, then renamed over it.
fn save(dir: &Path, file: &File) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let text = serde_json::to_vec_pretty(file).map_err(std::io::Error::other)?;
    let temporary = dir.join(format!("{FILE_NAME}.tmp"));
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, dir.join(FILE_NAME))
}

/// The thread that writes the spend.
pub struct Keeper {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Keeper {
    /// Starts writing the spend of `current()` (the running generation's keys) to `dir`.
    pub fn start(dir: PathBuf, current: impl Fn() -> Arc<Registry> + Send + 'static) -> Keeper {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ringgate-spend".into())
            .spawn(move || {
                let mut written = File::default();
                let mut failing = false;
                loop {
                    let last = stopping.load(Ordering::Acquire);
                    let now = collect(&current());
                    if now != written {
                        match save(&dir, &now) {
                            Ok(()) => {
                                written = now;
                                failing = false;
                            }
                            Err(e) if !failing => {
                                log::error!("spend: cannot write {}: {e}", dir.display());
                                failing = true;
                            }
                            Err(_) => {}
                        }
                    }
                    if last {
                        return;
                    }
                    std::thread::park_timeout(EVERY);
                }
            })
            .ok();
        if thread.is_none() {
            log::error!("spend: no thread to write it; spend will not survive a restart");
        }
        Keeper { stop, thread }
    }

    /// Writes the spend one last time and ends the thread.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.stop();
    }
}
