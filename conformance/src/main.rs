//! `oci-conformance`: runs the OCI distribution-spec conformance workflows
//! (push, pull, content discovery, referrers, content management) against
//! any registry URL, printing a PASS/FAIL line per check and a summary
//! `N passed, N failed`. Exits 1 when a check failed.
//!
//! - [`client`]: the HTTP client the checks use.
//! - [`data`]: the data sets pushed and read back.
//! - [`workflows`]: the checks, one module per workflow.
//! - [`report`]: results and summary.

mod client;
mod data;
mod report;
mod workflows;

use clap::Parser;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Parser)]
#[command(
    name = "oci-conformance",
    version,
    about = "OCI distribution-spec conformance checks against a registry URL"
)]
struct Cli {
    /// The registry's base URL, such as http://127.0.0.1:5000.
    url: String,
    /// Repository prefix the checks push under (a run-unique suffix is added).
    #[arg(long, default_value = "conformance")]
    namespace: String,
    /// Skip the content management workflow (for registries with delete disabled).
    #[arg(long)]
    no_delete: bool,
    /// Accept invalid TLS certificates.
    #[arg(long)]
    insecure: bool,
    /// User for registries with auth (Basic, or the token flow).
    #[arg(long, env = "OCI_USERNAME")]
    username: Option<String>,
    /// Password for `--username`.
    #[arg(long, env = "OCI_PASSWORD", hide_env_values = true)]
    password: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("oci-conformance: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    let credentials = cli.username.clone().zip(cli.password.clone());
    let client = match client::Client::new(&cli.url, cli.insecure, credentials) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("oci-conformance: {e}");
            return ExitCode::from(2);
        }
    };
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let suffix = format!("{:x}", seed & 0xffff_ffff);
    let mut run = workflows::Run {
        client,
        report: report::Report::default(),
        repo: format!("{}/{suffix}/main", cli.namespace),
        other_repo: format!("{}/{suffix}/mount-target", cli.namespace),
        data: data::DataSet::new(seed),
    };
    println!(
        "OCI distribution-spec conformance against {} (repository {})",
        cli.url, run.repo
    );
    workflows::push::run(&mut run).await;
    workflows::pull::run(&mut run).await;
    workflows::discovery::run(&mut run).await;
    workflows::referrers::run(&mut run).await;
    if !cli.no_delete {
        workflows::management::run(&mut run).await;
    }
    if !run.report.failed.is_empty() {
        println!("\nFailed checks:");
        for name in &run.report.failed {
            println!("  {name}");
        }
    }
    println!("\n{}", run.report.summary());
    if run.report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
