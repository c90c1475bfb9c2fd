//! `unpack-bench ROOT NAME WORKERS RUNS`: unpacks the image NAME of the
//! OCI layout at ROOT into a fresh overlay2 snapshotter RUNS times with
//! WORKERS layers at once, and prints the median wall time in seconds.
//! Run as root (whiteouts and owners need it).

use rengine::applier::ApplyOptions;
use rengine::snapshot::Snapshotter;
use rengine::store::ContentStore;
use rengine::unpack::unpack_image;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, root, name, workers, runs] = args.as_slice() else {
        eprintln!("usage: unpack-bench ROOT NAME WORKERS RUNS");
        return ExitCode::from(2);
    };
    let (Ok(workers), Ok(runs)) = (workers.parse::<usize>(), runs.parse::<usize>()) else {
        eprintln!("unpack-bench: WORKERS and RUNS are numbers");
        return ExitCode::from(2);
    };
    match run(root, name, workers, runs.max(1)) {
        Ok(median) => {
            println!("{median:.3}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("unpack-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    root: &str,
    name: &str,
    workers: usize,
    runs: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let store = ContentStore::open(root)?;
    let image = store
        .resolve(name)?
        .ok_or_else(|| format!("no image {name} in {root}"))?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let scratch = std::env::temp_dir().join(format!("unpack-bench-{}", std::process::id()));
        let snapshots = Snapshotter::open(&scratch)?;
        let started = Instant::now();
        let unpacked = unpack_image(
            &store,
            &snapshots,
            &image.digest,
            workers,
            ApplyOptions::for_current_user(),
        );
        let elapsed = started.elapsed().as_secs_f64();
        std::fs::remove_dir_all(&scratch)?;
        unpacked?;
        times.push(elapsed);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}
