//! Verbs on the local store: pull, push, images, tag, rmi. Output follows
//! docker's wording where docker has the verb.

use super::progress::Display;
use super::{reference, CliError, Context};
use clap::Args;
use rctl::copy::{CopyOptions, Location};
use rctl::platform::Platform;
use rctl::pull::{self, short, PullOptions};
use rengine::archive::Format;
use rengine::store::ImageRef;
use serde_json::Value;

#[derive(Args)]
pub struct PullArgs {
    reference: String,
    /// Platform to pull from a multi-platform image (os/arch[/variant]); default this machine's.
    #[arg(long)]
    platform: Option<String>,
    /// Layers downloaded at once.
    #[arg(long, default_value_t = 3)]
    max_concurrent_downloads: usize,
    /// Print only the image name.
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Args)]
pub struct CopyArgs {
    /// Source: a registry reference (docker:// optional) or oci:PATH:NAME.
    source: String,
    /// Target: a registry reference (docker:// optional) or oci:PATH:NAME.
    target: String,
    /// Copy every platform of an index.
    #[arg(long)]
    all: bool,
    /// Platform to copy from an index without --all (default this machine's).
    #[arg(long)]
    platform: Option<String>,
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Args)]
pub struct PushArgs {
    reference: String,
    /// Layers uploaded at once.
    #[arg(long, default_value_t = 5)]
    max_concurrent_uploads: usize,
    /// Upload each layer in chunks of this many bytes (PATCH with Content-Range).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    chunk_size: Option<u64>,
    /// Print nothing but errors.
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Args)]
pub struct SaveArgs {
    images: Vec<String>,
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o')]
    output: Option<std::path::PathBuf>,
    /// docker (what docker load reads) or oci (a tar of an OCI layout).
    #[arg(long, default_value = "docker")]
    format: String,
}

