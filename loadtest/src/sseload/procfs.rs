//! The CPU time and resident memory of other processes, read from `/proc`.
//!
//! A gateway's cost per request and per held stream is the number a benchmark is after, and the
//! kernel keeps both for every process: `utime + stime` in `/proc/PID/stat` (all threads, in
//! clock ticks) and `VmRSS` in `/proc/PID/status`. Reading them from outside needs nothing from
//! the process measured.

use std::fs::File;
use std::io::{self, Read, Seek};

/// What to read of each process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// CPU time (user + system, all threads) so far, µs.
    Cpu,
    /// Resident set size, KiB.
    Rss,
}

/// Open `/proc` files of some processes, read again each time. They are opened once, at the
/// start: at the peak of a hold run every file descriptor this process may have can be a
/// socket, and the measurement that matters most must not fail for want of one.
pub struct Probe {
    kind: Kind,
    files: Vec<(u32, File)>,
    text: String,
}

impl Probe {
    /// Opens the file `kind` needs for each of `pids`; an error names the process.
    pub fn open(pids: &[u32], kind: Kind) -> io::Result<Probe> {
        let name = match kind {
            Kind::Cpu => "stat",
            Kind::Rss => "status",
        };
        let files = pids
            .iter()
            .map(|&pid| {
                File::open(format!("/proc/{pid}/{name}"))
                    .map(|f| (pid, f))
                    .map_err(|e| io::Error::new(e.kind(), format!("process {pid}: {e}")))
            })
            .collect::<io::Result<_>>()?;
        let mut probe = Probe {
            kind,
            files,
            text: String::new(),
        };
        probe.read()?;
        Ok(probe)
    }

    /// The sum over the processes, now.
    pub fn read(&mut self) -> io::Result<u64> {
        let mut total = 0;
        for (pid, file) in &mut self.files {
            self.text.clear();
            file.rewind()?;
            file.read_to_string(&mut self.text)
                .map_err(|e| io::Error::new(e.kind(), format!("process {pid}: {e}")))?;
            total += match self.kind {
                Kind::Cpu => {
                    parse_cpu_ticks(&self.text).map(|t| t * 1_000_000 / clock_ticks_per_second())
                }
                Kind::Rss => parse_rss_kib(&self.text),
            }
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("process {pid}: unexpected /proc contents"),
                )
            })?;
        }
        Ok(total)
    }
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
    fn reads_this_process_again_and_again() {
        let me = std::process::id();
        let mut rss = Probe::open(&[me], Kind::Rss).unwrap();
        assert!(rss.read().unwrap() > 100);
        let mut cpu = Probe::open(&[me, me], Kind::Cpu).unwrap();
        let before = cpu.read().unwrap();
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(50) {}
        // Re-read through the same open files: fresh numbers.
        assert!(cpu.read().unwrap() > before, "{before}");
        let e = Probe::open(&[me, u32::MAX], Kind::Rss).err().unwrap();
        assert!(e.to_string().contains(&u32::MAX.to_string()), "{e}");
    }
}
