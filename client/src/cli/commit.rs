//! Verbs between containers and images: commit, diff, export, import,
//! and history. Output follows docker's.

use super::{reference, CliError, Context};
use clap::Args;
use rengine::differ::{self, StoredLayer};
use rengine::new_image::NewImage;
use rengine::runtime::cgroup;
use rengine::runtime::containers::{Container, Containers};
use rengine::runtime::monitor::layers_root;
use rengine::runtime::time::{ago, parse_rfc3339};
use rengine::snapshot::Snapshotter;
use serde_json::Value;
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;

#[derive(Args)]
pub struct CommitArgs {
    /// Apply a Dockerfile instruction to the config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL).
    #[arg(short = 'c', long = "change")]
    changes: Vec<String>,
    /// Commit message.
    #[arg(short = 'm', long)]
    message: Option<String>,
    /// Author.
    #[arg(short = 'a', long)]
    author: Option<String>,
    /// Pause the container while committing.
    #[arg(short = 'p', long, default_value_t = true, action = clap::ArgAction::Set)]
    pause: bool,
    container: String,
    /// REPOSITORY[:TAG] to name the image.
    name: Option<String>,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    container: String,
}

#[derive(Args)]
pub struct ImportArgs {
    #[arg(short = 'c', long = "change")]
    changes: Vec<String>,
    #[arg(short = 'm', long)]
    message: Option<String>,
    /// A tar file (plain or gzip), or - for standard input.
    file: String,
    /// REPOSITORY[:TAG] to name the image.
    name: Option<String>,
}

#[derive(Args)]
pub struct HistoryArgs {
    /// Do not truncate the output.
    #[arg(long)]
    no_trunc: bool,
    /// Only image ids.
    #[arg(short = 'q', long)]
    quiet: bool,
    image: String,
}

fn container(context: &Context, name: &str) -> Result<Container, CliError> {
    Ok(Containers::open(&context.root)?.find(name)?)
}

/// The image layers under a container, topmost first, as absolute paths.
fn image_layers(context: &Context, c: &Container) -> Result<Vec<PathBuf>, CliError> {
    match c.config.layers.last() {
        Some(top) => Ok(Snapshotter::open(layers_root(&context.root))?.lower_paths(top)?),
        None => Ok(Vec::new()),
    }
}

fn name_of(text: &Option<String>) -> Result<Option<String>, CliError> {
    text.as_deref()
        .map(|n| reference(n).map(|r| r.to_string()))
        .transpose()
}

pub fn commit(context: &Context, args: CommitArgs) -> Result<i32, CliError> {
    let c = container(context, &args.container)?;
    let store = context.store()?;
    let mut image = match &c.config.image_manifest {
        Some(manifest) => NewImage::from_image(&store, manifest)?,
        None => {
            return Err(format!(
                "container {} records no image manifest to commit onto",
                c.config.name
            )
            .into())
        }
    };
    for change in &args.changes {
        image.apply_change(change)?;
    }
    // docker pauses a running container so the layer is one moment of it.
    let frozen = args.pause && c.state.is_running() && !c.state.paused;
    let group = cgroup::for_container(&c.config.id);
    if frozen {
        group.freeze(true)?;
    }
    let layer = differ::store_layer(&store, &c.dir.join("upper"));
    if frozen {
        group.freeze(false)?;
    }
    let layer = layer?;
    let created_by = c.config.process.args.join(" ");
    image.add_layer(&layer, &created_by, args.message.as_deref().unwrap_or(""));
    image.stamp(args.author.as_deref().unwrap_or(""));
    let (id, _) = image.write(&store, name_of(&args.name)?.as_deref())?;
    println!("{id}");
    Ok(0)
}

pub fn diff(context: &Context, name: &str) -> Result<i32, CliError> {
    let c = container(context, name)?;
    let lowers = image_layers(context, &c)?;
    let mut out = std::io::stdout().lock();
    for change in differ::changes(&c.dir.join("upper"), &lowers)? {
        writeln!(out, "{change}")?;
    }
    Ok(0)
}

