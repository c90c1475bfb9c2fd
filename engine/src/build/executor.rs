//! Running a parsed Dockerfile: stages planned (only those the target
//! needs), each instruction applied to the image being made, RUN in a
//! container of the engine's runtime, COPY/ADD through a staging
//! directory, every filesystem change a layer from the differ, every
//! other step an `empty_layer` history entry, and each step looked up in
//! the build cache first.

use super::cache::BuildCache;
use super::context::{Context, ContextError};
use super::copy::{copy_in, is_archive, make_parents, CopyMode};
use super::dockerfile::{parse, Args, Instruction, ParseError};
use super::layers::LayerView;
use super::words::{expand_word, expand_words, WordError};
use crate::applier::path;
use crate::differ::{store_layer, DiffError};
use crate::new_image::{NewImage, NewImageError};
use crate::runtime::config::{ContainerConfig, Network, ProcessConfig, Resources};
use crate::runtime::containers::Containers;
use crate::runtime::monitor::layers_root;
use crate::runtime::{image, time, RuntimeError};
use crate::snapshot::Snapshotter;
use crate::store::{ContentStore, ImageRef, StoreError};
use crate::unpack::UnpackError;
use roci::{Algorithm, Digest, Hasher};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What a build is asked to do.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub dockerfile: String,
    pub context: PathBuf,
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub labels: Vec<(String, String)>,
    /// RUN in the host's network namespace (the default) or in a private one.
    pub host_network: bool,
}

/// What the builder needs from outside the engine.
pub trait BuildHost {
    /// The manifest digest of image `name` in the store, pulling it when missing.
    fn image(&self, name: &str, platform: Option<&str>) -> std::result::Result<Digest, String>;
    /// Downloads `url` into the file `target` (ADD of a URL).
    fn fetch(&self, url: &str, target: &Path) -> std::result::Result<(), String>;
    /// Runs the created container `id`, its output to the build's; its exit code.
    fn run(&self, id: &str) -> std::result::Result<i32, String>;
    /// A line of build output (`Step 1/5 : ...`).
    fn say(&self, line: &str);
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("Dockerfile line {line}: {message}")]
    Step { line: usize, message: String },
    #[error("The command '{command}' returned a non-zero code: {code}")]
    Failed { command: String, code: i32 },
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] NewImageError),
    #[error(transparent)]
    Diff(#[from] DiffError),
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    #[error("{0}")]
    Other(String),
}

type Result<T> = std::result::Result<T, BuildError>;

/// What a build made.
#[derive(Debug, Clone)]
pub struct Built {
    /// The config digest: the image id.
    pub id: Digest,
    pub image: ImageRef,
}

/// A stage: its FROM and what follows it.
struct Stage {
    name: Option<String>,
    from: Instruction,
    steps: Vec<Instruction>,
}

/// The build args docker passes to RUN without an ARG (and keeps out of history).
const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

fn step_error(line: usize) -> impl Fn(WordError) -> BuildError {
    move |e| BuildError::Step {
        line,
        message: e.to_string(),
    }
}

/// An I/O or other failure of the builder's own work, as a build error.
fn other(e: impl std::fmt::Display) -> BuildError {
    BuildError::Other(e.to_string())
}

/// The strings of a JSON array (an image's Env, Shell, OnBuild).
fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn short(digest: &Digest) -> String {
    digest.hex()[..12].to_string()
}

/// The image being made in one stage, and what steps need to know of it.
struct Work<'a> {
    builder: &'a Builder<'a>,
    image: NewImage,
    /// Chain of cache keys: the base, then every step.
    key: String,
    /// ARGs declared in this stage, with their values.
    args: BTreeMap<String, String>,
    /// Whether CMD came from the base image (ENTRYPOINT then resets it).
    inherited_cmd: bool,
}

struct Builder<'a> {
    root: PathBuf,
    store: ContentStore,
    options: &'a BuildOptions,
    host: &'a dyn BuildHost,
    context: Context,
    escape: char,
    cache: BuildCache,
    /// Global ARGs (before the first FROM).
    global_args: BTreeMap<String, String>,
    /// Finished stages, by index: their images.
    done: std::cell::RefCell<BTreeMap<usize, NewImage>>,
    stage_names: Vec<Option<String>>,
    used_args: std::cell::RefCell<BTreeSet<String>>,
}

