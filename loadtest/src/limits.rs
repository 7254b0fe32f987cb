//! Lifts the open-file limit, so thousands of connections fit in one process.
//!
//! Holding 20,000 streams takes 20,000 sockets on each side, more than a default soft limit.
//! Beyond what the gateway does (soft up to hard), a privileged load tool also lifts the hard
//! limit (up to the kernel's `fs.nr_open`), because the common default hard limit of 20,000 or
//! so leaves no room for anything beside the sockets.

/// Raises `RLIMIT_NOFILE` as far as allowed; returns the soft limit now in force (0 if it
/// cannot be read).
pub fn raise_open_files() -> libc::rlim_t {
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<libc::rlim_t>().ok())
        .unwrap_or(0)
        .min(1 << 20);
    let want = libc::rlimit {
        rlim_cur: nr_open,
        rlim_max: nr_open,
    };
    // SAFETY: setrlimit reads the struct it is given. Without the privilege it fails (or would
    // lower a higher limit, which the check rules out) and leaves the limit as it was.
    let mut now = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut now) } == 0 && nr_open > now.rlim_max {
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) };
    }
    ringgate::runtime::raise_open_files_limit().unwrap_or(0)
}
