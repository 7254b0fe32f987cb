//! The CPU time and resident memory of other processes, read from `/proc`.
//!
//! A gateway's cost per request and per held stream is the number a benchmark is after, and the
//! kernel keeps both for every process: `utime + stime` in `/proc/PID/stat` (all threads, in
//! clock ticks) and `VmRSS` in `/proc/PID/status`. Reading them from outside needs nothing from
//! the process measured.

use std::io;

/// CPU time (user + system, all threads) used so far by `pid`, µs.
pub fn cpu_us(pid: u32) -> io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = parse_cpu_ticks(&stat).ok_or_else(|| bad(pid, "stat"))?;
    Ok(ticks * 1_000_000 / clock_ticks_per_second())
}

/// The resident set size of `pid`, KiB.
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_rss_kib(&status).ok_or_else(|| bad(pid, "status"))
}

/// The sum of `read` over `pids`; an error names the first process that could not be read.
pub fn sum(pids: &[u32], read: fn(u32) -> io::Result<u64>) -> io::Result<u64> {
    pids.iter().try_fold(0, |total, &pid| {
        read(pid)
            .map(|v| total + v)
            .map_err(|e| io::Error::new(e.kind(), format!("process {pid}: {e}")))
    })
}

fn bad(pid: u32, file: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected /proc/{pid}/{file}"),
    )
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as u64
    } else {
        100
    }
}

/// `utime + stime` from a `/proc/PID/stat` line. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`: state is the first after it, utime
/// the 12th, stime the 13th.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS` (KiB) from `/proc/PID/status`.
pub fn parse_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_ascii_whitespace();
    let kib = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(kib)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_and_status() {
        let stat = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 600 0 0 0 123 45 0 0 20 0 3 0";
        assert_eq!(parse_cpu_ticks(stat), Some(168));
        assert_eq!(parse_cpu_ticks("1 (x) S 1 2"), None);
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t3\n";
        assert_eq!(parse_rss_kib(status), Some(5120));
        assert_eq!(parse_rss_kib("Name:\tkthreadd\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 100);
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(30) {}
        assert!(cpu_us(me).unwrap() > 0);
        assert!(sum(&[me, me], rss_kib).unwrap() > 200);
        let e = sum(&[me, u32::MAX], rss_kib).unwrap_err();
        assert!(e.to_string().contains(&u32::MAX.to_string()), "{e}");
    }
}