/// Removes staging directories an interrupted build left (an hour old:
/// no live build keeps one that long without touching it).
fn clear_stale_staging(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let staging = ["copy-", "from-", "workdir-"]
            .iter()
            .any(|p| name.starts_with(p));
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 3600);
        if staging && old {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Builds the image the options describe.
pub fn build(
    root: &Path,
    store: &ContentStore,
    options: &BuildOptions,
    host: &dyn BuildHost,
) -> Result<Built> {
    clear_stale_staging(root);
    let file = parse(&options.dockerfile)?;
    let context = Context::open(&options.context)?;
    // Global ARGs, then stages.
    let mut global_args = BTreeMap::new();
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in file.instructions {
        match (instruction.keyword.as_str(), stages.last_mut()) {
            ("FROM", _) => {
                let words = expand_words(&instruction.text(), file.escape, &|_| None)
                    .map_err(step_error(instruction.line))?;
                let name = (words.len() == 3).then(|| words[2].to_ascii_lowercase());
                stages.push(Stage {
                    name,
                    from: instruction,
                    steps: Vec::new(),
                });
            }
            ("ARG", None) => {
                let text = instruction.text();
                let (name, default) = text.split_once('=').unwrap_or((&text, ""));
                let name = name.trim().to_string();
                let value = options
                    .build_args
                    .get(&name)
                    .cloned()
                    .unwrap_or_else(|| default.trim().trim_matches('"').to_string());
                global_args.insert(name, value);
            }
            (_, Some(stage)) => stage.steps.push(instruction),
            (_, None) => unreachable!("the parser refuses instructions before FROM"),
        }
    }
    let stage_names: Vec<Option<String>> = stages.iter().map(|s| s.name.clone()).collect();
    let target = match &options.target {
        Some(name) => stage_names
            .iter()
            .position(|n| n.as_deref() == Some(name.to_ascii_lowercase().as_str()))
            .ok_or_else(|| {
                BuildError::Other(format!("failed to reach build target {name} in Dockerfile"))
            })?,
        None => stages.len() - 1,
    };
    let builder = Builder {
        root: root.to_path_buf(),
        store: store.clone(),
        options,
        host,
        context,
        escape: file.escape,
        cache: BuildCache::open(root)?,
        global_args,
        done: Default::default(),
        stage_names,
        used_args: Default::default(),
    };
    let needed = builder.needed(&stages, target)?;
    let total: usize = needed.iter().map(|&i| 1 + stages[i].steps.len()).sum();
    let mut step = 0;
    let mut last = None;
    for &index in &needed {
        let stage = &stages[index];
        step += 1;
        builder
            .host
            .say(&format!("Step {step}/{total} : {}", stage.from.original));
        let mut work = builder.from(&stage.from)?;
        builder.host.say(&format!(" ---> {}", short(&work.id())));
        // ONBUILD triggers of the base run first.
        let triggers = strings(work.image.config.pointer("/config/OnBuild"));
        if !triggers.is_empty() {
            builder.host.say(&format!(
                "# Executing {} build trigger{}",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ));
            work.image.run_config().remove("OnBuild");
            for trigger in triggers {
                let instruction =
                    super::dockerfile::instruction(stage.from.line, &trigger, builder.escape)?;
                work.step(&instruction)?;
            }
        }
        for instruction in &stage.steps {
            step += 1;
            builder
                .host
                .say(&format!("Step {step}/{total} : {}", instruction.original));
            work.step(instruction)?;
            builder.host.say(&format!(" ---> {}", short(&work.id())));
        }
        if index == target {
            for (key, value) in &options.labels {
                work.image
                    .set_in_run_config("Labels", key, Value::String(value.clone()));
            }
        }
        builder.done.borrow_mut().insert(index, work.image.clone());
        last = Some(work);
    }
    let unused: Vec<String> = options
        .build_args
        .keys()
        .filter(|k| !builder.used_args.borrow().contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
        .cloned()
        .collect();
    if !unused.is_empty() {
        builder.host.say(&format!(
            "[Warning] One or more build-args [{}] were not consumed",
            unused.join(" ")
        ));
    }
    // The image is the last step's as it stands, so a cached rebuild gives the same id.
    let work = last.ok_or_else(|| BuildError::Other("nothing to build".into()))?;
    let (id, image) = work.image.write(store, None)?;
    builder
        .host
        .say(&format!("Successfully built {}", short(&id)));
    for tag in &options.tags {
        store.tag(&ImageRef {
            name: tag.clone(),
            ..image.clone()
        })?;
        builder.host.say(&format!("Successfully tagged {tag}"));
    }
    Ok(Built { id, image })
}

impl<'a> Builder<'a> {
    /// The stages to build for `target`: it and what it uses, in file order.
    fn needed(&self, stages: &[Stage], target: usize) -> Result<Vec<usize>> {
        let mut needed = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(index) = todo.pop() {
            if !needed.insert(index) {
                continue;
            }
            let stage = &stages[index];
            let base = self.expand_global(&stage.from)?;
            let mut refs = vec![base];
            for step in &stage.steps {
                if let Some(from) = step.flag("from") {
                    refs.push(from.to_string());
                }
            }
            for reference in refs {
                if let Some(dep) = self.stage_index(&reference).filter(|d| *d < index) {
                    todo.push(dep);
                }
            }
        }
        Ok(needed.into_iter().collect())
    }

    /// A stage by name or number.
    fn stage_index(&self, reference: &str) -> Option<usize> {
        let lower = reference.to_ascii_lowercase();
        self.stage_names
            .iter()
            .position(|n| n.as_deref() == Some(lower.as_str()))
            .or_else(|| {
                reference
                    .parse::<usize>()
                    .ok()
                    .filter(|i| *i < self.stage_names.len())
            })
    }

    /// The image a FROM names, with global ARGs substituted.
    fn expand_global(&self, from: &Instruction) -> Result<String> {
        let lookup = |name: &str| self.global_args.get(name).cloned();
        let words =
            expand_words(&from.text(), self.escape, &lookup).map_err(step_error(from.line))?;
        Ok(words.first().cloned().unwrap_or_default())
    }

    fn from(&'a self, from: &Instruction) -> Result<Work<'a>> {
        let base = self.expand_global(from)?;
        let (image, key) = if base.eq_ignore_ascii_case("scratch") {
            (NewImage::scratch(), "scratch".to_string())
        } else if let Some(index) = self.stage_index(&base) {
            let done = self.done.borrow();
            let image = done.get(&index).cloned().ok_or_else(|| BuildError::Step {
                line: from.line,
                message: format!("stage {base} is not built before it is used"),
            })?;
            let key = format!(
                "stage:{}",
                digest_of(&serde_json::to_vec(&image.layers).unwrap_or_default())
            );
            (image, key)
        } else {
            let manifest = self
                .host
                .image(&base, from.flag("platform"))
                .map_err(|message| BuildError::Step {
                    line: from.line,
                    message,
                })?;
            (
                NewImage::from_image(&self.store, &manifest)?,
                format!("image:{manifest}"),
            )
        };
        // docker's builder gives every stage a PATH (an imported image has none).
        let mut image = image;
        image.default_path();
        let inherited_cmd = image
            .config
            .pointer("/config/Cmd")
            .is_some_and(|c| !c.is_null());
        Ok(Work {
            builder: self,
            image,
            key,
            args: BTreeMap::new(),
            inherited_cmd,
        })
    }

    /// A staging directory under the engine root (`clear_stale_staging` knows the prefixes).
    fn staging(&self, prefix: &str) -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&self.root)
            .map_err(|e| BuildError::Other(format!("staging directory: {e}")))
    }

    /// Writes `image` to the store and unpacks it: its layers, topmost first.
    fn unpacked(&self, image: &NewImage) -> Result<(image::RunnableImage, LayerView)> {
        let (_, written) = image.write(&self.store, None)?;
        let snapshots = Snapshotter::open(layers_root(&self.root))?;
        let runnable = image::prepare(&self.store, &snapshots, &written.digest, 2)?;
        let layers = match runnable.layers.last() {
            Some(top) => snapshots.lower_paths(top)?,
            None => Vec::new(),
        };
        Ok((runnable, LayerView { layers }))
    }
}

fn digest_of(bytes: &[u8]) -> String {
    Digest::of_bytes(Algorithm::Sha256, bytes).hex().to_string()
}

/// `30s`, `1m30s`, `500ms` in nanoseconds.
fn duration_nanos(text: &str) -> Option<u64> {
    let mut total = 0f64;
    let mut number = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            i += 1;
            continue;
        }
        let unit: String = chars[i..]
            .iter()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        i += unit.len();
        let value: f64 = number.parse().ok()?;
        number.clear();
        total += value
            * match unit.as_str() {
                "ns" => 1.0,
                "us" | "µs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                _ => return None,
            };
    }
    if !number.is_empty() {
        return None;
    }
    Some(total as u64)
}

