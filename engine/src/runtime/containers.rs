//! The containers on disk, one directory each:
//!
//! ```text
//! <root>/containers/<id>/config.json   what it runs (ContainerConfig)
//! <root>/containers/<id>/state.json    what it is doing (State)
//! <root>/containers/<id>/container.log its output, when detached
//! <root>/containers/<id>/upper/ work/  its overlay upper and work dirs
//! <root>/containers/<id>/rootfs/       where its root is mounted (inside its own mount namespace)
//! <root>/containers/<id>/hosts hostname resolv.conf
//! <root>/containers/.lock              held while a name is claimed or a container removed
//! ```
//!
//! Names are unique: `create` claims one under the lock.

use super::config::ContainerConfig;
use super::state::{process_alive, State, Status};
use super::{io, write_atomic, Result, RuntimeError};
use nix::fcntl::{Flock, FlockArg};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Containers {
    dir: PathBuf,
}

/// A container as found on disk.
#[derive(Debug, Clone)]
pub struct Container {
    pub config: ContainerConfig,
    pub state: State,
    pub dir: PathBuf,
}

impl Containers {
    /// The containers under the engine root `root`.
    pub fn open(root: &Path) -> Result<Containers> {
        let dir = root.join("containers");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(Containers { dir })
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn lock(&self) -> Result<Flock<std::fs::File>> {
        let path = self.dir.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| RuntimeError::Sys {
            what: format!("lock {}", path.display()),
            source: e,
        })
    }

    /// A new random id: 64 hex digits, as docker's.
    pub fn new_id() -> String {
        format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )
    }

    /// Saves a new container (its name must be free) in state `created`.
    pub fn create(&self, config: &ContainerConfig) -> Result<Container> {
        let _lock = self.lock()?;
        if self.list()?.iter().any(|c| c.config.name == config.name) {
            return Err(RuntimeError::NameInUse(config.name.clone()));
        }
        let dir = self.dir(&config.id);
        for sub in ["upper", "work", "rootfs"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(io(&dir))?;
        }
        let state = State::created();
        self.save_state(&config.id, &state)?;
        let json =
            serde_json::to_vec_pretty(config).map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        // config.json last: a directory without it is a create that did not finish.
        write_atomic(&dir.join("config.json"), &json)?;
        Ok(Container {
            config: config.clone(),
            state,
            dir,
        })
    }

    /// A free generated name, as docker makes them (`adjective_surname`).
    pub fn generate_name(&self) -> Result<String> {
        const ADJECTIVES: [&str; 12] = [
            "brave", "calm", "eager", "fervent", "gifted", "happy", "jolly", "keen", "lucid",
            "quirky", "serene", "vibrant",
        ];
        const NAMES: [&str; 12] = [
            "babbage", "curie", "darwin", "euler", "hopper", "kepler", "lovelace", "noether",
            "pascal", "ritchie", "thompson", "turing",
        ];
        let taken: Vec<String> = self.list()?.into_iter().map(|c| c.config.name).collect();
        let bytes = uuid::Uuid::new_v4().into_bytes();
        for attempt in 0..1000usize {
            let a = ADJECTIVES[(bytes[0] as usize + attempt) % ADJECTIVES.len()];
            let n = NAMES[(bytes[1] as usize + attempt / ADJECTIVES.len()) % NAMES.len()];
            let name = if attempt < 144 {
                format!("{a}_{n}")
            } else {
                format!("{a}_{n}{}", attempt / 144)
            };
            if !taken.contains(&name) {
                return Ok(name);
            }
        }
        Ok(format!("rctl_{}", &Self::new_id()[..12]))
    }

    /// Every container, oldest first.
    pub fn list(&self) -> Result<Vec<Container>> {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(&self.dir)
            .map_err(io(&self.dir))?
            .flatten()
        {
            let id = entry.file_name().to_string_lossy().into_owned();
            if id.starts_with('.') {
                continue;
            }
            if let Ok(container) = self.load(&id) {
                all.push(container);
            }
        }
        all.sort_by_key(|c| c.config.created);
        Ok(all)
    }

    /// The container with this id.
    pub fn load(&self, id: &str) -> Result<Container> {
        let dir = self.dir(id);
        let config = read_json(&dir.join("config.json"))?;
        let mut state: State = read_json(&dir.join("state.json"))?;
        // Gone without anyone recording it: its monitor died too.
        if state.status == Status::Running
            && !process_alive(state.pid, state.pid_start)
            && !process_alive(state.monitor_pid, state.monitor_start)
        {
            state.status = Status::Exited;
            state.paused = false;
            state.exit_code = 255;
            state.error = "the container's monitor was lost; its exit code is unknown".into();
            state.finished_at = super::time::now_nanos();
            let _ = self.save_state(id, &state);
        }
        Ok(Container { config, state, dir })
    }

    /// Finds a container by name, full id, or unique id prefix.
    pub fn find(&self, what: &str) -> Result<Container> {
        let what = what.trim_start_matches('/');
        let all = self.list()?;
        if let Some(c) = all
            .iter()
            .find(|c| c.config.name == what || c.config.id == what)
        {
            return Ok(c.clone());
        }
        let matches: Vec<&Container> = if what.is_empty() {
            Vec::new()
        } else {
            all.iter()
                .filter(|c| c.config.id.starts_with(what))
                .collect()
        };
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(RuntimeError::NoSuchContainer(what.into())),
            _ => Err(RuntimeError::Invalid(format!(
                "multiple IDs found with provided prefix: {what}"
            ))),
        }
    }

    pub fn save_state(&self, id: &str, state: &State) -> Result<()> {
        let json =
            serde_json::to_vec_pretty(state).map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        write_atomic(&self.dir(id).join("state.json"), &json)
    }

    /// Removes a container that is not running, with its anonymous volumes.
    pub fn remove(&self, container: &Container) -> Result<()> {
        let _lock = self.lock()?;
        for mount in container.config.mounts.iter().filter(|m| m.anonymous) {
            if let Some(volume) = Path::new(&mount.source).parent() {
                let _ = std::fs::remove_dir_all(volume);
            }
        }
        // config.json first: a half-removed directory is not listed.
        let _ = std::fs::remove_file(container.dir.join("config.json"));
        std::fs::remove_dir_all(&container.dir).map_err(io(&container.dir))
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&bytes).map_err(|e| RuntimeError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
