//! Registry scenarios, rregistry against Distribution: big blobs
//! (monolithic and chunked), many small blobs from concurrent clients,
//! manifest `GET`/`HEAD` by tag under load, and the two listings.

use crate::blob::{pattern, random_bytes, size_name, BlobSource};
use crate::http::{location_path, with_param, BodyMode, Conn};
use crate::load::{constant, pool, timed};
use crate::report::{Better, Measure, Report, Row, Sample};
use crate::server::{Kind, Server};
use crate::{Context, Plan, Result};
use sha2::{Digest as _, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};

const GROUP: &str = "registry";
/// Small blobs with their digests, shared by the clients of a run.
type SmallBlobs = Arc<Vec<(String, Vec<u8>)>>;
/// Bodies are written in pieces of this size, as curl and Go clients do.
const SEND_SIZE: usize = 256 * 1024;
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

fn block<T>(future: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(future)
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn expect(status: u16, wanted: u16, what: &str) -> Result<()> {
    if status == wanted {
        Ok(())
    } else {
        Err(format!("{what}: expected {wanted}, got {status}").into())
    }
}

/// Runs `measure` on every server, `runs` times, flipping the order each
/// run; each sample gets the server's peak RSS during it.
fn alternate(
    servers: &[Server],
    runs: usize,
    mut measure: impl FnMut(&Server, usize) -> Result<Sample>,
) -> Result<Vec<Measure>> {
    let mut measures: Vec<Measure> = servers
        .iter()
        .map(|s| Measure::new(s.kind.name()))
        .collect();
    for run in 0..runs {
        let mut order: Vec<usize> = (0..servers.len()).collect();
        if run % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let server = &servers[i];
            // What the previous sample left dirty is written back first, not during this one.
            nix::unistd::sync();
            server.reset_peak_rss();
            let mut sample = measure(server, run)
                .with_context(|| format!("{} (run {})", server.kind.name(), run + 1))?;
            sample.rss_mib = server.peak_rss_mib();
            measures[i].samples.push(sample);
        }
    }
    Ok(measures)
}

fn row(
    key: &str,
    scenario: String,
    unit: &'static str,
    better: Better,
    mut measures: Vec<Measure>,
    note: String,
) -> Row {
    let peer = (measures.len() > 1).then(|| measures.remove(1));
    Row {
        key: key.to_string(),
        group: GROUP,
        scenario,
        unit,
        better,
        ours: measures.remove(0),
        peer,
        note,
    }
}

/// Starts an upload; the path to send the blob to.
async fn start_upload(conn: &mut Conn, repo: &str) -> Result<String> {
    let started = conn
        .request(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            &[],
            b"",
            BodyMode::Keep,
        )
        .await?;
    expect(started.status, 202, "starting an upload")?;
    Ok(location_path(&started)?)
}

/// Sends a request head and its body in writes of [`SEND_SIZE`], the
/// first with the head (as curl does: no tiny packet ahead of the body).
async fn send_body(conn: &mut Conn, mut head: Vec<u8>, segments: Vec<&[u8]>) -> Result<()> {
    let mut pieces = segments.into_iter().flat_map(|s| s.chunks(SEND_SIZE));
    for piece in pieces.by_ref() {
        head.extend_from_slice(piece);
        if head.len() >= SEND_SIZE {
            break;
        }
    }
    conn.send_raw(&head).await?;
    for piece in pieces {
        conn.send_raw(piece).await?;
    }
    Ok(())
}

/// `POST` then one `PUT ?digest=` with the whole blob; seconds taken.
async fn push_monolithic(addr: &str, repo: &str, blob: &BlobSource, digest: &str) -> Result<f64> {
    let mut conn = Conn::connect(addr).await?;
    let started = Instant::now();
    let upload = start_upload(&mut conn, repo).await?;
    let path = with_param(&upload, &format!("digest={digest}"));
    let head = conn.head(
        "PUT",
        &path,
        &[("Content-Type", "application/octet-stream")],
        Some(blob.size),
    );
    send_body(&mut conn, head, blob.segments(0, blob.size)).await?;
    let done = conn.read_response(false, BodyMode::Keep).await?;
    expect(done.status, 201, "finishing a monolithic upload")?;
    Ok(started.elapsed().as_secs_f64())
}

