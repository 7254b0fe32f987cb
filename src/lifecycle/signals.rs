//! The binary's signals: SIGHUP reloads the configuration file, SIGTERM and SIGINT drain, and a
//! second SIGTERM or SIGINT exits at once (status [`FORCED_EXIT`]: the drain was given up on).
//!
//! They are read on a thread of their own (`signal-hook`'s iterator), which does the reload's
//! work, binding and resolving included, off the workers.

use std::io;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use super::Control;

/// The exit status when a second signal cuts a drain short.
pub const FORCED_EXIT: i32 = 1;

/// Starts the thread that handles the signals for `control` (a reload reads the configuration
/// from the control's source; see [`Control::set_source`]).
pub fn spawn(control: Control) -> io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("ringgate-signals".into())
        .spawn(move || {
            let mut stopping = false;
            for sig in signals.forever() {
                match sig {
                    SIGHUP => {
                        log::info!("SIGHUP received: reloading the configuration");
                        // It logs its outcome either way.
                        let _ = control.reload_from_source();
                    }
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
