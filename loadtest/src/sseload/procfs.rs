//! The CPU time and resident memory of other processes.
//!
//! A gateway's cost per request and per held stream is the number a benchmark is after, and the
//! kernel keeps both for every process: its CPU time (all threads, those that ended included)
//! behind the process's CPU-time clock (`clock_getcpuclockid`), in nanoseconds, and `VmRSS` in
//! `/proc/PID/status`. Reading them from outside needs nothing from the process measured.
//!
//! The clock rather than `utime + stime` of `/proc/PID/stat`: those count whole clock ticks
//! (10 ms), and a stream lane of a few seconds costs a gateway a few milliseconds, so CPU per
//! event would be 0 or a multiple of 10 ms over the events.

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

/// The CPU-time clocks or the open `/proc` files of some processes, read again each time. Both
/// are had once, at the start: at the peak of a hold run every file descriptor this process may
/// have can be a socket, and the measurement that matters most must not fail for want of one
/// (a clock needs none).
pub struct Probe {
    clocks: Vec<(u32, libc::clockid_t)>,
    files: Vec<(u32, File)>,
    text: String,
}

impl Probe {
    /// Gets the clock or opens the file `kind` needs for each of `pids`; an error names the
    /// process.
    pub fn open(pids: &[u32], kind: Kind) -> io::Result<Probe> {
        let mut probe = Probe {
            clocks: Vec::new(),
            files: Vec::new(),
            text: String::new(),
        };
        for &pid in pids {
            let named = |e: io::Error| io::Error::new(e.kind(), format!("process {pid}: {e}"));
            match kind {
                Kind::Cpu => probe.clocks.push((pid, cpu_clock(pid).map_err(named)?)),
                Kind::Rss => probe.files.push((
                    pid,
                    File::open(format!("/proc/{pid}/status")).map_err(named)?,
                )),
            }
        }
        probe.read()?;
        Ok(probe)
    }

    /// The sum over the processes, now.
    pub fn read(&mut self) -> io::Result<u64> {
        let mut total = 0;
        for &(pid, clock) in &self.clocks {
            total += clock_us(clock)
                .map_err(|e| io::Error::new(e.kind(), format!("process {pid}: {e}")))?;
        }
        for (pid, file) in &mut self.files {
            self.text.clear();
            file.rewind()?;
            file.read_to_string(&mut self.text)
                .map_err(|e| io::Error::new(e.kind(), format!("process {pid}: {e}")))?;
            total += parse_rss_kib(&self.text).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("process {pid}: unexpected /proc contents"),
                )
            })?;
        }
        Ok(total)
    }
}

/// The CPU-time clock of process `pid` (all its threads).
fn cpu_clock(pid: u32) -> io::Result<libc::clockid_t> {
    // 0 would be this process, and the kernel reads a clock id made of a negative number as
    // another kind of clock: only real process ids.
    let pid = libc::pid_t::try_from(pid)
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a process id"))?;
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `clock` is a valid place for the result.
    match unsafe { libc::clock_getcpuclockid(pid, &mut clock) } {
        0 => Ok(clock),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// A CPU-time clock's reading, µs.
fn clock_us(clock: libc::clockid_t) -> io::Result<u64> {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid place for the result.
    if unsafe { libc::clock_gettime(clock, &mut t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1_000)
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
    fn parses_status() {
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

    #[test]
    fn cpu_time_is_counted_in_microseconds_over_all_threads() {
        let me = std::process::id();
        let mut cpu = Probe::open(&[me], Kind::Cpu).unwrap();
        let before = cpu.read().unwrap();
        // A thread that spins 30 ms and ends: its time stays in the process's clock.
        std::thread::spawn(|| {
            let spin = std::time::Instant::now();
            while spin.elapsed() < std::time::Duration::from_millis(30) {}
        })
        .join()
        .unwrap();
        let spent = cpu.read().unwrap() - before;
        assert!(spent >= 25_000, "{spent}");
        // Not whole 10 ms ticks.
        assert!(
            !before.is_multiple_of(10_000) || !spent.is_multiple_of(10_000),
            "{before} {spent}"
        );
        // No such process (above the largest pid_max), and ids that are no process's.
        for pid in [4_194_305, 0, u32::MAX] {
            let e = Probe::open(&[pid], Kind::Cpu).err().unwrap();
            assert!(e.to_string().contains(&pid.to_string()), "{e}");
        }
    }
}