/// `POST`, a `PATCH` per `chunk` bytes (with `Content-Range`), then `PUT ?digest=`.
async fn push_chunked(
    addr: &str,
    repo: &str,
    blob: &BlobSource,
    digest: &str,
    chunk: u64,
) -> Result<f64> {
    let mut conn = Conn::connect(addr).await?;
    let started = Instant::now();
    let mut upload = start_upload(&mut conn, repo).await?;
    let mut at = 0;
    while at < blob.size {
        let len = chunk.min(blob.size - at);
        let range = format!("{at}-{}", at + len - 1);
        let head = conn.head(
            "PATCH",
            &upload,
            &[
                ("Content-Type", "application/octet-stream"),
                ("Content-Range", &range),
            ],
            Some(len),
        );
        send_body(&mut conn, head, blob.segments(at, len)).await?;
        let answer = conn.read_response(false, BodyMode::Keep).await?;
        expect(answer.status, 202, "sending a chunk")?;
        upload = location_path(&answer)?;
        at += len;
    }
    let path = with_param(&upload, &format!("digest={digest}"));
    let done = conn.request("PUT", &path, &[], b"", BodyMode::Keep).await?;
    expect(done.status, 201, "finishing a chunked upload")?;
    Ok(started.elapsed().as_secs_f64())
}

/// `GET` of a blob, read and dropped; seconds taken.
async fn pull_blob(addr: &str, repo: &str, digest: &str, size: u64) -> Result<f64> {
    let mut conn = Conn::connect(addr).await?;
    let started = Instant::now();
    let answer = conn
        .request(
            "GET",
            &format!("/v2/{repo}/blobs/{digest}"),
            &[],
            b"",
            BodyMode::Discard,
        )
        .await?;
    expect(answer.status, 200, "pulling a blob")?;
    if answer.body_len != size {
        return Err(format!("pulled {} bytes of a {size}-byte blob", answer.body_len).into());
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Pushes a small blob in one `POST` + `PUT`.
async fn push_small(conn: &mut Conn, repo: &str, bytes: &[u8], digest: &str) -> Result<()> {
    let upload = start_upload(conn, repo).await?;
    let path = with_param(&upload, &format!("digest={digest}"));
    let done = conn
        .request(
            "PUT",
            &path,
            &[("Content-Type", "application/octet-stream")],
            bytes,
            BodyMode::Keep,
        )
        .await?;
    expect(done.status, 201, "finishing a small upload")
}

/// A row of big-blob transfers in MB/s: `transfer` (seconds taken) on
/// every server with run `i`'s blob of `blobs`, in `bench/{prefix}-{i}`.
fn transfer_row(
    report: &mut Report,
    servers: &[Server],
    blobs: &[(BlobSource, String)],
    prefix: &str,
    (key, scenario): (&str, String),
    note: String,
    transfer: impl Fn(&Server, &str, &BlobSource, &str) -> Result<f64>,
) -> Result<()> {
    let measures = alternate(servers, blobs.len(), |server, run| {
        let (blob, digest) = &blobs[run];
        let seconds = transfer(server, &format!("bench/{prefix}-{run}"), blob, digest)?;
        Ok(Sample::value(mb_per_s(blob.size, seconds)))
    })?;
    report
        .rows
        .push(row(key, scenario, "MB/s", Better::Higher, measures, note));
    Ok(())
}

/// One blob of `size` per run (salted from `salt`), with its digest: each
/// run pushes new content, the same to every server.
fn blobs_per_run(
    pattern: &Arc<Vec<u8>>,
    size: u64,
    runs: usize,
    salt: u64,
) -> Vec<(BlobSource, String)> {
    (0..runs)
        .map(|run| {
            let blob = BlobSource::new(pattern.clone(), size, salt + run as u64);
            let digest = blob.digest();
            (blob, digest)
        })
        .collect()
}

/// Writes back and drops the page cache (needs root).
fn drop_page_cache() -> std::io::Result<()> {
    nix::unistd::sync();
    std::fs::write("/proc/sys/vm/drop_caches", "3")
}

fn mb_per_s(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / 1e6 / seconds
}

/// The image the manifest and listing scenarios use: a config and one layer.
struct Image {
    config: (String, Vec<u8>),
    layer: (String, Vec<u8>),
    manifest: Vec<u8>,
    /// A manifest with the config only, put under many tags and repositories.
    bare: Vec<u8>,
}

impl Image {
    fn new() -> Result<Image> {
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{}}"#.to_vec();
        let layer = random_bytes(4096)?;
        let (config_digest, layer_digest) = (sha256(&config), sha256(&layer));
        let descriptor = |media: &str, digest: &str, size: usize| {
            format!(r#"{{"mediaType":"{media}","digest":"{digest}","size":{size}}}"#)
        };
        let config_descriptor = descriptor(
            "application/vnd.oci.image.config.v1+json",
            &config_digest,
            config.len(),
        );
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MANIFEST_TYPE}","config":{config_descriptor},"layers":[{}]}}"#,
            descriptor(
                "application/vnd.oci.image.layer.v1.tar+gzip",
                &layer_digest,
                layer.len()
            )
        );
        let bare = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MANIFEST_TYPE}","config":{config_descriptor},"layers":[]}}"#
        );
        Ok(Image {
            config: (config_digest, config),
            layer: (layer_digest, layer),
            manifest: manifest.into_bytes(),
            bare: bare.into_bytes(),
        })
    }
}

