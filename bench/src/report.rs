//! The results of one run: rows (a scenario, our figure, a peer's figure,
//! the ratio), the machine's limits, the targets met or missed; printed as
//! one table and written as JSON.

use crate::stats::median;
use serde_json::{json, Value};

/// Which way a figure improves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Better {
    Higher,
    Lower,
}

/// One system's figures for one run of a scenario.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub value: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub rss_mib: Option<f64>,
}

impl Sample {
    pub fn value(value: f64) -> Sample {
        Sample {
            value,
            ..Sample::default()
        }
    }
}

/// One system's samples over the runs, reported by their medians.
#[derive(Clone, Debug)]
pub struct Measure {
    pub system: String,
    pub samples: Vec<Sample>,
}

impl Measure {
    pub fn new(system: &str) -> Measure {
        Measure {
            system: system.to_string(),
            samples: Vec::new(),
        }
    }

    pub fn value(&self) -> f64 {
        median(&self.samples.iter().map(|s| s.value).collect::<Vec<_>>())
    }

    fn optional(&self, pick: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
        let values: Vec<f64> = self.samples.iter().filter_map(pick).collect();
        (!values.is_empty()).then(|| median(&values))
    }

    pub fn p50_ms(&self) -> Option<f64> {
        self.optional(|s| s.p50_ms)
    }

    pub fn p99_ms(&self) -> Option<f64> {
        self.optional(|s| s.p99_ms)
    }

    pub fn rss_mib(&self) -> Option<f64> {
        self.optional(|s| s.rss_mib)
    }

    fn to_json(&self) -> Value {
        json!({
            "system": self.system,
            "median": self.value(),
            "samples": self.samples.iter().map(|s| s.value).collect::<Vec<_>>(),
            "p50_ms": self.p50_ms(),
            "p99_ms": self.p99_ms(),
            "peak_rss_mib": self.rss_mib(),
        })
    }
}

/// A scenario measured on our system and (usually) a peer.
#[derive(Clone, Debug)]
pub struct Row {
    pub key: String,
    pub group: &'static str,
    pub scenario: String,
    pub unit: &'static str,
    pub better: Better,
    pub ours: Measure,
    pub peer: Option<Measure>,
    pub note: String,
}

impl Row {
    /// How many times better ours is than the peer's (above 1: ours wins).
    pub fn ratio(&self) -> Option<f64> {
        let peer = self.peer.as_ref()?.value();
        let ours = self.ours.value();
        if ours <= 0.0 || peer <= 0.0 {
            return None;
        }
        Some(match self.better {
            Better::Higher => ours / peer,
            Better::Lower => peer / ours,
        })
    }
}

/// A limit of the machine, measured in the run.
#[derive(Clone, Debug)]
pub struct Limit {
    pub key: &'static str,
    pub name: &'static str,
    pub mb_per_s: f64,
}

/// A speed target from the issue, checked against the rows.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    /// `None` when this run did not measure it.
    pub met: Option<bool>,
    pub detail: String,
}

#[derive(Default)]
pub struct Report {
    pub mode: String,
    pub runs: usize,
    pub limits: Vec<Limit>,
    pub rows: Vec<Row>,
    pub targets: Vec<Target>,
}

fn figure(value: f64) -> String {
    if value >= 1000.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

fn pair(ours: Option<f64>, peer: Option<f64>) -> String {
    match (ours, peer) {
        (None, None) => String::new(),
        (o, p) => format!(
            "{} / {}",
            o.map(figure).unwrap_or_else(|| "-".into()),
            p.map(figure).unwrap_or_else(|| "-".into())
        ),
    }
}

impl Report {
    pub fn row(&self, key: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.key == key)
    }

    pub fn limit(&self, key: &str) -> Option<f64> {
        self.limits
            .iter()
            .find(|l| l.key == key)
            .map(|l| l.mb_per_s)
    }

    /// The table, the limits and the targets, as printed at the end of a run.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "bench/run ({} mode, median of {} run{})\n\n",
            self.mode,
            self.runs,
            if self.runs == 1 { "" } else { "s" }
        ));
        out.push_str("machine limits (measured in this run):\n");
        for limit in &self.limits {
            out.push_str(&format!(
                "  {:<40} {:>8.0} MB/s\n",
                limit.name, limit.mb_per_s
            ));
        }
        let header = [
            "scenario",
            "unit",
            "ours",
            "peer",
            "peer value",
            "ratio",
            "p99 ms ours/peer",
            "peak RSS MiB ours/peer",
            "note",
        ];
        let mut lines: Vec<[String; 9]> = vec![header.map(str::to_string)];
        let mut group = "";
        for row in &self.rows {
            if row.group != group {
                group = row.group;
                lines.push([
                    format!("[{group}]"),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
            }
            let peer = row.peer.as_ref();
            lines.push([
                row.scenario.clone(),
                row.unit.to_string(),
                format!("{} {}", row.ours.system, figure(row.ours.value())),
                peer.map(|p| p.system.clone()).unwrap_or_default(),
                peer.map(|p| figure(p.value())).unwrap_or_default(),
                row.ratio().map(|r| format!("{r:.2}x")).unwrap_or_default(),
                pair(row.ours.p99_ms(), peer.and_then(Measure::p99_ms)),
                pair(row.ours.rss_mib(), peer.and_then(Measure::rss_mib)),
                row.note.clone(),
            ]);
        }
        let mut widths = [0usize; 9];
        for line in &lines {
            for (w, cell) in widths.iter_mut().zip(line) {
                *w = (*w).max(cell.chars().count());
            }
        }
        out.push('\n');
        for line in &lines {
            let mut text = String::new();
            for (i, (cell, w)) in line.iter().zip(widths).enumerate() {
                if i == 0 || i == 8 {
                    text.push_str(&format!("{cell:<w$}  "));
                } else {
                    text.push_str(&format!("{cell:>w$}  "));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out.push_str(
            "\nratio: how many times better ours is (above 1: ours is ahead)\n\ntargets:\n",
        );
        for target in &self.targets {
            out.push_str(&format!(
                "  [{}] {}: {}\n",
                match target.met {
                    Some(true) => "met",
                    Some(false) => "MISSED",
                    None => "not measured",
                },
                target.name,
                target.detail
            ));
        }
        out
    }

    pub fn to_json(&self, started: &str, machine: Value) -> Value {
        json!({
            "started": started,
            "mode": self.mode,
            "runs": self.runs,
            "machine": machine,
            "limits": self.limits.iter().map(|l| json!({"key": l.key, "name": l.name, "mb_per_s": l.mb_per_s})).collect::<Vec<_>>(),
            "rows": self.rows.iter().map(|r| json!({
                "key": r.key,
                "group": r.group,
                "scenario": r.scenario,
                "unit": r.unit,
                "better": if r.better == Better::Higher { "higher" } else { "lower" },
                "ours": r.ours.to_json(),
                "peer": r.peer.as_ref().map(Measure::to_json),
                "ratio": r.ratio(),
                "note": r.note,
            })).collect::<Vec<_>>(),
            "targets": self.targets.iter().map(|t| json!({"name": t.name, "met": t.met, "detail": t.detail})).collect::<Vec<_>>(),
        })
    }
}
