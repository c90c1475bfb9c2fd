//! Engine scenarios: `rctl run --rm IMAGE true` against `docker run`,
//! unpacking the client scenarios' image with layers applied in parallel
//! against one at a time, and `rctl build` against docker's classic
//! builder, cold and cached.

use crate::clients::{pulled_store, rctl, run, time, Fixture};
use crate::docker::Dockerd;
use crate::report::{Better, Measure, Report, Row, Sample};
use crate::{Context, Plan, Result};
use rengine::applier::ApplyOptions;
use rengine::snapshot::Snapshotter;
use rengine::store::ContentStore;
use rengine::unpack::unpack_image;
use std::path::Path;
use std::time::Instant;

const GROUP: &str = "engine";
const BUSYBOX: &str = "localhost/bench/busybox:1";

fn row(
    key: &str,
    scenario: &str,
    unit: &'static str,
    better: Better,
    ours: Measure,
    peer: Measure,
    note: &str,
) -> Row {
    Row {
        key: key.to_string(),
        group: GROUP,
        scenario: scenario.to_string(),
        unit,
        better,
        ours,
        peer: Some(peer),
        note: note.to_string(),
    }
}

/// busybox `FROM scratch` (Debian's busybox-static), built by docker and
/// loaded into rctl's store under the same name.
fn busybox(plan: &Plan, docker: &Dockerd, root: &Path) -> Result<()> {
    let ctx = plan.work.join("busybox-context");
    std::fs::create_dir_all(&ctx).context("creating the busybox context")?;
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or("busybox is not installed (apt-get install busybox-static)")?;
    std::fs::copy(busybox, ctx.join("busybox")).context("copying busybox")?;
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCMD [\"sh\"]\n",
    )
    .context("writing the busybox Dockerfile")?;
    run(docker
        .docker()
        .args(["build", "-q", "--network", "none", "-t", BUSYBOX])
        .arg(&ctx))?;
    let archive = plan.work.join("busybox.tar");
    run(docker
        .docker()
        .args(["save", "-o"])
        .arg(&archive)
        .arg(BUSYBOX))?;
    run(rctl(plan, root).args(["load", "-q", "-i"]).arg(&archive))
}

fn run_true(plan: &Plan, docker: &Dockerd, root: &Path, report: &mut Report) -> Result<()> {
    let rctl_run = || time(rctl(plan, root).args(["run", "--rm", BUSYBOX, "true"]));
    let docker_run = || {
        time(
            docker
                .docker()
                .args(["run", "--rm", "--network", "none", BUSYBOX, "true"]),
        )
    };
    rctl_run()?; // warm both (rctl unpacks on first use)
    docker_run()?;
    let (mut ours, mut peer) = (Measure::new("rctl"), Measure::new("docker"));
    for _ in 0..plan.run_true {
        ours.samples.push(Sample::value(rctl_run()? * 1000.0));
        peer.samples.push(Sample::value(docker_run()? * 1000.0));
    }
    let scenario = format!("run --rm IMAGE true (median of {})", plan.run_true);
    report.rows.push(row(
        "run_true",
        &scenario,
        "ms",
        Better::Lower,
        ours,
        peer,
        "docker with --network none; rctl's default is a private loopback-only namespace",
    ));
    Ok(())
}

