//! `rregistry fsck`: runs the store's invariant checker
//! ([`rregistry::store::fsck`]) and prints what it found.

use rconfig::Config;
use rregistry::store::{Options, Registry};
use std::process::ExitCode;
use std::time::Instant;

pub async fn run(config: &Config, repair: bool) -> ExitCode {
    let backend = match rregistry::storage::open(config) {
        Ok(backend) => backend,
        Err(e) => {
            eprintln!("rregistry fsck: cannot open storage: {e}");
            return ExitCode::from(2);
        }
    };
    let registry = match Registry::open(backend, Options::from_config(config)).await {
        Ok(registry) => registry,
        Err(e) => {
            eprintln!("rregistry fsck: cannot open the registry: {e}");
            return ExitCode::from(2);
        }
    };
    let age = config.storage.maintenance.uploadpurging.age.0;
    let started = Instant::now();
    let report = match registry.fsck(age, repair).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("rregistry fsck: {e}");
            return ExitCode::from(2);
        }
    };
    for problem in &report.problems {
        println!("{problem}");
    }
    eprintln!(
        "rregistry fsck: {} blobs ({} bytes), {} repositories, {} tags, {} uploads checked in {:.1}s: {} problems{}",
        report.blobs,
        report.blob_bytes,
        report.repositories,
        report.tags,
        report.uploads,
        started.elapsed().as_secs_f64(),
        report.problems.len(),
        if repair {
            format!(", {} repaired", report.repaired)
        } else {
            String::new()
        }
    );
    if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