impl Work<'_> {
    /// The image id the step left (the digest of the config as it is).
    fn id(&self) -> Digest {
        Digest::of_bytes(
            Algorithm::Sha256,
            &serde_json::to_vec(&self.image.config).unwrap_or_default(),
        )
    }

    /// A string setting of the image's config section (`User`, `WorkingDir`).
    fn setting(&self, key: &str) -> &str {
        self.image
            .config
            .pointer(&format!("/config/{key}"))
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The image's `Env`.
    fn env(&self) -> Vec<String> {
        strings(self.image.config.pointer("/config/Env"))
    }

    /// `path` (absolute or relative to the working directory), cleaned.
    fn in_workdir(&self, path: &str) -> String {
        let joined = if path.starts_with('/') {
            path.to_string()
        } else {
            format!(
                "{}/{path}",
                self.setting("WorkingDir").trim_end_matches('/')
            )
        };
        // `..` stops at `/`, as docker's filepath.Clean of an absolute path.
        path::absolute(&path::clamp(Path::new(&joined)))
    }

    /// Variables for substitution: the image's ENV over this stage's ARGs.
    fn lookup(&self, name: &str) -> Option<String> {
        let from_env = self.env().into_iter().rev().find_map(|e| {
            e.strip_prefix(name)
                .and_then(|r| r.strip_prefix('='))
                .map(str::to_string)
        });
        from_env.or_else(|| self.args.get(name).cloned())
    }

    fn words(&self, instruction: &Instruction) -> Result<Vec<String>> {
        match &instruction.args {
            Args::Exec(list) => Ok(list.clone()),
            Args::Shell(text) => {
                let lookup = |n: &str| self.lookup(n);
                expand_words(text, self.builder.escape, &lookup)
                    .map_err(step_error(instruction.line))
            }
        }
    }

    fn word(&self, instruction: &Instruction, text: &str) -> Result<String> {
        let lookup = |n: &str| self.lookup(n);
        expand_word(text, self.builder.escape, &lookup).map_err(step_error(instruction.line))
    }

    fn shell(&self) -> Vec<String> {
        let shell = strings(self.image.config.pointer("/config/Shell"));
        if shell.is_empty() {
            vec!["/bin/sh".into(), "-c".into()]
        } else {
            shell
        }
    }

    /// A command in exec form, or the shell's.
    fn command(&self, instruction: &Instruction) -> Vec<String> {
        match &instruction.args {
            Args::Exec(list) => list.clone(),
            Args::Shell(text) => {
                let mut command = self.shell();
                command.push(text.clone());
                command
            }
        }
    }

    fn nop(&self, instruction: &Instruction) -> String {
        format!("/bin/sh -c #(nop)  {}", instruction.original)
    }

    /// Runs one instruction (or takes it from the cache).
    fn step(&mut self, instruction: &Instruction) -> Result<()> {
        match instruction.keyword.as_str() {
            "RUN" => self.run(instruction),
            "COPY" | "ADD" => self.copy(instruction),
            "WORKDIR" => self.workdir(instruction),
            "ARG" => {
                let text = instruction.text();
                let (name, default) = match text.split_once('=') {
                    Some((n, d)) => (
                        n.trim().to_string(),
                        Some(self.word(instruction, d.trim())?),
                    ),
                    None => (text.trim().to_string(), None),
                };
                let value = self
                    .builder
                    .options
                    .build_args
                    .get(&name)
                    .cloned()
                    .or(default)
                    .or_else(|| self.builder.global_args.get(&name).cloned())
                    .unwrap_or_default();
                self.builder.used_args.borrow_mut().insert(name.clone());
                self.args.insert(name, value);
                self.metadata(instruction, |_, _| Ok(()))
            }
            _ => {
                let instruction = instruction.clone();
                self.metadata(&instruction.clone(), move |work, image| {
                    work.apply(&instruction, image)
                })
            }
        }
    }

    /// A step that changes only the config: cached like the others.
    fn metadata(
        &mut self,
        instruction: &Instruction,
        apply: impl FnOnce(&Work, &mut NewImage) -> Result<()>,
    ) -> Result<()> {
        let key = self.next_key(&format!("{}|{:?}", instruction.original, self.args));
        if self.cached(&key)? {
            return Ok(());
        }
        let mut image = self.image.clone();
        apply(self, &mut image)?;
        image.add_empty_layer(&self.nop(instruction));
        self.image = image;
        self.save(&key)
    }

    fn apply(&self, instruction: &Instruction, image: &mut NewImage) -> Result<()> {
        let line = instruction.line;
        let bad = |message: String| BuildError::Step { line, message };
        match instruction.keyword.as_str() {
            "ENV" | "LABEL" => {
                let words = self.words(instruction)?;
                let pairs: Vec<(String, String)> = if words.first().is_some_and(|w| w.contains('='))
                {
                    words
                        .iter()
                        .filter_map(|w| {
                            w.split_once('=')
                                .map(|(k, v)| (k.to_string(), v.to_string()))
                        })
                        .collect()
                } else {
                    // `ENV KEY value with spaces`
                    let text = instruction.text();
                    let (key, value) = text
                        .trim()
                        .split_once(char::is_whitespace)
                        .ok_or_else(|| bad("ENV needs a value".into()))?;
                    vec![(key.to_string(), self.word(instruction, value.trim())?)]
                };
                for (key, value) in pairs {
                    if instruction.keyword == "ENV" {
                        image.set_env(&key, &value);
                    } else {
                        image.set_in_run_config("Labels", &key, Value::String(value));
                    }
                }
            }
            "EXPOSE" => {
                for port in self.words(instruction)? {
                    let port = if port.contains('/') {
                        port
                    } else {
                        format!("{port}/tcp")
                    };
                    image.set_in_run_config("ExposedPorts", &port, json!({}));
                }
            }
            "VOLUME" => {
                for path in self.words(instruction)? {
                    image.set_in_run_config("Volumes", &path, json!({}));
                }
            }
            "USER" => {
                let user = self.word(instruction, instruction.text().trim())?;
                image
                    .run_config()
                    .insert("User".into(), Value::String(user));
            }
            "STOPSIGNAL" => {
                let signal = self.word(instruction, instruction.text().trim())?;
                image
                    .run_config()
                    .insert("StopSignal".into(), Value::String(signal));
            }
            "CMD" => {
                let command = self.command(instruction);
                image.run_config().insert("Cmd".into(), json!(command));
            }
            "ENTRYPOINT" => {
                let command = self.command(instruction);
                let config = image.run_config();
                config.insert("Entrypoint".into(), json!(command));
                if self.inherited_cmd {
                    config.insert("Cmd".into(), Value::Null);
                }
            }
            "SHELL" => {
                if let Args::Exec(list) = &instruction.args {
                    image.run_config().insert("Shell".into(), json!(list));
                }
            }
            "MAINTAINER" => {
                image.config["author"] = Value::String(instruction.text().trim().to_string());
            }
            "ONBUILD" => {
                let triggers = image
                    .run_config()
                    .entry("OnBuild")
                    .or_insert_with(|| json!([]));
                if !triggers.is_array() {
                    *triggers = json!([]);
                }
                if let Some(list) = triggers.as_array_mut() {
                    list.push(Value::String(instruction.text().trim().to_string()));
                }
            }
            "HEALTHCHECK" => {
                let check = self.healthcheck(instruction)?;
                image.run_config().insert("Healthcheck".into(), check);
            }
            other => return Err(bad(format!("{other} is not handled here"))),
        }
        Ok(())
    }

    fn healthcheck(&self, instruction: &Instruction) -> Result<Value> {
        let text = instruction.text();
        let text = text.trim();
        if text.eq_ignore_ascii_case("none") {
            return Ok(json!({"Test": ["NONE"]}));
        }
        let rest = text[3..].trim(); // after CMD
        let test: Vec<String> = match serde_json::from_str::<Vec<String>>(rest) {
            Ok(list) => std::iter::once("CMD".to_string()).chain(list).collect(),
            Err(_) => vec!["CMD-SHELL".into(), rest.into()],
        };
        let mut check = json!({"Test": test});
        for (flag, key) in [
            ("interval", "Interval"),
            ("timeout", "Timeout"),
            ("start-period", "StartPeriod"),
        ] {
            if let Some(value) = instruction.flag(flag) {
                let nanos = duration_nanos(value).ok_or_else(|| BuildError::Step {
                    line: instruction.line,
                    message: format!("--{flag}: bad duration {value:?}"),
                })?;
                check[key] = json!(nanos);
            }
        }
        if let Some(retries) = instruction.flag("retries") {
            let n: u64 = retries.parse().map_err(|_| BuildError::Step {
                line: instruction.line,
                message: format!("--retries: bad number {retries:?}"),
            })?;
            check["Retries"] = json!(n);
        }
        Ok(check)
    }

    fn next_key(&self, description: &str) -> String {
        digest_of(format!("{}\n{description}", self.key).as_bytes())
    }

    /// Takes the step from the cache when it is there (and not refused).
    fn cached(&mut self, key: &str) -> Result<bool> {
        if self.builder.options.no_cache {
            return Ok(false);
        }
        match self.builder.cache.get(key, &self.builder.store) {
            Some(image) => {
                self.image = image;
                self.key = key.to_string();
                self.builder.host.say(" ---> Using cache");
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn save(&mut self, key: &str) -> Result<()> {
        self.key = key.to_string();
        self.builder.cache.put(key, &self.image)?;
        Ok(())
    }

    fn run(&mut self, instruction: &Instruction) -> Result<()> {
        let command = self.command(instruction);
        // Build args reach RUN as environment (docker keeps them out of the image).
        let mut env = self.env();
        let mut arg_env: Vec<String> = Vec::new();
        for (name, value) in &self.args {
            if !env.iter().any(|e| e.split('=').next() == Some(name)) {
                arg_env.push(format!("{name}={value}"));
            }
        }
        for name in PROXY_ARGS {
            if let Some(value) = self.builder.options.build_args.get(name) {
                env.push(format!("{name}={value}"));
            }
        }
        env.extend(arg_env.iter().cloned());
        let key = self.next_key(&format!("RUN {command:?} {arg_env:?}"));
        if self.cached(&key)? {
            return Ok(());
        }
        let (runnable, _) = self.builder.unpacked(&self.image)?;
        let containers = Containers::open(&self.builder.root)?;
        let id = Containers::new_id();
        let cwd = match self.setting("WorkingDir") {
            "" => "/".to_string(),
            dir => dir.to_string(),
        };
        let has_path = env.iter().any(|e| e.starts_with("PATH="));
        if !has_path {
            env.insert(0, format!("PATH={}", crate::runtime::process::DEFAULT_PATH));
        }
        let config = ContainerConfig {
            id: id.clone(),
            name: format!("build-{}", &id[..12]),
            image: "build".into(),
            image_id: runnable.id.clone(),
            image_manifest: Some(runnable.manifest.clone()),
            layers: runnable.layers.clone(),
            created: time::now_nanos(),
            process: ProcessConfig {
                args: command.clone(),
                env,
                cwd,
                user: self.setting("User").to_string(),
                tty: false,
                interactive: false,
            },
            hostname: id[..12].to_string(),
            network: if self.builder.options.host_network {
                Network::Host
            } else {
                Network::None
            },
            mounts: Vec::new(),
            ports: Vec::new(),
            resources: Resources::default(),
            init: false,
            auto_remove: false,
            stop_signal: "SIGTERM".into(),
            stop_timeout: 10,
            // RUN steps get docker's default seccomp profile and capabilities, as docker's builder.
            security: Default::default(),
            image_config: self
                .image
                .config
                .get("config")
                .cloned()
                .unwrap_or(Value::Null),
        };
        let container = containers.create(&config)?;
        self.builder
            .host
            .say(&format!(" ---> Running in {}", &id[..12]));
        let outcome = self.builder.host.run(&id);
        let result = match outcome {
            Ok(0) => store_layer(&self.builder.store, &container.dir.join("upper"))
                .map_err(BuildError::from),
            Ok(code) => Err(BuildError::Failed {
                command: command.join(" "),
                code,
            }),
            Err(message) => Err(BuildError::Other(message)),
        };
        let removed = containers.load(&id).and_then(|c| containers.remove(&c));
        self.builder
            .host
            .say(&format!("Removing intermediate container {}", &id[..12]));
        let layer = result?;
        removed?;
        self.image.add_layer(&layer, &command.join(" "), "");
        self.save(&key)
    }

    fn copy(&mut self, instruction: &Instruction) -> Result<()> {
        let line = instruction.line;
        let add = instruction.keyword == "ADD";
        let mut words = self.words(instruction)?;
        let dest_word = words.pop().unwrap_or_default();
        // The destination as written (for the history), and as resolved in the image below.
        let written_dest = self.in_workdir(&dest_word);
        let dest_is_dir = dest_word.ends_with('/') || dest_word == "." || words.len() > 1;
        let staging = self.builder.staging("copy-")?;
        let scratch = self.builder.staging("from-")?;
        // Where the sources come from: the context, an earlier stage, or an image.
        let (source_root, view_sources): (PathBuf, Option<LayerView>) =
            match instruction.flag("from") {
                None => (self.builder.context.root.clone(), None),
                Some(from) => {
                    let image = match self.builder.stage_index(from) {
                        Some(index) => {
                            self.builder
                                .done
                                .borrow()
                                .get(&index)
                                .cloned()
                                .ok_or_else(|| BuildError::Step {
                                    line,
                                    message: format!("stage {from} is not built before it is used"),
                                })?
                        }
                        None => {
                            let manifest = self
                                .builder
                                .host
                                .image(from, None)
                                .map_err(|message| BuildError::Step { line, message })?;
                            NewImage::from_image(&self.builder.store, &manifest)?
                        }
                    };
                    let (_, view) = self.builder.unpacked(&image)?;
                    (scratch.path().to_path_buf(), Some(view))
                }
            };
        let view_now = self.builder.unpacked(&self.image)?.1;
        let dest = in_image(&view_now, &written_dest, line)?;
        let dest_exists_as_dir = view_now
            .find(dest.trim_start_matches('/'))
            .is_some_and(|p| p.is_dir());
        let (uid, gid) = match instruction.flag("chown") {
            Some(owner) => self.owner(&view_now, owner, line)?,
            None => (0, 0),
        };
        let chmod = match instruction.flag("chmod") {
            Some(text) => Some(u32::from_str_radix(text, 8).map_err(|_| BuildError::Step {
                line,
                message: format!("invalid --chmod {text:?}: an octal mode"),
            })?),
            None => None,
        };
        let mode = CopyMode { uid, gid, chmod };
        let mut digest = Hasher::new(Algorithm::Sha256);
        let mut described = Vec::new();
        for source in &words {
            if add && (source.starts_with("http://") || source.starts_with("https://")) {
                let name = source
                    .rsplit('/')
                    .next()
                    .filter(|n| !n.is_empty() && *n != "." && *n != "..")
                    .unwrap_or("download");
                let fetched = scratch.path().join(format!("url-{}", described.len()));
                self.builder
                    .host
                    .fetch(source, &fetched)
                    .map_err(|message| BuildError::Step { line, message })?;
                std::fs::set_permissions(
                    &fetched,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )
                .map_err(other)?;
                let target = if dest_is_dir || dest_exists_as_dir {
                    make_parents(staging.path(), &dest)
                        .map_err(other)?
                        .join(name)
                } else {
                    make_parents(staging.path(), parent(&dest)).map_err(other)?;
                    staging.path().join(dest.trim_start_matches('/'))
                };
                copy_in(&fetched, &target, mode, &mut digest, source, None).map_err(other)?;
                described.push(format!("url:{source}"));
                continue;
            }
            let matches = match &view_sources {
                None => self.builder.context.sources(source)?,
                Some(view) => {
                    let relative = path::absolute(&path::clamp(Path::new(source)))
                        .trim_start_matches('/')
                        .to_string();
                    let target = scratch.path().join(&relative);
                    view.copy_out(&relative, &target)
                        .map_err(|_| BuildError::Step {
                            line,
                            message: format!(
                                "COPY --from: {source} not found in {}",
                                instruction.flag("from").unwrap_or("")
                            ),
                        })?;
                    vec![relative]
                }
            };
            let many = dest_is_dir || matches.len() > 1 || dest_exists_as_dir;
            for relative in matches {
                let path = source_root.join(&relative);
                let is_dir = std::fs::symlink_metadata(&path)
                    .map(|m| m.is_dir())
                    .unwrap_or(false);
                let base = Path::new(&relative)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let io = |e: std::io::Error| BuildError::Other(format!("{}: {e}", path.display()));
                // The context's .dockerignore holds inside a copied directory too.
                let ignore = view_sources.is_none().then_some(&self.builder.context);
                if add && !is_dir && view_sources.is_none() && is_archive(&path) {
                    let target = make_parents(staging.path(), &dest).map_err(io)?;
                    let file = std::fs::File::open(&path).map_err(io)?;
                    crate::applier::apply_layer(
                        std::io::BufReader::new(file),
                        &target,
                        crate::applier::ApplyOptions::for_current_user(),
                    )
                    .map_err(|e| BuildError::Step {
                        line,
                        message: format!("ADD {relative}: {e}"),
                    })?;
                    digest.update(format!("archive {relative}\n").as_bytes());
                    let mut content = Hasher::new(Algorithm::Sha256);
                    content.update(&std::fs::read(&path).map_err(io)?);
                    digest.update(content.finish().to_string().as_bytes());
                } else if is_dir {
                    let target = make_parents(staging.path(), &dest).map_err(io)?;
                    copy_in(&path, &target, mode, &mut digest, &relative, ignore).map_err(io)?;
                } else if many {
                    let target = make_parents(staging.path(), &dest).map_err(io)?.join(&base);
                    copy_in(&path, &target, mode, &mut digest, &relative, ignore).map_err(io)?;
                } else {
                    make_parents(staging.path(), parent(&dest)).map_err(io)?;
                    let target = staging.path().join(dest.trim_start_matches('/'));
                    copy_in(&path, &target, mode, &mut digest, &relative, ignore).map_err(io)?;
                }
                described.push(relative);
            }
        }
        let content = digest.finish();
        let key = self.next_key(&format!("{} {content}", instruction.original));
        if self.cached(&key)? {
            return Ok(());
        }
        // Directories the copy created belong to the --chown owner (as
        // docker's MkdirAllAndChownNew); those the image already has keep
        // their metadata, so the layer does not change them.
        if mode.uid != 0 || mode.gid != 0 {
            chown_created(&view_now, staging.path(), &dest, mode);
        }
        restore_parents(&view_now, staging.path(), &dest);
        let layer = store_layer(&self.builder.store, staging.path())?;
        let created_by = format!(
            "/bin/sh -c #(nop) {} {}:{} in {} ",
            instruction.keyword,
            if described.len() == 1 {
                "file"
            } else {
                "multi"
            },
            content.hex(),
            written_dest
        );
        self.image.add_layer(&layer, &created_by, "");
        self.save(&key)
    }

    /// `--chown=user:group` by name (in the image's files) or number.
    fn owner(&self, view: &LayerView, owner: &str, line: usize) -> Result<(u32, u32)> {
        let passwd = view.read("etc/passwd").unwrap_or_default();
        let group = view.read("etc/group").unwrap_or_default();
        let user =
            crate::runtime::process::resolve_user_in(&passwd, &group, owner).map_err(|e| {
                BuildError::Step {
                    line,
                    message: format!("--chown={owner}: {e}"),
                }
            })?;
        // `--chown=user` alone: the uid serves as gid too, as docker documents.
        let gid = if owner.contains(':') {
            user.gid
        } else {
            user.uid
        };
        Ok((user.uid, gid))
    }

    fn workdir(&mut self, instruction: &Instruction) -> Result<()> {
        let text = self.word(instruction, instruction.text().trim())?;
        let dir = self.in_workdir(&text);
        let key = self.next_key(&format!("WORKDIR {dir}"));
        if self.cached(&key)? {
            return Ok(());
        }
        self.image
            .run_config()
            .insert("WorkingDir".into(), Value::String(dir.clone()));
        // Created when missing, in a layer of its own (as docker's classic
        // builder), where the image's own symlinks lead (never out of it).
        let (_, view) = self.builder.unpacked(&self.image)?;
        let dir = in_image(&view, &dir, instruction.line)?;
        if view.find(dir.trim_start_matches('/')).is_some() {
            self.image.add_empty_layer(&self.nop(instruction));
        } else {
            let staging = self.builder.staging("workdir-")?;
            make_parents(staging.path(), &dir).map_err(other)?;
            restore_parents(&view, staging.path(), &dir);
            let layer = store_layer(&self.builder.store, staging.path())?;
            self.image.add_layer(&layer, &self.nop(instruction), "");
        }
        self.save(&key)
    }
}

/// `dest` (absolute, clean) where it leads inside `view`'s image: the
/// image's symlinks followed as a container of it would, never out of it.
fn in_image(view: &LayerView, dest: &str, line: usize) -> Result<String> {
    let resolved = view
        .resolve(Path::new(dest))
        .map_err(|e| BuildError::Step {
            line,
            message: e.to_string(),
        })?;
    Ok(path::absolute(&resolved))
}

fn parent(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit_once('/')
        .map_or("/", |(p, _)| if p.is_empty() { "/" } else { p })
}

/// Gives `dest` and its parents that the image lacks the copy's owner.
fn chown_created(view: &LayerView, staging: &Path, dest: &str, mode: CopyMode) {
    let mut relative = String::new();
    for part in dest.trim_matches('/').split('/').filter(|p| !p.is_empty()) {
        if !relative.is_empty() {
            relative.push('/');
        }
        relative.push_str(part);
        let staged = staging.join(&relative);
        if view.find(&relative).is_none() && staged.is_dir() {
            let _ = std::os::unix::fs::lchown(&staged, Some(mode.uid), Some(mode.gid));
        }
    }
}

/// Gives the staging copies of `dest`'s parents the image's own metadata.
fn restore_parents(view: &LayerView, staging: &Path, dest: &str) {
    let mut relative = String::new();
    for part in dest.trim_matches('/').split('/').filter(|p| !p.is_empty()) {
        if !relative.is_empty() {
            relative.push('/');
        }
        relative.push_str(part);
        let staged = staging.join(&relative);
        if let (Some(existing), Ok(staged_meta)) =
            (view.find(&relative), std::fs::symlink_metadata(&staged))
        {
            if staged_meta.is_dir() {
                if let Ok(meta) = std::fs::symlink_metadata(&existing) {
                    if meta.is_dir() {
                        let _ = super::copy::copy_metadata(&meta, &staged);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_as_go_does() {
        assert_eq!(super::duration_nanos("30s"), Some(30_000_000_000));
        assert_eq!(super::duration_nanos("1m30s"), Some(90_000_000_000));
        assert_eq!(super::duration_nanos("500ms"), Some(500_000_000));
        assert_eq!(super::duration_nanos("5"), None);
    }
}
