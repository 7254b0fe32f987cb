//! The Prometheus text exposition format (version 0.0.4): family headers, samples, histograms,
//! and the escaping of label values that come from clients (model ids).

use std::fmt::{Display, Write};

use super::cell::HistogramSnapshot;

pub struct Exposition<'a> {
    out: &'a mut String,
}

impl<'a> Exposition<'a> {
    pub fn new(out: &'a mut String) -> Exposition<'a> {
        Exposition { out }
    }

    /// `# HELP` and `# TYPE`: once per family, before its samples.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.out, " {value}");
    }

    /// The cumulative buckets, `_sum` (in seconds) and `_count` of one histogram.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
        h: &HistogramSnapshot,
    ) {
        let mut cumulative = 0;
        for (i, n) in h.buckets.iter().enumerate() {
            cumulative += n;
            let le = bounds.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            let _ = write!(self.out, "{name}_bucket");
            self.labels(labels, Some(&le));
            let _ = writeln!(self.out, " {cumulative}");
        }
        let sum = h.sum_ns as f64 / 1e9;
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, cumulative);
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let all = labels.iter().copied().chain(le.map(|le| ("le", le)));
        for (i, (k, v)) in all.enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape_into(self.out, v);
            self.out.push('"');
        }
        self.out.push('}');
    }
}

fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_escape_label_values() {
        let mut out = String::new();
        let mut e = Exposition::new(&mut out);
        e.family("x_total", "counter", "What x\\counts.");
        e.sample("x_total", &[("model", "a\"b\\c\nd"), ("status", "200")], 3);
        e.sample("up", &[], 1);
        assert_eq!(
            out,
            "# HELP x_total What x\\\\counts.\n# TYPE x_total counter\n\
             x_total{model=\"a\\\"b\\\\c\\nd\",status=\"200\"} 3\nup 1\n"
        );
    }

    #[test]
    fn histograms_are_cumulative_with_sum_in_seconds() {
        let mut out = String::new();
        let h = HistogramSnapshot {
            buckets: vec![1, 0, 2],
            sum_ns: 1_500_000,
        };
        Exposition::new(&mut out).histogram("t_seconds", &[("stream", "true")], &[0.001, 1.0], &h);
        assert_eq!(
            out,
            "t_seconds_bucket{stream=\"true\",le=\"0.001\"} 1\n\
             t_seconds_bucket{stream=\"true\",le=\"1\"} 1\n\
             t_seconds_bucket{stream=\"true\",le=\"+Inf\"} 3\n\
             t_seconds_sum{stream=\"true\"} 0.0015\n\
             t_seconds_count{stream=\"true\"} 3\n"
        );
    }
}
