//! How pull events are shown: on a terminal, one redrawn row per layer
//! with bytes and speed; otherwise one line per finished layer (and per
//! resumed download); with `-q`, nothing.

use rctl::pull::{short, Event};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Renders pull events.
pub enum Display {
    Quiet,
    Lines,
    Terminal(Mutex<Rows>),
}

pub struct Rows {
    rows: Vec<Row>,
    drawn: usize,
    last_draw: Option<Instant>,
}

struct Row {
    id: String,
    status: String,
    written: u64,
    size: u64,
    started: Instant,
}

impl Display {
    /// Rows on a terminal, lines otherwise, nothing when quiet.
    pub fn for_stdout(quiet: bool) -> Display {
        if quiet {
            Display::Quiet
        } else if std::io::stdout().is_terminal() {
            Display::Terminal(Mutex::new(Rows {
                rows: Vec::new(),
                drawn: 0,
                last_draw: None,
            }))
        } else {
            Display::Lines
        }
    }

    pub fn event(&self, event: Event<'_>) {
        match self {
            Display::Quiet => {}
            Display::Lines => match event {
                Event::Done { digest, status } => println!("{}: {status}", short(digest)),
                Event::Resuming {
                    digest,
                    written,
                    size,
                    why,
                } => {
                    println!(
                        "{}: {why}; resuming at {written} of {size} bytes",
                        short(digest)
                    )
                }
                Event::Progress { .. } | Event::Plan { .. } => {}
            },
            Display::Terminal(rows) => {
                let mut rows = rows.lock().unwrap_or_else(|p| p.into_inner());
                rows.update(event);
            }
        }
    }

    /// Draws the final state (on a terminal).
    pub fn finish(&self) {
        if let Display::Terminal(rows) = self {
            rows.lock().unwrap_or_else(|p| p.into_inner()).draw();
        }
    }
}

fn human(bytes: f64) -> String {
    let units = ["B", "kB", "MB", "GB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1000.0 && unit < units.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1}{}", units[unit])
}

impl Rows {
    fn row(&mut self, id: String) -> &mut Row {
        if let Some(i) = self.rows.iter().position(|r| r.id == id) {
            return &mut self.rows[i];
        }
        self.rows.push(Row {
            id,
            status: "Waiting".into(),
            written: 0,
            size: 0,
            started: Instant::now(),
        });
        let last = self.rows.len() - 1;
        &mut self.rows[last]
    }

    fn update(&mut self, event: Event<'_>) {
        let force = !matches!(event, Event::Progress { .. });
        match event {
            Event::Plan { .. } => return,
            Event::Progress {
                digest,
                written,
                size,
            } => {
                let row = self.row(short(digest));
                row.status = "Downloading".into();
                row.written = written;
                row.size = size;
            }
            Event::Done { digest, status } => {
                let row = self.row(short(digest));
                row.status = status.to_string();
                row.written = row.size;
            }
            Event::Resuming {
                digest, written, ..
            } => {
                let row = self.row(short(digest));
                row.status = "Resuming".into();
                row.written = written;
            }
        }
        let due = self
            .last_draw
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if force || due {
            self.draw();
        }
    }

    fn draw(&mut self) {
        let mut out = std::io::stdout().lock();
        if self.drawn > 0 {
            let _ = write!(out, "\x1b[{}A", self.drawn);
        }
        for row in &self.rows {
            let line = if row.status == "Downloading" || row.status == "Resuming" {
                let seconds = row.started.elapsed().as_secs_f64().max(0.001);
                let done = if row.size > 0 {
                    row.written as f64 / row.size as f64
                } else {
                    0.0
                };
                let filled = (done * 30.0) as usize;
                format!(
                    "{}: {} [{}>{}] {}/{} {}/s",
                    row.id,
                    row.status,
                    "=".repeat(filled.min(30)),
                    " ".repeat(30 - filled.min(30)),
                    human(row.written as f64),
                    human(row.size as f64),
                    human(row.written as f64 / seconds)
                )
            } else {
                format!("{}: {}", row.id, row.status)
            };
            let _ = writeln!(out, "\x1b[2K{line}");
        }
        let _ = out.flush();
        self.drawn = self.rows.len();
        self.last_draw = Some(Instant::now());
    }
}