async fn put_manifest(conn: &mut Conn, repo: &str, tag: &str, manifest: &[u8]) -> Result<()> {
    let answer = conn
        .request(
            "PUT",
            &format!("/v2/{repo}/manifests/{tag}"),
            &[("Content-Type", MANIFEST_TYPE)],
            manifest,
            BodyMode::Keep,
        )
        .await?;
    expect(answer.status, 201, "putting a manifest")
}

/// Pushes the image as `bench/manifest:latest`, `count` tags of the bare
/// manifest in `bench/tags`, and `count` repositories `bench/repo-N`.
fn populate(server: &Server, image: &Arc<Image>, count: usize) -> Result<()> {
    let addr = server.addr.clone();
    block(async {
        let mut conn = Conn::connect(&addr).await?;
        for (digest, bytes) in [&image.config, &image.layer] {
            push_small(&mut conn, "bench/manifest", bytes, digest).await?;
            push_small(&mut conn, "bench/tags", bytes, digest).await?;
        }
        put_manifest(&mut conn, "bench/manifest", "latest", &image.manifest).await
    })?;
    let tags_image = image.clone();
    pool(&addr, 16, count, move |mut conn, i| {
        let image = tags_image.clone();
        async move {
            put_manifest(&mut conn, "bench/tags", &format!("tag-{i:05}"), &image.bare).await?;
            Ok((conn, Vec::new()))
        }
    })?;
    let repo_image = image.clone();
    pool(&addr, 16, count, move |mut conn, i| {
        let image = repo_image.clone();
        async move {
            let repo = format!("bench/repo-{i:05}");
            let path = format!(
                "/v2/{repo}/blobs/uploads/?mount={}&from=bench/manifest",
                image.config.0
            );
            let mounted = conn
                .request("POST", &path, &[], b"", BodyMode::Keep)
                .await?;
            expect(mounted.status, 201, "mounting the config")?;
            put_manifest(&mut conn, &repo, "latest", &image.bare).await?;
            Ok((conn, Vec::new()))
        }
    })?;
    Ok(())
}

/// How many entries a listing returns (following `Link` pages).
fn count_entries(addr: &str, first: &str, field: &str) -> Result<usize> {
    block(async {
        let mut conn = Conn::connect(addr).await?;
        let mut path = first.to_string();
        let mut total = 0;
        loop {
            let answer = conn.request("GET", &path, &[], b"", BodyMode::Keep).await?;
            expect(answer.status, 200, "listing")?;
            let body: serde_json::Value = serde_json::from_slice(&answer.body)?;
            total += body[field].as_array().map(Vec::len).unwrap_or(0);
            match answer
                .header("link")
                .and_then(|l| l.split(['<', '>']).nth(1))
            {
                Some(next) => path = next.to_string(),
                None => return Ok(total),
            }
        }
    })
}

fn load_sample(mut result: crate::load::LoadResult) -> Sample {
    let (p50, p99) = result.p50_p99_ms();
    Sample {
        value: result.per_second(),
        p50_ms: Some(p50),
        p99_ms: Some(p99),
        rss_mib: None,
    }
}

