//! `rbench`: the side-by-side benchmarks behind `bench/run`. It measures
//! the machine's limits, then runs the registry scenarios (rregistry
//! against Distribution), the client scenarios (rctl against docker and
//! skopeo) and the engine scenarios (rctl against docker), alternating
//! the systems and repeating; prints one table with ratios and the speed
//! targets met or missed, and writes the same as JSON.

mod blob;
mod clients;
mod docker;
mod engine;
mod http;
mod limits;
mod load;
mod registry;
mod report;
mod server;
mod stats;
mod targets;

use clap::Parser;
use report::Report;
use std::fmt::Display;
use std::path::PathBuf;
use std::process::ExitCode;

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds what was being done to an error.
pub trait Context<T> {
    fn context(self, what: &str) -> Result<T>;
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: &str) -> Result<T> {
        self.map_err(|e| format!("{what}: {e}").into())
    }
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| format!("{}: {e}", what()).into())
    }
}

#[derive(Parser)]
#[command(about = "Side-by-side benchmarks: rregistry vs Distribution, rctl vs docker and skopeo")]
struct Args {
    /// Small sizes and short loads: the whole run in a few minutes.
    #[arg(long)]
    quick: bool,
    /// Runs of each scenario (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Scenario groups to run (registry, clients, engine); all by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Directory holding the release binaries (rregistry, rctl).
    #[arg(long, default_value = "target/release")]
    bin: PathBuf,
    /// Where the JSON results go.
    #[arg(long, default_value = "bench/results")]
    results: PathBuf,
}

/// What a run measures, and with what sizes.
pub struct Plan {
    pub work: PathBuf,
    pub rregistry: PathBuf,
    pub rctl: PathBuf,
    pub runs: usize,
    /// The big blob (monolithic and chunked scenarios).
    pub blob: u64,
    /// The blob the memory check compares with `blob` (full mode only).
    pub big_blob: Option<u64>,
    pub small_blobs: usize,
    /// Tags in the tags/list scenario, repositories in the catalog one.
    pub listing: usize,
    pub load_seconds: f64,
    /// Sizes of the image's 3 random layers and 2 compressible ones.
    pub image_layers: (usize, usize),
    pub run_true: usize,
}

const GIB: u64 = 1 << 30;

impl Plan {
    fn new(args: &Args, work: PathBuf) -> Plan {
        let (rregistry, rctl) = (args.bin.join("rregistry"), args.bin.join("rctl"));
        if args.quick {
            Plan {
                work,
                rregistry,
                rctl,
                runs: args.runs,
                blob: GIB / 4,
                big_blob: None,
                small_blobs: 1000,
                listing: 1000,
                load_seconds: 2.0,
                image_layers: (30_000_000, 20_000_000),
                run_true: 5,
            }
        } else {
            Plan {
                work,
                rregistry,
                rctl,
                runs: args.runs,
                blob: GIB,
                big_blob: Some(6 * GIB),
                small_blobs: 1000,
                listing: 10_000,
                load_seconds: 10.0,
                image_layers: (100_000_000, 60_000_000),
                run_true: 20,
            }
        }
    }
}

fn machine() -> serde_json::Value {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let memory = read("/proc/meminfo")
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    serde_json::json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "cpu": cpu,
        "memory": memory.split_whitespace().skip(1).collect::<Vec<_>>().join(" "),
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
    })
}

fn wanted(args: &Args, group: &str) -> bool {
    args.only.is_empty() || args.only.iter().any(|g| g == group)
}

fn bench(args: &Args, report: &mut Report, plan: &Plan) -> Result<()> {
    for binary in [&plan.rregistry, &plan.rctl] {
        if !binary.exists() {
            return Err(format!(
                "{} is missing: build with cargo build --release",
                binary.display()
            )
            .into());
        }
    }
    eprintln!("limits: sha256, disk, loopback");
    let pattern = blob::pattern()?;
    report.limits = limits::measure(&plan.work, &pattern)?;
    drop(pattern);
    if wanted(args, "registry") {
        registry::run(report, plan)?;
    }
    let (clients, engine) = (wanted(args, "clients"), wanted(args, "engine"));
    if clients || engine {
        if !nix::unistd::geteuid().is_root() {
            return Err("the client and engine scenarios run dockerd and containers: run as root, or pass --only registry".into());
        }
        let docker = docker::Dockerd::start(&plan.work.join("docker"))?;
        let fixture = clients::Fixture::build(plan, &docker)?;
        if clients {
            clients::run_scenarios(report, plan, &docker, &fixture)?;
        }
        if engine {
            engine::run_scenarios(report, plan, &docker, &fixture)?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.runs == 0 {
        eprintln!("rbench: --runs must be at least 1");
        return ExitCode::from(2);
    }
    let started_nanos = rengine::runtime::time::now_nanos();
    let work = std::env::temp_dir().join(format!("rbench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&work) {
        eprintln!("rbench: creating {}: {e}", work.display());
        return ExitCode::FAILURE;
    }
    let plan = Plan::new(&args, work.clone());
    let mut report = Report {
        mode: if args.quick { "quick" } else { "full" }.to_string(),
        runs: plan.runs,
        ..Report::default()
    };
    let outcome = bench(&args, &mut report, &plan);
    // Every server and dockerd is stopped by now (dropped); the work goes too.
    if let Err(e) = std::fs::remove_dir_all(&work) {
        eprintln!("rbench: removing {}: {e}", work.display());
    }
    if let Err(e) = outcome {
        eprintln!("rbench: {e}");
        return ExitCode::FAILURE;
    }
    targets::check(&mut report, &plan);
    println!("{}", report.render());
    let started = rengine::runtime::time::rfc3339(started_nanos);
    let json = report.to_json(&started, machine());
    let name = format!(
        "{}-{}.json",
        started.replace(':', "").split('.').next().unwrap_or("run"),
        report.mode
    );
    let path = args.results.join(name);
    let written = std::fs::create_dir_all(&args.results).and_then(|_| {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&json).unwrap_or_default() + "\n",
        )
    });
    match written {
        Ok(()) => {
            println!("results: {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rbench: writing {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}
