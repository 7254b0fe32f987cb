//! Lifts the open-file limit, so thousands of connections fit in one process.
//!
//! Holding 20,000 streams takes 20,000 sockets on each side, more than a default soft limit.
//! The soft limit is raised to the hard one; a privileged process raises the hard one too (up
//! to the kernel's `fs.nr_open`), because the common default hard limit of 20,000 or so leaves
//! no room for anything beside the sockets.

/// Raises `RLIMIT_NOFILE` as far as allowed; returns the soft limit now in force.
pub fn raise_open_files() -> libc::rlim_t {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<libc::rlim_t>().ok())
        .unwrap_or(0)
        .min(1 << 20);
    for max in [nr_open.max(lim.rlim_max), lim.rlim_max] {
        let want = libc::rlimit {
            rlim_cur: max,
            rlim_max: max,
        };
        // SAFETY: setrlimit reads the struct it is given; failing leaves the limit as it was.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
            return max;
        }
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_ends_at_least_at_the_hard_one() {
        let mut before = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut before) },
            0
        );
        let now = super::raise_open_files();
        assert!(now >= before.rlim_max, "{now} < {}", before.rlim_max);
    }
}