pub fn run(report: &mut Report, plan: &Plan) -> Result<()> {
    let dir = plan.work.join("registry");
    let mut servers = [
        Server::start(Kind::Rregistry, &plan.rregistry, &dir.join("rregistry"))?,
        Server::start(
            Kind::Distribution,
            &plan.rregistry,
            &dir.join("distribution"),
        )?,
    ];
    let pattern = pattern()?;
    let runs = plan.runs;

    // Big blobs, monolithic: one blob per run, the same for both servers.
    eprintln!("registry: {} blob push and pull", size_name(plan.blob));
    let blobs = blobs_per_run(&pattern, plan.blob, runs, 0);
    transfer_row(
        report,
        &servers,
        &blobs,
        "blob",
        (
            "blob_push",
            format!("blob push {} (monolithic)", size_name(plan.blob)),
        ),
        String::new(),
        |server, repo, blob, digest| block(push_monolithic(&server.addr, repo, blob, digest)),
    )?;
    // Pulls from the page cache (the blob pulled once, untimed, first) and
    // from the disk (the page cache dropped), so that neither system is
    // judged by what its push happened to leave in the cache (rregistry
    // writes blobs around it; Distribution through it).
    let pull = |server: &Server, repo: &str, blob: &BlobSource, digest: &str| {
        block(pull_blob(&server.addr, repo, digest, blob.size))
    };
    transfer_row(
        report,
        &servers,
        &blobs,
        "blob",
        (
            "blob_pull",
            format!("blob pull {} (cached)", size_name(plan.blob)),
        ),
        String::new(),
        |server, repo, blob, digest| {
            pull(server, repo, blob, digest)?;
            pull(server, repo, blob, digest)
        },
    )?;
    if drop_page_cache().is_ok() {
        transfer_row(
            report,
            &servers,
            &blobs,
            "blob",
            (
                "blob_pull_cold",
                format!("blob pull {} (from disk)", size_name(plan.blob)),
            ),
            "page cache dropped before each pull".into(),
            |server, repo, blob, digest| {
                drop_page_cache().context("dropping the page cache")?;
                pull(server, repo, blob, digest)
            },
        )?;
    }

    // Chunked.
    eprintln!("registry: chunked push");
    let chunked = blobs_per_run(&pattern, plan.blob, runs, 1000);
    transfer_row(
        report,
        &servers,
        &chunked,
        "chunked",
        (
            "blob_push_chunked",
            format!("blob push {} in 16 MiB chunks", size_name(plan.blob)),
        ),
        String::new(),
        |server, repo, blob, digest| {
            block(push_chunked(
                &server.addr,
                repo,
                blob,
                digest,
                16 * 1024 * 1024,
            ))
        },
    )?;
    drop(chunked);

    // Small blobs from concurrent clients.
    eprintln!("registry: small blobs");
    let small: Vec<SmallBlobs> = (0..runs)
        .map(|_| {
            (0..plan.small_blobs)
                .map(|_| random_bytes(4096).map(|b| (sha256(&b), b)))
                .collect::<std::io::Result<Vec<_>>>()
                .map(Arc::new)
        })
        .collect::<std::io::Result<_>>()?;
    let clients = 32;
    let push = alternate(&servers, runs, |server, run| {
        let blobs = small[run].clone();
        let repo = format!("bench/small-{run}");
        let result = pool(&server.addr, clients, blobs.len(), move |mut conn, i| {
            let (blobs, repo) = (blobs.clone(), repo.clone());
            async move {
                let (digest, bytes) = &blobs[i];
                let (upload, t1) = timed(start_upload(&mut conn, &repo)).await?;
                let path = with_param(&upload, &format!("digest={digest}"));
                let (done, t2) = timed(async {
                    Ok(conn
                        .request(
                            "PUT",
                            &path,
                            &[("Content-Type", "application/octet-stream")],
                            bytes,
                            BodyMode::Keep,
                        )
                        .await?)
                })
                .await?;
                expect(done.status, 201, "finishing a small upload")?;
                Ok((conn, vec![t1, t2]))
            }
        })?;
        Ok(load_sample(result))
    })?;
    let note = format!(
        "{} blobs of 4 KiB, {clients} clients, POST+PUT each",
        plan.small_blobs
    );
    report.rows.push(row(
        "small_push",
        "small blobs push".into(),
        "req/s",
        Better::Higher,
        push,
        note,
    ));
    let pull = alternate(&servers, runs, |server, run| {
        let blobs = small[run].clone();
        let repo = format!("bench/small-{run}");
        let result = pool(&server.addr, clients, blobs.len(), move |mut conn, i| {
            let (blobs, repo) = (blobs.clone(), repo.clone());
            async move {
                let (digest, bytes) = &blobs[i];
                let path = format!("/v2/{repo}/blobs/{digest}");
                let (answer, t) = timed(async {
                    Ok(conn.request("GET", &path, &[], b"", BodyMode::Keep).await?)
                })
                .await?;
                expect(answer.status, 200, "pulling a small blob")?;
                if answer.body != *bytes {
                    return Err("a small blob came back different".into());
                }
                Ok((conn, vec![t]))
            }
        })?;
        Ok(load_sample(result))
    })?;
    report.rows.push(row(
        "small_pull",
        "small blobs pull".into(),
        "req/s",
        Better::Higher,
        pull,
        format!("{} blobs, {clients} clients", plan.small_blobs),
    ));

    // Manifests and listings.
    eprintln!(
        "registry: populating {} tags and {} repositories",
        plan.listing, plan.listing
    );
    let image = Arc::new(Image::new()?);
    for server in &servers {
        populate(server, &image, plan.listing)
            .with_context(|| format!("populating {}", server.kind.name()))?;
    }
    let duration = Duration::from_secs_f64(plan.load_seconds);
    for (key, method) in [("manifest_get", "GET"), ("manifest_head", "HEAD")] {
        eprintln!("registry: manifest {method} by tag");
        let measures = alternate(&servers, runs, |server, _| {
            let request = format!(
                "{method} /v2/bench/manifest/manifests/latest HTTP/1.1\r\nHost: {}\r\nAccept: {MANIFEST_TYPE}\r\n\r\n",
                server.addr
            );
            Ok(load_sample(constant(
                &server.addr,
                64,
                duration,
                &request,
                method == "HEAD",
                200,
            )?))
        })?;
        report.rows.push(row(
            key,
            format!("manifest {method} by tag"),
            "req/s",
            Better::Higher,
            measures,
            "64 connections".into(),
        ));
    }
    for (key, path, field, what) in [
        ("tags_list", "/v2/bench/tags/tags/list", "tags", "tags"),
        (
            "catalog",
            "/v2/_catalog?n=100000",
            "repositories",
            "repositories",
        ),
    ] {
        eprintln!("registry: {key}");
        let mut counts = Vec::new();
        for server in &servers {
            let count = count_entries(&server.addr, path, field)?;
            if count < plan.listing {
                return Err(format!(
                    "{} lists {count} {what}, fewer than the {} pushed",
                    server.kind.name(),
                    plan.listing
                )
                .into());
            }
            counts.push(count);
        }
        let measures = alternate(&servers, runs, |server, _| {
            let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
            Ok(load_sample(constant(
                &server.addr,
                4,
                duration,
                &request,
                false,
                200,
            )?))
        })?;
        let scenario = if key == "catalog" {
            format!("_catalog of {} repositories", plan.listing)
        } else {
            format!("tags/list of {} tags", plan.listing)
        };
        report.rows.push(row(
            key,
            scenario,
            "req/s",
            Better::Higher,
            measures,
            format!("4 connections, {} {what} listed", counts[0]),
        ));
    }

    // Memory against blob size: rregistry alone, restarted so that what
    // the listing scenarios left in its heap does not count; the smaller
    // blob is measured again in the same state, then the big one.
    if let Some(big) = plan.big_blob {
        eprintln!(
            "registry: {} and {} blob push and pull (memory)",
            size_name(plan.blob),
            size_name(big)
        );
        servers[0].restart_empty()?;
        let ours = &servers[0];
        for (size, salt, suffix) in [(plan.blob, 9998, "_base"), (big, 9999, "")] {
            let blob = BlobSource::new(pattern.clone(), size, salt);
            let digest = blob.digest();
            let repo = format!("bench/memory{suffix}");
            for verb in ["push", "pull"] {
                nix::unistd::sync();
                ours.reset_peak_rss();
                let seconds = if verb == "push" {
                    block(push_monolithic(&ours.addr, &repo, &blob, &digest))?
                } else {
                    block(pull_blob(&ours.addr, &repo, &digest, blob.size))?
                };
                let mut measure = Measure::new(Kind::Rregistry.name());
                measure.samples.push(Sample {
                    rss_mib: ours.peak_rss_mib(),
                    ..Sample::value(mb_per_s(size, seconds))
                });
                report.rows.push(row(
                    &format!("memory_{verb}{suffix}"),
                    format!("blob {verb} {} (memory, fresh server)", size_name(size)),
                    "MB/s",
                    Better::Higher,
                    vec![measure],
                    "peak RSS: the two sizes are compared".into(),
                ));
            }
        }
    }
    Ok(())
}
