//! The binary's signals: SIGHUP reloads the configuration file, SIGTERM and SIGINT drain, and a
//! second SIGTERM or SIGINT exits at once (status [`FORCED_EXIT`]: the drain was given up on).
//!
//! They are read on a thread of their own (`signal-hook`'s iterator), which does the reload's
//! work, binding and resolving included, off the workers.

use std::io;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use super::Control;
use crate::config::Config;

/// The exit status when a second signal cuts a drain short.
pub const FORCED_EXIT: i32 = 1;

/// Where a reload gets its configuration (the file read again, with the command line's
/// overrides); `None` when the gateway was started without a file.
pub type Source = Box<dyn Fn() -> Result<Config, String> + Send>;

/// Starts the thread that handles the signals for `control`.
pub fn spawn(control: Control, source: Option<Source>) -> io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("ringgate-signals".into())
        .spawn(move || {
            let mut stopping = false;
            for sig in signals.forever() {
                match sig {
                    SIGHUP => reload(&control, source.as_deref()),
                    _ if stopping => {
                        log::warn!("signal {sig} received again: exiting at once");
                        std::process::exit(FORCED_EXIT);
                    }
                    _ => {
                        stopping = true;
                        log::info!(
                            "signal {sig} received: draining (no new connections; requests in \
                             flight have up to {} ms; send it again to exit at once)",
                            control.drain_timeout().as_millis()
                        );
                        control.drain();
                    }
                }
            }
        })?;
    Ok(())
}

fn reload(control: &Control, source: Option<&(dyn Fn() -> Result<Config, String> + Send)>) {
    let Some(load) = source else {
        log::warn!(
            "SIGHUP received, but the gateway was started without --config: nothing to reload"
        );
        return;
    };
    log::info!("SIGHUP received: reloading the configuration");
    match load() {
        // `reload` logs its outcome either way.
        Ok(config) => {
            let _ = control.reload(config);
        }
        Err(e) => log::error!(
            "reload refused: {e}; still serving generation {}",
            control.generation()
        ),
    }
}