/// Mounts the container's files read-only (its layer over its image's)
/// in a mount namespace of this process's own, and writes them as a tar.
pub fn export(context: &Context, args: ExportArgs) -> Result<i32, CliError> {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    let c = container(context, &args.container)?;
    // A file appears whole or not at all (roci::atomic), as `save -o` writes.
    let mut file = args
        .output
        .as_deref()
        .map(roci::atomic::AtomicFile::create)
        .transpose()?;
    let out: Box<dyn Write + '_> = match file.as_mut() {
        Some(file) => Box::new(std::io::BufWriter::new(file)),
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                return Err(
                    "cowardly refusing to write a tar to a terminal: use -o FILE or redirect"
                        .into(),
                );
            }
            Box::new(std::io::stdout().lock())
        }
    };
    let root = layers_root(&context.root);
    let mut lowers = vec![c.dir.join("upper").display().to_string()];
    if c.dir.join("init").exists() {
        lowers.push(c.dir.join("init").display().to_string());
    }
    if let Some(top) = c.config.layers.last() {
        lowers.push(Snapshotter::open(&root)?.lowerdir(top)?);
    }
    if lowers.len() < 2 {
        lowers.push(c.dir.join("empty").display().to_string());
        std::fs::create_dir_all(c.dir.join("empty"))?;
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("a mount namespace for the export: {e}"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    let merged = c.dir.join(format!("export-{}", std::process::id()));
    std::fs::create_dir_all(&merged)?;
    std::env::set_current_dir(&root)?;
    let options = format!("lowerdir={}", lowers.join(":"));
    mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        MsFlags::MS_RDONLY,
        Some(options.as_str()),
    )
    .map_err(|e| format!("mount the container's files: {e}"))?;
    let written = differ::write_layer(&merged, out).and_then(|mut out| {
        out.flush().map_err(|e| differ::DiffError::Io {
            path: merged.clone(),
            source: e,
        })
    });
    let _ = umount2(&merged, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_dir(&merged);
    written?;
    if let Some(file) = file {
        file.commit()?;
    }
    Ok(0)
}

/// Hashes what is written (the DiffID of a decompressed stream).
struct HashSink(roci::Hasher);

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Stores a tar (plain or gzip) as a layer blob, streaming: the blob is
/// the bytes as given, the DiffID the digest of the tar inside.
fn store_tar(
    store: &rengine::store::ContentStore,
    input: impl Read,
) -> Result<(StoredLayer, &'static str), CliError> {
    let mut input = std::io::BufReader::with_capacity(256 * 1024, input);
    let head = input.fill_buf()?.to_vec();
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || head.starts_with(b"BZh")
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z'])
    {
        return Err("only plain and gzip tars can be imported".into());
    }
    let _session = store.write_session()?;
    let mut blob = store.blob_writer_computed()?;
    let mut decoder =
        flate2::write::GzDecoder::new(HashSink(roci::Hasher::new(roci::Algorithm::Sha256)));
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        blob.write_chunk(chunk)?;
        if gzip {
            decoder.write_all(chunk)?;
        }
        let n = chunk.len();
        input.consume(n);
    }
    let size = blob.written();
    let digest = blob.commit()?;
    let diff_id = if gzip {
        decoder.finish()?.0.finish()
    } else {
        digest.clone()
    };
    let media_type = if gzip {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    } else {
        "application/vnd.oci.image.layer.v1.tar"
    };
    Ok((
        StoredLayer {
            digest,
            size,
            diff_id,
        },
        media_type,
    ))
}

pub fn import(context: &Context, args: ImportArgs) -> Result<i32, CliError> {
    let store = context.store()?;
    let (layer, media_type) = if args.file == "-" {
        store_tar(&store, std::io::stdin().lock())?
    } else {
        store_tar(&store, std::fs::File::open(&args.file)?)?
    };
    let mut image = NewImage::scratch();
    for change in &args.changes {
        image.apply_change(change)?;
    }
    let comment = args
        .message
        .clone()
        .unwrap_or_else(|| format!("Imported from {}", args.file));
    image.add_layer(&layer, "", &comment);
    if let Some(last) = image.layers.last_mut() {
        last["mediaType"] = Value::String(media_type.into());
    }
    image.stamp("");
    let (id, _) = image.write(&store, name_of(&args.name)?.as_deref())?;
    println!("{id}");
    Ok(0)
}

pub fn history(context: &Context, args: HistoryArgs) -> Result<i32, CliError> {
    let store = context.store()?;
    let name = reference(&args.image)?.to_string();
    let stored = store
        .resolve(&name)?
        .ok_or_else(|| format!("No such image: {name}"))?;
    let manifest: Value = serde_json::from_slice(&store.read_blob(&stored.digest)?)?;
    let config_digest: roci::Digest = manifest
        .pointer("/config/digest")
        .and_then(Value::as_str)
        .and_then(|d| d.parse().ok())
        .ok_or("the image's manifest has no config")?;
    let config: Value = serde_json::from_slice(&store.read_blob(&config_digest)?)?;
    let sizes: Vec<u64> = manifest
        .get("layers")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|d| d.get("size").and_then(Value::as_u64).unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    let history = config
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut rows = Vec::new();
    let mut layer = 0;
    for entry in &history {
        let empty = entry
            .get("empty_layer")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let size = if empty {
            0
        } else {
            layer += 1;
            sizes.get(layer - 1).copied().unwrap_or(0)
        };
        let text = |key: &str| {
            entry
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        rows.push((text("created"), text("created_by"), size, text("comment")));
    }
    rows.reverse();
    let id = if args.no_trunc {
        config_digest.to_string()
    } else {
        config_digest.hex()[..12].to_string()
    };
    if args.quiet {
        for (i, _) in rows.iter().enumerate() {
            println!("{}", if i == 0 { id.as_str() } else { "<missing>" });
        }
        return Ok(0);
    }
    let mut table = vec![["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
        .map(String::from)
        .to_vec()];
    for (i, (created, created_by, size, comment)) in rows.iter().enumerate() {
        let image = if i == 0 {
            id.clone()
        } else {
            "<missing>".into()
        };
        let created = parse_rfc3339(created).map(ago).unwrap_or_default();
        let by = if args.no_trunc || created_by.chars().count() <= 45 {
            created_by.clone()
        } else {
            format!("{}…", created_by.chars().take(44).collect::<String>())
        };
        table.push(vec![
            image,
            created,
            by,
            super::units::decimal(*size),
            comment.clone(),
        ]);
    }
    super::containers::print_table(&table);
    Ok(0)
}
