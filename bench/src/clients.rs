//! Client scenarios, on one rregistry: pull and push of a 5-layer image
//! (random and compressible layers) by `rctl`, `docker` and `skopeo`.
//! Also builds that image, which the engine's unpack scenario reuses.

use crate::docker::Dockerd;
use crate::report::{Better, Measure, Report, Row, Sample};
use crate::server::{Kind, Server};
use crate::{Context, Plan, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const GROUP: &str = "clients";

/// Runs a command to success, its output kept for the error.
pub fn run(command: &mut Command) -> Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        return Err(format!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }
    Ok(())
}

/// Runs a command to success; seconds taken.
pub fn time(command: &mut Command) -> Result<f64> {
    let started = Instant::now();
    run(command)?;
    Ok(started.elapsed().as_secs_f64())
}

/// The test image, built by docker and pushed to `server`.
pub struct Fixture {
    /// The registry serving the image, kept running while the fixture lives.
    _server: Server,
    pub image: String,
    pub blob_bytes: u64,
}

fn write_random(path: &Path, len: usize) -> Result<()> {
    std::fs::write(path, crate::blob::random_bytes(len)?).context("writing a layer file")
}

fn write_text(path: &Path, len: usize, seed: usize) -> Result<()> {
    let line = format!("compressible line {seed} of the benchmark image\n");
    let text: String = line.repeat(len / line.len() + 1);
    std::fs::write(path, &text.as_bytes()[..len]).context("writing a layer file")
}

impl Fixture {
    pub fn build(plan: &Plan, docker: &Dockerd) -> Result<Fixture> {
        eprintln!("clients: building the 5-layer image");
        let server = Server::start(
            Kind::Rregistry,
            &plan.rregistry,
            &plan.work.join("clients-registry"),
        )?;
        let ctx = plan.work.join("image-context");
        std::fs::create_dir_all(&ctx).context("creating the image context")?;
        let (random, text) = plan.image_layers;
        for i in 1..=3 {
            write_random(&ctx.join(format!("random{i}")), random)?;
        }
        for i in 1..=2 {
            write_text(&ctx.join(format!("text{i}")), text, i)?;
        }
        std::fs::write(
            ctx.join("Dockerfile"),
            "FROM scratch\nCOPY random1 /r1\nCOPY random2 /r2\nCOPY random3 /r3\nCOPY text1 /t1\nCOPY text2 /t2\n",
        )
        .context("writing the Dockerfile")?;
        let image = format!("{}/bench/image:1", server.addr);
        run(docker
            .docker()
            .args(["build", "-q", "--network", "none", "-t", &image])
            .arg(&ctx))?;
        run(docker.docker().args(["push", &image]))?;
        run(docker.docker().args(["rmi", &image]))?;
        let blob_bytes = dir_bytes(&server.data_dir().join("blobs"))?;
        Ok(Fixture {
            _server: server,
            image,
            blob_bytes,
        })
    }
}

fn dir_bytes(path: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(path).with_context(|| format!("reading {}", path.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// An `rctl` command on the engine root `root`.
pub fn rctl(plan: &Plan, root: &Path) -> Command {
    let mut command = Command::new(&plan.rctl);
    command.arg("--root").arg(root);
    command
}

fn fresh(path: &Path) -> Result<()> {
    if path.exists() {
        std::fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

fn seconds_row(key: &str, scenario: String, ours: &Measure, peer: &Measure, note: String) -> Row {
    Row {
        key: key.to_string(),
        group: GROUP,
        scenario,
        unit: "s",
        better: Better::Lower,
        ours: ours.clone(),
        peer: Some(peer.clone()),
        note,
    }
}

pub fn run_scenarios(
    report: &mut Report,
    plan: &Plan,
    docker: &Dockerd,
    fixture: &Fixture,
) -> Result<()> {
    let image = &fixture.image;
    let rctl_root = plan.work.join("rctl-clients");
    let oci = plan.work.join("skopeo-oci");
    let mb = fixture.blob_bytes as f64 / 1e6;
    let (mut rctl_pull, mut docker_pull, mut skopeo_pull) = (
        Measure::new("rctl"),
        Measure::new("docker"),
        Measure::new("skopeo"),
    );
    for run_index in 0..plan.runs {
        eprintln!("clients: pull, run {}", run_index + 1);
        fresh(&rctl_root)?;
        rctl_pull.samples.push(Sample::value(time(
            rctl(plan, &rctl_root).args(["pull", "-q", image]),
        )?));
        let _ = docker.docker().args(["rmi", image]).output();
        docker_pull.samples.push(Sample::value(time(
            docker.docker().args(["pull", "-q", image]),
        )?));
        fresh(&oci)?;
        skopeo_pull.samples.push(Sample::value(time(
            Command::new("skopeo")
                .args(["copy", "-q", "--src-tls-verify=false"])
                .arg(format!("docker://{image}"))
                .arg(format!("oci:{}:bench", oci.display())),
        )?));
    }
    let scenario = format!("pull of a 5-layer image ({mb:.0} MB)");
    report.rows.push(seconds_row(
        "pull_docker",
        scenario.clone(),
        &rctl_pull,
        &docker_pull,
        "rctl and docker unpack the layers too".into(),
    ));
    report.rows.push(seconds_row(
        "pull_skopeo",
        scenario,
        &rctl_pull,
        &skopeo_pull,
        "skopeo copy docker:// oci: (no unpack)".into(),
    ));

    // Pushes go to a registry emptied before each, so nothing is skipped or mounted.
    let mut target = Server::start(
        Kind::Rregistry,
        &plan.rregistry,
        &plan.work.join("push-registry"),
    )?;
    let pushed = format!("{}/bench/pushed:1", target.addr);
    run(rctl(plan, &rctl_root).args(["tag", image, &pushed]))?;
    run(docker.docker().args(["tag", image, &pushed]))?;
    let (mut rctl_push, mut docker_push, mut skopeo_push) = (
        Measure::new("rctl"),
        Measure::new("docker"),
        Measure::new("skopeo"),
    );
    for run_index in 0..plan.runs {
        eprintln!("clients: push, run {}", run_index + 1);
        target.restart_empty()?;
        rctl_push.samples.push(Sample::value(time(
            rctl(plan, &rctl_root).args(["push", "-q", &pushed]),
        )?));
        target.restart_empty()?;
        docker_push.samples.push(Sample::value(time(
            docker
                .docker()
                .args(["push", &pushed])
                .stdout(Stdio::null()),
        )?));
        target.restart_empty()?;
        skopeo_push.samples.push(Sample::value(time(
            Command::new("skopeo")
                .args(["copy", "-q", "--dest-tls-verify=false"])
                .arg(format!("oci:{}:bench", oci.display()))
                .arg(format!("docker://{pushed}")),
        )?));
    }
    let scenario = format!("push of the same image ({mb:.0} MB)");
    report.rows.push(seconds_row(
        "push_docker",
        scenario.clone(),
        &rctl_push,
        &docker_push,
        "docker recompresses layers it pulled".into(),
    ));
    report.rows.push(seconds_row(
        "push_skopeo",
        scenario,
        &rctl_push,
        &skopeo_push,
        "skopeo copy oci: docker://".into(),
    ));
    Ok(())
}

/// Where the engine scenarios find a store holding the image.
pub fn pulled_store(plan: &Plan) -> PathBuf {
    plan.work.join("rctl-clients")
}