fn unpack(plan: &Plan, fixture: &Fixture, report: &mut Report) -> Result<()> {
    let root = pulled_store(plan);
    if !root.exists() {
        run(rctl(plan, &root).args(["pull", "-q", &fixture.image]))?;
    }
    let store = ContentStore::open(&root).context("opening the pulled store")?;
    let image = store
        .resolve(&fixture.image)
        .context("resolving the pulled image")?
        .ok_or("the pulled image is not in the store")?;
    let (mut parallel, mut serial) = (Measure::new("5 at once"), Measure::new("1 at a time"));
    for _ in 0..plan.runs {
        for (workers, measure) in [(5, &mut parallel), (1, &mut serial)] {
            let scratch = plan.work.join("unpack-scratch");
            let snapshots = Snapshotter::open(&scratch).context("opening a scratch snapshotter")?;
            let started = Instant::now();
            let unpacked = unpack_image(
                &store,
                &snapshots,
                &image.digest,
                workers,
                ApplyOptions::for_current_user(),
            );
            let seconds = started.elapsed().as_secs_f64();
            std::fs::remove_dir_all(&scratch).context("removing the scratch snapshotter")?;
            unpacked.context("unpacking")?;
            measure.samples.push(Sample::value(seconds));
        }
    }
    report.rows.push(row(
        "unpack",
        "unpack of the 5-layer image",
        "s",
        Better::Lower,
        parallel,
        serial,
        "the engine, layers applied in parallel vs one at a time (as docker does)",
    ));
    Ok(())
}

fn build(plan: &Plan, docker: &Dockerd, root: &Path, report: &mut Report) -> Result<()> {
    let ctx = plan.work.join("build-context");
    std::fs::create_dir_all(ctx.join("data")).context("creating the build context")?;
    for i in 1..=20 {
        std::fs::write(
            ctx.join(format!("data/f{i}")),
            crate::blob::random_bytes(256 * 1024)?,
        )
        .context("writing the build context")?;
    }
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {BUSYBOX}\nENV APP=/app\nWORKDIR /app\nCOPY data/ /app/data/\n\
             RUN for i in $(seq 1 200); do echo line $i >> /app/log; done\n\
             RUN tar -czf /app/data.tgz /app/data\nRUN sha256sum /app/data.tgz > /app/sum\n\
             LABEL bench=build\nCMD [\"cat\", \"/app/sum\"]\n"
        ),
    )
    .context("writing the Dockerfile")?;
    let rctl_build = |cold: bool| {
        let mut command = rctl(plan, root);
        command.args(["build", "-q", "--network", "none", "-t", "bench/app:1"]);
        if cold {
            command.arg("--no-cache");
        }
        time(command.arg(&ctx))
    };
    let docker_build = |cold: bool| {
        let mut command = docker.docker();
        command.args(["build", "-q", "--network", "none", "-t", "bench/app:1"]);
        if cold {
            command.arg("--no-cache");
        }
        time(command.arg(&ctx))
    };
    rctl_build(false)?; // both must work before timing
    docker_build(false)?;
    let mut measures: Vec<Measure> = ["rctl", "rctl", "docker", "docker"]
        .iter()
        .map(|s| Measure::new(s))
        .collect();
    for _ in 0..plan.runs {
        measures[0].samples.push(Sample::value(rctl_build(true)?));
        measures[2].samples.push(Sample::value(docker_build(true)?));
        measures[1].samples.push(Sample::value(rctl_build(false)?));
        measures[3]
            .samples
            .push(Sample::value(docker_build(false)?));
    }
    let note = "9 steps on busybox; docker's classic builder (DOCKER_BUILDKIT=0)";
    report.rows.push(row(
        "build_cold",
        "build, cold (--no-cache)",
        "s",
        Better::Lower,
        measures[0].clone(),
        measures[2].clone(),
        note,
    ));
    report.rows.push(row(
        "build_cached",
        "build, every step cached",
        "s",
        Better::Lower,
        measures[1].clone(),
        measures[3].clone(),
        note,
    ));
    Ok(())
}

pub fn run_scenarios(
    report: &mut Report,
    plan: &Plan,
    docker: &Dockerd,
    fixture: &Fixture,
) -> Result<()> {
    let root = plan.work.join("rctl-engine");
    eprintln!("engine: busybox image");
    busybox(plan, docker, &root)?;
    eprintln!("engine: run --rm true");
    run_true(plan, docker, &root, report)?;
    eprintln!("engine: unpack");
    unpack(plan, fixture, report)?;
    eprintln!("engine: build");
    build(plan, docker, &root, report)?;
    Ok(())
}
