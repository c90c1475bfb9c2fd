//! `rctl build`: the context (a directory, a tar, or stdin) and the
//! builder's outside world: base images pulled through the registry
//! client, ADD URLs fetched, RUN steps started through the monitor.

use super::images::{pull_quietly, store_name};
use super::{reference, CliError, Context};
use clap::Args;
use rengine::build::{build, BuildHost, BuildOptions};
use rengine::runtime::MONITOR_ARG;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct BuildArgs {
    /// Name the image (repeatable).
    #[arg(short = 't', long = "tag")]
    tags: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile).
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// A build argument KEY=VALUE (KEY alone takes this environment's value).
    #[arg(long = "build-arg")]
    build_args: Vec<String>,
    /// Build this stage (and what it needs) only.
    #[arg(long)]
    target: Option<String>,
    /// Run every step, using no cached result.
    #[arg(long)]
    no_cache: bool,
    /// Set a label on the image KEY=VALUE (repeatable).
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Print only the image id.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Network for RUN: host (default, so package managers work) or none.
    #[arg(long, default_value = "host")]
    network: String,
    /// A directory, a .tar/.tar.gz of one, or - (a Dockerfile or a tar on stdin).
    context: String,
}

struct Host<'a> {
    context: &'a Context,
    quiet: bool,
}

impl BuildHost for Host<'_> {
    fn image(&self, name: &str, platform: Option<&str>) -> Result<roci::Digest, String> {
        let reference = reference(name).map_err(|e| e.to_string())?;
        let full = store_name(&reference);
        let store = self.context.store().map_err(|e| e.to_string())?;
        if let Some(stored) = store.resolve(&full).map_err(|e| e.to_string())? {
            return Ok(stored.digest);
        }
        let pulled = pull_quietly(self.context, &store, &reference, platform)
            .map_err(|e| format!("pull {full}: {e}"))?;
        Ok(pulled.manifest_digest)
    }

    fn fetch(&self, url: &str, target: &Path) -> Result<(), String> {
        let url = url.to_string();
        let target = target.to_path_buf();
        super::block_on(async move {
            use futures_util::StreamExt;
            use tokio::io::AsyncWriteExt;
            let response = reqwest::get(&url)
                .await
                .map_err(|e| format!("ADD {url}: {e}"))?;
            if !response.status().is_success() {
                return Err(format!("ADD {url}: {}", response.status()));
            }
            let mut file = tokio::fs::File::create(&target)
                .await
                .map_err(|e| e.to_string())?;
            let mut body = response.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| format!("ADD {url}: {e}"))?;
                file.write_all(&chunk).await.map_err(|e| e.to_string())?;
            }
            file.flush().await.map_err(|e| e.to_string())
        })
        .map_err(|e| e.to_string())?
    }

    fn run(&self, id: &str) -> Result<i32, String> {
        use std::process::Stdio;
        let root = std::path::absolute(&self.context.root).map_err(|e| e.to_string())?;
        let output = || {
            if self.quiet {
                Stdio::null()
            } else {
                Stdio::inherit()
            }
        };
        let status = std::process::Command::new("/proc/self/exe")
            .arg(MONITOR_ARG)
            .arg(root)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(output())
            .stderr(output())
            .status()
            .map_err(|e| format!("start the step's container: {e}"))?;
        Ok(status
            .code()
            .unwrap_or(128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(9)))
    }

    fn say(&self, line: &str) {
        if !self.quiet {
            println!("{line}");
        }
    }
}

/// Unpacks a tar (plain or gzip) into `dir`.
fn untar(input: impl Read, dir: &Path) -> Result<(), CliError> {
    let mut input = std::io::BufReader::new(input);
    let head = std::io::BufRead::fill_buf(&mut input)?.to_vec();
    let reader: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(input))
    } else {
        Box::new(input)
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.unpack(dir)?;
    Ok(())
}

fn key_values(list: &[String], what: &str) -> Result<Vec<(String, String)>, CliError> {
    list.iter()
        .map(|entry| match entry.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None if what == "build-arg" => {
                Ok((entry.clone(), std::env::var(entry).unwrap_or_default()))
            }
            None => Err(format!("--{what} {entry:?}: want KEY=VALUE").into()),
        })
        .collect()
}

pub fn run(context: &Context, args: BuildArgs) -> Result<i32, CliError> {
    // The context directory, and the Dockerfile's text.
    let scratch = tempfile::tempdir()?;
    let dockerfile_name = match (&args.file, args.context.as_str()) {
        (Some(file), _) => file.display().to_string(),
        (None, "-") => "Dockerfile (stdin)".to_string(),
        (None, context) => Path::new(context).join("Dockerfile").display().to_string(),
    };
    let (dir, dockerfile) = if args.context == "-" {
        let mut input = Vec::new();
        std::io::stdin().read_to_end(&mut input)?;
        let is_tar =
            input.starts_with(&[0x1f, 0x8b]) || (input.len() > 262 && &input[257..262] == b"ustar");
        if is_tar {
            untar(input.as_slice(), scratch.path())?;
            let name = args
                .file
                .clone()
                .unwrap_or_else(|| PathBuf::from("Dockerfile"));
            let text = std::fs::read_to_string(scratch.path().join(&name))
                .map_err(|e| format!("{} in the context on stdin: {e}", name.display()))?;
            (scratch.path().to_path_buf(), text)
        } else {
            (
                scratch.path().to_path_buf(),
                String::from_utf8(input).map_err(|_| "the Dockerfile on stdin is not UTF-8")?,
            )
        }
    } else {
        let path = PathBuf::from(&args.context);
        let dir = if path.is_file() {
            untar(std::fs::File::open(&path)?, scratch.path())?;
            scratch.path().to_path_buf()
        } else if path.is_dir() {
            path
        } else {
            return Err(format!(
                "unable to prepare context: path {:?} not found",
                args.context
            )
            .into());
        };
        let file = match &args.file {
            Some(file) if file.is_absolute() || file.exists() => file.clone(),
            Some(file) => dir.join(file),
            None => dir.join("Dockerfile"),
        };
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("unable to read the Dockerfile {}: {e}", file.display()))?;
        (dir, text)
    };
    let tags = args
        .tags
        .iter()
        .map(|t| reference(t).map(|r| r.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let options = BuildOptions {
        dockerfile,
        context: dir,
        tags,
        build_args: key_values(&args.build_args, "build-arg")?
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        target: args.target.clone(),
        no_cache: args.no_cache,
        labels: key_values(&args.labels, "label")?,
        host_network: match args.network.as_str() {
            "host" | "default" => true,
            "none" => false,
            other => return Err(format!("network {other} not found (host, none)").into()),
        },
    };
    let store = context.store()?;
    let host = Host {
        context,
        quiet: args.quiet,
    };
    let built = match build(
        &std::path::absolute(&context.root)?,
        &store,
        &options,
        &host,
    ) {
        Ok(built) => built,
        // Name the file the user gave, not just "Dockerfile".
        Err(rengine::build::BuildError::Parse(e)) => {
            return Err(format!("{}:{}: {}", dockerfile_name, e.line, e.message).into())
        }
        Err(e) => return Err(e.into()),
    };
    if args.quiet {
        println!("{}", built.id);
    }
    Ok(0)
}