#[derive(Args)]
pub struct LoadArgs {
    /// Read from this file instead of standard input.
    #[arg(long, short = 'i')]
    input: Option<std::path::PathBuf>,
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Args)]
pub struct ImagesArgs {
    /// Print only image ids.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// `--platform` as given, or this machine's.
pub fn platform_or_host(text: Option<&str>) -> Result<Platform, CliError> {
    Ok(match text {
        Some(text) => text.parse::<Platform>()?,
        None => Platform::host(),
    })
}

/// The name a reference has in the store: with `latest` when it names
/// neither tag nor digest, as a pull stores it.
pub fn store_name(reference: &rctl::reference::ImageReference) -> String {
    if reference.tag.is_none() && reference.digest.is_none() {
        reference.with_tag("latest").to_string()
    } else {
        reference.to_string()
    }
}

/// Pulls and unpacks an image with no progress shown (for `run` and `build`).
pub fn pull_quietly(
    context: &Context,
    store: &rengine::store::ContentStore,
    reference: &rctl::reference::ImageReference,
    platform: Option<&str>,
) -> Result<pull::Pulled, CliError> {
    let platform = platform_or_host(platform)?;
    super::block_on(pull_and_unpack(
        context,
        store,
        reference,
        platform,
        3,
        Box::new(|_| {}),
    ))?
}

pub async fn pull(context: &Context, args: PullArgs) -> Result<(), CliError> {
    let reference = reference(&args.reference)?;
    let platform = platform_or_host(args.platform.as_deref())?;
    if reference.tag.is_none() && reference.digest.is_none() && !args.quiet {
        println!("Using default tag: latest");
    }
    let display = std::sync::Arc::new(Display::for_stdout(args.quiet));
    let shown = display.clone();
    let store = context.store()?;
    let pulled = pull_and_unpack(
        context,
        &store,
        &reference,
        platform,
        args.max_concurrent_downloads,
        Box::new(move |event| shown.event(event)),
    )
    .await?;
    display.finish();
    if !args.quiet {
        println!("Digest: {}", pulled.digest);
        if pulled.downloaded == 0 {
            println!("Status: Image is up to date for {}", pulled.name);
        } else {
            println!("Status: Downloaded newer image for {}", pulled.name);
        }
    }
    println!("{}", pulled.name);
    Ok(())
}

/// Pulls an image and unpacks its layers into the snapshotter, each
/// layer as soon as its download completes (docker extracts one layer
/// at a time, after the downloads).
pub async fn pull_and_unpack(
    context: &Context,
    store: &rengine::store::ContentStore,
    reference: &rctl::reference::ImageReference,
    platform: Platform,
    max_concurrent_downloads: usize,
    report: Box<dyn Fn(rctl::pull::Event<'_>) + Send + Sync>,
) -> Result<pull::Pulled, CliError> {
    use rctl::pull::Event;
    use rengine::unpack::EarlyUnpacker;
    use std::sync::{Arc, Mutex};
    let snapshots = rengine::snapshot::Snapshotter::open(rengine::runtime::monitor::layers_root(
        &context.root,
    ))?;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let unpacker = Arc::new(EarlyUnpacker::new(
        store,
        &snapshots,
        workers,
        rengine::applier::ApplyOptions::for_current_user(),
    ));
    let layers: Arc<Mutex<Vec<roci::Digest>>> = Arc::default();
    let (early, planned) = (unpacker.clone(), layers.clone());
    let options = PullOptions {
        platform,
        max_concurrent_downloads,
        name: None,
        report: Box::new(move |event| {
            match &event {
                Event::Plan { layers, .. } => {
                    *planned.lock().unwrap_or_else(|p| p.into_inner()) = layers.to_vec()
                }
                Event::Done {
                    digest,
                    status: "Pull complete",
                } if planned
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(digest) =>
                {
                    early.layer_ready(digest)
                }
                _ => {}
            }
            report(event)
        }),
    };
    let pulled = pull::pull(context.transport()?, store, reference, &options).await;
    drop(options);
    let unpacker = Arc::into_inner(unpacker).ok_or("the unpacker is still shared")?;
    let pulled = pulled?;
    unpacker.finish(&pulled.manifest_digest)?;
    Ok(pulled)
}

pub async fn copy(context: &Context, args: CopyArgs) -> Result<(), CliError> {
    let registry = rctl::reference::default_registry();
    let source = Location::parse(&args.source, &registry)?;
    let target = Location::parse(&args.target, &registry)?;
    let quiet = args.quiet;
    let options = CopyOptions {
        all: args.all,
        platform: platform_or_host(args.platform.as_deref())?,
        report: Box::new(move |line| {
            if !quiet {
                println!("{line}");
            }
        }),
    };
    let digest = rctl::copy::copy(context.transport()?, &source, &target, &options).await?;
    println!("{digest}");
    Ok(())
}

pub async fn push(context: &Context, args: PushArgs) -> Result<(), CliError> {
    let reference = reference(&args.reference)?;
    let quiet = args.quiet;
    if !quiet {
        println!("The push refers to repository [{}]", reference.name());
    }
    let report = move |line: String| {
        if !quiet {
            println!("{line}");
        }
    };
    let store = context.store()?;
    let options = rctl::push::PushOptions {
        max_concurrent_uploads: args.max_concurrent_uploads,
        chunk_size: args.chunk_size,
        report: &report,
        interrupted: Some(&|| {
            Box::pin(async {
                if tokio::signal::ctrl_c().await.is_err() {
                    std::future::pending::<()>().await; // no handler: never interrupted
                }
            })
        }),
    };
    let pushed = rctl::push::push(
        context.transport()?,
        &store,
        &reference.to_string(),
        &reference,
        &options,
    )
    .await?;
    if !quiet {
        println!(
            "{}: digest: {} size: {}",
            reference.reference(),
            pushed.digest,
            pushed.size
        );
    }
    Ok(())
}

/// One row of `rctl images`.
struct Row {
    repository: String,
    tag: String,
    id: String,
    created: String,
    size: u64,
}

fn row(store: &rengine::store::ContentStore, image: &ImageRef) -> Row {
    let (repository, tag) = match image.name.rsplit_once('@') {
        Some((repository, _)) => (repository.to_string(), "<none>".to_string()),
        None => match image
            .name
            .rsplit_once(':')
            .filter(|(_, tag)| !tag.contains('/'))
        {
            Some((repository, tag)) => (repository.to_string(), tag.to_string()),
            None => (image.name.clone(), "<none>".to_string()),
        },
    };
    let manifest: Value = store
        .read_blob(&image.digest)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let config_digest = manifest
        .get("config")
        .and_then(|c| c.get("digest"))
        .and_then(Value::as_str)
        .and_then(|d| d.parse().ok());
    let config: Value = config_digest
        .as_ref()
        .and_then(|d| store.read_blob(d).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let size = manifest
        .get("layers")
        .and_then(Value::as_array)
        .map(|layers| {
            layers
                .iter()
                .filter_map(|l| l.get("size").and_then(Value::as_u64))
                .sum()
        })
        .unwrap_or(0);
    Row {
        repository,
        tag,
        id: config_digest
            .as_ref()
            .map(short)
            .unwrap_or_else(|| short(&image.digest)),
        created: config
            .get("created")
            .and_then(Value::as_str)
            .unwrap_or("")
            .chars()
            .take(19)
            .collect::<String>()
            .replace('T', " "),
        size,
    }
}

pub fn images(context: &Context, args: ImagesArgs) -> Result<(), CliError> {
    let store = context.store()?;
    let rows: Vec<Row> = store
        .images()?
        .iter()
        .map(|image| row(&store, image))
        .collect();
    if args.quiet {
        for row in rows {
            println!("{}", row.id);
        }
        return Ok(());
    }
    println!(
        "{:<40} {:<16} {:<14} {:<21} SIZE",
        "REPOSITORY", "TAG", "IMAGE ID", "CREATED"
    );
    for row in rows {
        println!(
            "{:<40} {:<16} {:<14} {:<21} {}",
            row.repository,
            row.tag,
            row.id,
            row.created,
            super::units::decimal(row.size)
        );
    }
    Ok(())
}

pub fn tag(context: &Context, source: &str, target: &str) -> Result<(), CliError> {
    let store = context.store()?;
    let source = reference(source)?.to_string();
    let mut image = store
        .resolve(&source)?
        .ok_or_else(|| format!("no such image: {source}"))?;
    image.name = reference(target)?.to_string();
    store.tag(&image)?;
    Ok(())
}

pub fn save(context: &Context, args: SaveArgs) -> Result<(), CliError> {
    use std::io::IsTerminal;
    let format = match args.format.as_str() {
        "docker" | "docker-archive" => Format::Docker,
        "oci" | "oci-archive" => Format::Oci,
        other => return Err(format!("unknown format {other:?} (docker or oci)").into()),
    };
    if args.images.is_empty() {
        return Err("name at least one image to save".into());
    }
    let names = args
        .images
        .iter()
        .map(|text| Ok(reference(text)?.to_string()))
        .collect::<Result<Vec<_>, CliError>>()?;
    let store = context.store()?;
    match &args.output {
        Some(path) => {
            // Written beside the target and renamed, so a failed save leaves no half archive.
            let mut file = roci::atomic::AtomicFile::create(path)?;
            rengine::archive::save(&store, &names, format, std::io::BufWriter::new(&mut file))?;
            file.commit()?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                return Err("cowardly refusing to write an archive to a terminal (use -o FILE or a redirect)".into());
            }
            rengine::archive::save(
                &store,
                &names,
                format,
                std::io::BufWriter::new(std::io::stdout().lock()),
            )?;
        }
    }
    Ok(())
}

pub fn load(context: &Context, args: LoadArgs) -> Result<(), CliError> {
    let store = context.store()?;
    // Names in the archive are read as references, so `busybox:1` lands
    // where `rctl pull busybox:1` would put it.
    let name_for = |name: &str| reference(name).ok().map(|r| r.to_string());
    let loaded = match &args.input {
        Some(path) => rengine::archive::load(
            &store,
            std::io::BufReader::new(std::fs::File::open(path)?),
            &name_for,
        )?,
        None => rengine::archive::load(
            &store,
            std::io::BufReader::new(std::io::stdin().lock()),
            &name_for,
        )?,
    };
    for name in loaded {
        if args.quiet {
            println!("{name}");
        } else {
            println!("Loaded image: {name}");
        }
    }
    Ok(())
}

pub fn rmi(context: &Context, references: &[String], force: bool) -> Result<(), CliError> {
    use rengine::runtime::containers::Containers;
    use rengine::runtime::image;
    let store = context.store()?;
    let containers = Containers::open(&context.root)?.list()?;
    let mut missing = Vec::new();
    for text in references {
        let name = reference(text)?.to_string();
        let Some(stored) = store.resolve(&name)? else {
            missing.push(name);
            continue;
        };
        let last_name = !store
            .images()?
            .iter()
            .any(|other| other.name != name && other.digest == stored.digest);
        let image_id = image::read(&store, &stored.digest).ok().map(|i| i.id);
        let user = containers
            .iter()
            .find(|c| Some(&c.config.image_id) == image_id.as_ref());
        if let (Some(user), true, false) = (user, last_name, force) {
            return Err(format!(
                "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                &user.config.id[..12],
                image_id.map(|d| pull::short(&d)).unwrap_or_default()
            )
            .into());
        }
        store.untag(&name)?;
        println!("Untagged: {name}");
    }
    for digest in store.collect_garbage()? {
        println!("Deleted: {digest}");
    }
    // Unpacked layers no image and no container uses.
    let mut keep: std::collections::HashSet<roci::Digest> = containers
        .iter()
        .flat_map(|c| c.config.layers.iter().cloned())
        .collect();
    for stored in store.images()? {
        if let Ok(image) = image::read(&store, &stored.digest) {
            keep.extend(image.layers);
        }
    }
    let snapshots = rengine::snapshot::Snapshotter::open(rengine::runtime::monitor::layers_root(
        &context.root,
    ))?;
    for chain_id in snapshots.collect(&keep)? {
        tracing::debug!("removed unpacked layer {chain_id}");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("no such image: {}", missing.join(", ")).into())
    }
}
