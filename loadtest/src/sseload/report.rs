//! The result of a run: a table for people and JSON for scripts.
//!
//! `scripts/bench.sh` reads the JSON, so its field names are an interface: add fields, never
//! rename them. Numbers are µs unless their name says otherwise; parts that do not apply to a
//! run (stream statistics of a non-stream run, CPU without `--cpu-pid`, …) are `null`.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::args::{Mode, Plan};
use super::stats::{ErrorKind, Stats, StreamCounts, Summary};

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub label: String,
    pub mode: &'static str,
    pub stream: bool,
    pub threads: usize,
    /// The client threads' I/O driver (`io_uring` or `epoll`).
    pub io_driver: &'static str,
    /// Closed loop: connections; open loop: the most connections; hold: streams.
    pub concurrency: usize,
    /// Open loop: the requests/s asked for.
    pub target_rate: Option<f64>,
    /// The measured time, s.
    pub duration_s: f64,
    pub requests: u64,
    pub errors: u64,
    pub error_kinds: BTreeMap<String, u64>,
    /// Requests per second over the measured time.
    pub rate: f64,
    pub latency_us: Summary,
    pub stream_stats: Option<StreamReport>,
    pub cpu: Option<CpuReport>,
    pub rss: Option<RssReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StreamReport {
    /// Send (or scheduled) time to the first complete event.
    pub ttfe_us: Summary,
    /// Arrival of each delta minus its send time stamped by the mock.
    pub event_delay_us: Summary,
    #[serde(flatten)]
    pub counts: StreamCounts,
    pub reads: u64,
    pub reads_per_event: f64,
    pub body_bytes: u64,
    pub body_bytes_per_s: f64,
    /// Hold mode: the most streams open at once that had their first event.
    pub held_max: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CpuReport {
    pub pids: Vec<u32>,
    pub cpu_us: u64,
    pub cpu_us_per_request: f64,
    /// Stream runs: `cpu_us` over the complete events the client received (every event of the
    /// stream, frame and pings included); null otherwise.
    pub cpu_us_per_event: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RssReport {
    pub pids: Vec<u32>,
    pub baseline_kib: u64,
    pub peak_kib: u64,
    /// Hold mode: (peak − baseline) / held streams.
    pub per_stream_kib: Option<f64>,
}

/// What the run measured beside the threads' counts.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    pub duration_s: f64,
    pub held_max: Option<u64>,
    pub cpu_us: Option<u64>,
    /// (baseline, peak) KiB.
    pub rss_kib: Option<(u64, u64)>,
}

fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

fn per(n: f64, d: f64) -> f64 {
    if d > 0.0 {
        n / d
    } else {
        0.0
    }
}

impl Report {
    pub fn new(plan: &Plan, stats: &Stats, m: &Measured) -> Report {
        let (concurrency, target_rate) = match plan.mode {
            Mode::Closed { concurrency } => (concurrency, None),
            Mode::Open { rate, connections } => (connections, Some(rate)),
            Mode::Hold { streams, .. } => (streams, None),
        };
        let mut error_kinds: BTreeMap<String, u64> =
            ErrorKind::FIXED.iter().map(|k| (k.name(), 0)).collect();
        for (kind, &n) in &stats.errors {
            *error_kinds.entry(kind.name()).or_insert(0) += n;
        }
        let s = &stats.stream;
        let stream_stats = plan.stream.then(|| StreamReport {
            ttfe_us: Summary::of(&s.ttfe),
            event_delay_us: Summary::of(&s.event_delay),
            counts: s.counts,
            reads: stats.reads,
            reads_per_event: round(per(stats.reads as f64, s.counts.events as f64), 3),
            body_bytes: stats.body_bytes,
            body_bytes_per_s: round(per(stats.body_bytes as f64, m.duration_s), 1),
            held_max: m.held_max,
        });
        Report {
            label: plan.label.clone(),
            mode: plan.mode.name(),
            stream: plan.stream,
            threads: plan.threads,
            io_driver: plan.driver.name(),
            concurrency,
            target_rate,
            duration_s: round(m.duration_s, 3),
            requests: stats.requests,
            errors: stats.errors_total(),
            error_kinds,
            rate: round(per(stats.requests as f64, m.duration_s), 1),
            latency_us: Summary::of(&stats.latency),
            stream_stats,
            cpu: m.cpu_us.map(|cpu_us| CpuReport {
                pids: plan.cpu_pids.clone(),
                cpu_us,
                cpu_us_per_request: round(per(cpu_us as f64, stats.requests as f64), 2),
                cpu_us_per_event: plan
                    .stream
                    .then(|| round(per(cpu_us as f64, s.counts.events as f64), 3)),
            }),
            rss: m.rss_kib.map(|(baseline_kib, peak_kib)| RssReport {
                pids: plan.rss_pids.clone(),
                baseline_kib,
                peak_kib,
                per_stream_kib: m.held_max.filter(|&h| h > 0).map(|held| {
                    round(
                        peak_kib.saturating_sub(baseline_kib) as f64 / held as f64,
                        2,
                    )
                }),
            }),
        }
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report is plain data")
    }

    /// The readable summary printed on stdout.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let target = self
            .target_rate
            .map_or(String::new(), |r| format!(" target={r}/s"));
        let _ = writeln!(
            t,
            "{}  mode={}{target} stream={} threads={} ({}) concurrency={} duration={:.2}s",
            self.label,
            self.mode,
            self.stream,
            self.threads,
            self.io_driver,
            self.concurrency,
            self.duration_s
        );
        let errors: Vec<String> = self
            .error_kinds
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        let _ = writeln!(
            t,
            "  requests {:>10}   rate {:>10.1}/s   errors {}{}",
            self.requests,
            self.rate,
            self.errors,
            if errors.is_empty() {
                String::new()
            } else {
                format!(" ({})", errors.join(", "))
            }
        );
        let row = |t: &mut String, name: &str, s: &Summary| {
            let _ = writeln!(
                t,
                "  {name:<14} p50 {:>9}  p90 {:>9}  p99 {:>9}  p99.9 {:>9}  max {:>9}  mean {:>11.1}",
                s.p50, s.p90, s.p99, s.p999, s.max, s.mean
            );
        };
        row(&mut t, "latency µs", &self.latency_us);
        if let Some(s) = &self.stream_stats {
            row(&mut t, "ttfe µs", &s.ttfe_us);
            row(&mut t, "event delay µs", &s.event_delay_us);
            let c = &s.counts;
            let _ = writeln!(
                t,
                "  events {} (deltas {}/{}), reads/event {:.3}, lost {}, garbled {}, error events {}, incomplete {}, body {:.0} B/s",
                c.events,
                c.deltas_received,
                c.deltas_expected,
                s.reads_per_event,
                c.lost_events,
                c.garbled_events,
                c.error_events,
                c.incomplete_streams,
                s.body_bytes_per_s
            );
            if let Some(held) = s.held_max {
                let _ = writeln!(t, "  held_max {held}");
            }
        }
        if let Some(c) = &self.cpu {
            let per_event = c
                .cpu_us_per_event
                .map_or(String::new(), |e| format!(", {e:.3} µs/event"));
            let _ = writeln!(
                t,
                "  cpu {} µs over pids {:?}: {:.2} µs/request{per_event}",
                c.cpu_us, c.pids, c.cpu_us_per_request
            );
        }
        if let Some(r) = &self.rss {
            let per_stream = r
                .per_stream_kib
                .map_or(String::new(), |k| format!(", {k:.2} KiB/stream"));
            let _ = writeln!(
                t,
                "  rss pids {:?}: baseline {} KiB, peak {} KiB{per_stream}",
                r.pids, r.baseline_kib, r.peak_kib
            );
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sseload::args::{Args, Plan};
    use clap::Parser;

    fn plan(extra: &[&str]) -> Plan {
        let args = Args::try_parse_from(
            ["sseload", "--url", "http://127.0.0.1:9", "--cpu-pid", "7"]
                .iter()
                .chain(extra),
        )
        .unwrap();
        Plan::from_args(&args).unwrap()
    }

    /// The JSON's keys, nested ones as `outer.inner`.
    fn keys(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
        if let Some(map) = v.as_object() {
            for (k, inner) in map {
                let name = format!("{prefix}{k}");
                out.push(name.clone());
                if k != "error_kinds" {
                    keys(inner, &format!("{name}."), out);
                }
            }
        }
    }

    #[test]
    fn the_json_has_the_agreed_shape() {
        let mut stats = Stats {
            requests: 10,
            reads: 30,
            ..Stats::default()
        };
        stats.stream.counts.events = 20;
        stats.error(ErrorKind::Status(502));
        let m = Measured {
            duration_s: 2.0,
            held_max: Some(4),
            cpu_us: Some(1000),
            rss_kib: Some((100, 140)),
        };
        let r = Report::new(&plan(&["--hold", "4"]), &stats, &m);
        let v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        let mut got = Vec::new();
        keys(&v, "", &mut got);
        let summary = ["p50", "p90", "p99", "p999", "max", "mean"];
        let mut want: Vec<String> =
            "label mode stream threads io_driver concurrency target_rate duration_s \
            requests errors error_kinds rate latency_us stream_stats cpu rss"
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
        for s in summary {
            want.push(format!("latency_us.{s}"));
            want.push(format!("stream_stats.ttfe_us.{s}"));
            want.push(format!("stream_stats.event_delay_us.{s}"));
        }
        for k in "ttfe_us event_delay_us deltas_expected deltas_received events lost_events \
            garbled_events error_events incomplete_streams reads reads_per_event body_bytes \
            body_bytes_per_s held_max"
            .split_whitespace()
        {
            want.push(format!("stream_stats.{k}"));
        }
        for k in ["pids", "cpu_us", "cpu_us_per_request", "cpu_us_per_event"] {
            want.push(format!("cpu.{k}"));
        }
        for k in ["pids", "baseline_kib", "peak_kib", "per_stream_kib"] {
            want.push(format!("rss.{k}"));
        }
        got.sort();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(v["mode"], "hold");
        assert_eq!(v["rate"], 5.0);
        assert_eq!(v["errors"], 1);
        assert_eq!(v["error_kinds"]["status_502"], 1);
        assert_eq!(v["error_kinds"]["timeout"], 0);
        assert_eq!(v["stream_stats"]["reads_per_event"], 1.5);
        assert_eq!(v["stream_stats"]["held_max"], 4);
        assert_eq!(v["cpu"]["cpu_us_per_request"], 100.0);
        assert_eq!(v["cpu"]["cpu_us_per_event"], 50.0);
        assert_eq!(v["rss"]["per_stream_kib"], 10.0);
        assert!(r.table().contains("status_502=1"), "{}", r.table());
    }

    #[test]
    fn absent_parts_are_null() {
        let m = Measured {
            duration_s: 1.0,
            ..Measured::default()
        };
        let r = Report::new(&plan(&["--rate", "50"]), &Stats::default(), &m);
        let v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        for k in ["stream_stats", "cpu", "rss"] {
            assert!(v[k].is_null(), "{k}");
        }
        assert_eq!(v["target_rate"], 50.0);
        assert_eq!(v["concurrency"], 512);
        assert_eq!(v["latency_us"]["p99"], 0);
        let r = Report::new(&plan(&["--stream"]), &Stats::default(), &m);
        let v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert!(v["stream_stats"]["held_max"].is_null());
        assert_eq!(v["target_rate"], serde_json::Value::Null);
        // CPU per event is a stream run's figure only.
        let m = Measured {
            cpu_us: Some(500),
            ..m
        };
        let stats = Stats {
            requests: 5,
            ..Stats::default()
        };
        let r = Report::new(&plan(&["--rate", "50"]), &stats, &m);
        let v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(v["cpu"]["cpu_us_per_request"], 100.0);
        assert!(v["cpu"]["cpu_us_per_event"].is_null());
    }
}
