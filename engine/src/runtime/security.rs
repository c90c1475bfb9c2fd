//! docker's security options for a container: `--security-opt`
//! (`seccomp=unconfined|builtin|FILE`, `no-new-privileges[=BOOL]`),
//! `--cap-add`/`--cap-drop` and `--read-only`. They are read once, at
//! create, into a [`SecurityConfig`] (saved with the container and shown
//! by `inspect` as docker shows them), and made into a [`Confinement`]
//! each time a process starts in the container: the capability set, the
//! seccomp filter and no_new_privs, applied as the last steps before its
//! exec.

use super::capabilities;
use super::seccomp::{default, Profile, Program};
use super::{Result, RuntimeError};
use serde::{Deserialize, Serialize};

/// The seccomp profile a container runs under.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Seccomp {
    /// docker's default profile.
    #[default]
    Default,
    /// No filter.
    Unconfined,
    /// A profile given as a file: its JSON text.
    Profile(String),
}

/// The security options of a container, as given (normalized as docker's CLI does).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityConfig {
    /// `--security-opt` values, a profile file replaced by its JSON (docker's `HostConfig.SecurityOpt`).
    #[serde(default)]
    pub security_opt: Vec<String>,
    #[serde(default)]
    pub seccomp: Seccomp,
    #[serde(default)]
    pub no_new_privileges: bool,
    /// `CAP_...` names or `ALL`, sorted.
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub cap_drop: Vec<String>,
    /// `--read-only`: the root filesystem mounted read-only.
    #[serde(default)]
    pub readonly_rootfs: bool,
}

/// The security flags as given on the command line.
#[derive(Debug, Default)]
pub struct SecurityFlags<'a> {
    pub security_opt: &'a [String],
    pub cap_add: &'a [String],
    pub cap_drop: &'a [String],
    pub read_only: bool,
}

fn invalid(message: impl Into<String>) -> RuntimeError {
    RuntimeError::Invalid(message.into())
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

impl SecurityConfig {
    /// Reads the flags as docker's CLI and daemon do, and checks that
    /// the result can be applied (a bad profile fails here, before the
    /// container exists).
    pub fn from_flags(flags: &SecurityFlags<'_>) -> Result<SecurityConfig> {
        let (cap_add, cap_drop) = capabilities::effective_add_drop(flags.cap_add, flags.cap_drop);
        let mut config = SecurityConfig {
            cap_add,
            cap_drop,
            readonly_rootfs: flags.read_only,
            ..SecurityConfig::default()
        };
        for opt in flags.security_opt {
            let recorded = config.read_option(opt)?;
            config.security_opt.push(recorded);
        }
        Confinement::for_container(&config)?;
        Ok(config)
    }

    /// Applies one `--security-opt`; returns it as docker records it.
    fn read_option(&mut self, opt: &str) -> Result<String> {
        if opt == "no-new-privileges" {
            self.no_new_privileges = true;
            return Ok(opt.to_string());
        }
        let (key, value) = opt
            .split_once('=')
            .or_else(|| opt.split_once(':'))
            .filter(|(_, v)| !v.is_empty())
            .ok_or_else(|| invalid(format!("Invalid --security-opt: {opt:?}")))?;
        match (key, value) {
            ("seccomp", "unconfined") => self.seccomp = Seccomp::Unconfined,
            ("seccomp", "builtin") => self.seccomp = Seccomp::Default,
            ("seccomp", file) => {
                let text = std::fs::read_to_string(file).map_err(|e| {
                    invalid(format!("opening seccomp profile ({file}) failed: {e}"))
                })?;
                let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                    invalid(format!(
                        "compacting json for seccomp profile ({file}) failed: {e}"
                    ))
                })?;
                let compact = json.to_string();
                self.seccomp = Seccomp::Profile(compact.clone());
                return Ok(format!("seccomp={compact}"));
            }
            ("no-new-privileges", value) => {
                self.no_new_privileges = parse_bool(value)
                    .ok_or_else(|| invalid(format!("invalid --security-opt 2: {opt:?}")))?;
            }
            // No AppArmor or SELinux here: asking for none of them is what rctl gives.
            ("apparmor", "unconfined") | ("label", "disable") => {}
            ("apparmor" | "label", _) => {
                return Err(invalid(format!(
                    "--security-opt {opt}: rctl applies no AppArmor or SELinux confinement"
                )))
            }
            _ => return Err(invalid(format!("invalid --security-opt 2: {opt:?}"))),
        }
        Ok(opt.to_string())
    }

    /// The container's capabilities.
    pub fn capabilities(&self) -> Result<Vec<String>> {
        capabilities::container_set(&self.cap_add, &self.cap_drop).map_err(invalid)
    }
}

/// What a process in the container applies before its exec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confinement {
    /// The capabilities it may hold (bit mask).
    pub capabilities: u64,
    pub no_new_privileges: bool,
    /// The seccomp filter, unless unconfined.
    pub seccomp: Option<Program>,
    pub readonly_rootfs: bool,
}

impl Confinement {
    /// The confinement of a container's processes.
    pub fn for_container(config: &SecurityConfig) -> Result<Confinement> {
        let capabilities = config.capabilities()?;
        let seccomp = match &config.seccomp {
            Seccomp::Unconfined => None,
            Seccomp::Default => Program::build(&default::profile(), &capabilities)
                .map_err(|e| invalid(e.to_string()))?,
            Seccomp::Profile(json) => {
                let profile = Profile::parse(json)
                    .map_err(|e| invalid(format!("Decoding seccomp profile failed: {e}")))?;
                Program::build(&profile, &capabilities).map_err(|e| invalid(e.to_string()))?
            }
        };
        Ok(Confinement {
            capabilities: capabilities::mask(&capabilities),
            no_new_privileges: config.no_new_privileges,
            seccomp,
            readonly_rootfs: config.readonly_rootfs,
        })
    }

    /// The bounding set to keep: MKNOD only where the device cgroup
    /// guards its use (`keep_mknod`, from [`super::cgroup::restricts_devices`]).
    pub fn bounding(&self, keep_mknod: bool) -> u64 {
        if keep_mknod {
            self.capabilities
        } else {
            self.capabilities & !(1u64 << capabilities::MKNOD)
        }
    }

    /// Before the user changes: without no_new_privs the filter goes in
    /// now, while the process still holds CAP_SYS_ADMIN (as runc does).
    pub fn before_user_switch(&self) -> Result<(), String> {
        match &self.seccomp {
            Some(program) if !self.no_new_privileges => {
                program.install().map_err(|e| e.to_string())
            }
            _ => Ok(()),
        }
    }

    /// Right before the exec: no_new_privs, then the filter, as late as
    /// possible so the fewest calls of our own run under it.
    pub fn before_exec(&self) -> Result<(), String> {
        if !self.no_new_privileges {
            return Ok(());
        }
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(format!(
                "set no_new_privs: {}",
                std::io::Error::last_os_error()
            ));
        }
        match &self.seccomp {
            Some(program) => program.install().map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// For a process that stays in the container without an exec (the
    /// `--init` reaper): the same filter and capabilities as the command.
    pub fn confine_self(&self, keep_mknod: bool) -> Result<(), String> {
        self.before_user_switch()?;
        self.before_exec()?;
        capabilities::limit_process(self.bounding(keep_mknod))
            .map_err(|e| format!("limit capabilities: {e}"))
    }
}

/// `--read-only`: the root, built and entered, becomes read-only; what
/// is mounted on it (volumes, /dev, /proc, /sys, /dev/shm, the /etc
/// files) keeps its own mode, as docker does.
pub fn remount_root_readonly() -> Result<()> {
    use nix::mount::{mount, MsFlags};
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(super::sys("remount / read-only"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn read(opts: &[&str]) -> Result<SecurityConfig> {
        SecurityConfig::from_flags(&SecurityFlags {
            security_opt: &strings(opts),
            ..SecurityFlags::default()
        })
    }

    #[test]
    fn reads_security_opts_as_docker() {
        let config = read(&["no-new-privileges", "seccomp=unconfined"]).unwrap();
        assert!(config.no_new_privileges);
        assert_eq!(config.seccomp, Seccomp::Unconfined);
        assert_eq!(
            config.security_opt,
            ["no-new-privileges", "seccomp=unconfined"]
        );
        assert!(
            !read(&["no-new-privileges=false"])
                .unwrap()
                .no_new_privileges
        );
        assert!(read(&["no-new-privileges:true"]).unwrap().no_new_privileges);
        assert_eq!(
            read(&["seccomp=builtin"]).unwrap().seccomp,
            Seccomp::Default
        );
        let error = read(&["no-new-privileges=maybe"]).unwrap_err().to_string();
        assert_eq!(
            error,
            "invalid --security-opt 2: \"no-new-privileges=maybe\""
        );
        assert_eq!(
            read(&["seccomp"]).unwrap_err().to_string(),
            "Invalid --security-opt: \"seccomp\""
        );
        assert!(read(&["apparmor=unconfined", "label=disable"]).is_ok());
        assert!(read(&["apparmor=docker-default"]).is_err());
        assert!(read(&["systempaths=unconfined"]).is_err());
    }

    #[test]
    fn profile_files_are_recorded_as_json_and_checked_at_create() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.json");
        std::fs::write(
            &good,
            "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"syscalls\": []\n}\n",
        )
        .unwrap();
        let config = read(&[&format!("seccomp={}", good.display())]).unwrap();
        assert_eq!(
            config.security_opt,
            ["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[]}"]
        );
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"{"defaultAction": "SCMP_ACT_SOMETIMES"}"#).unwrap();
        let error = read(&[&format!("seccomp={}", bad.display())])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("Decoding seccomp profile failed"),
            "{error}"
        );
        let error = read(&["seccomp=/no/such/profile.json"])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("opening seccomp profile (/no/such/profile.json) failed"),
            "{error}"
        );
    }

    #[test]
    fn capabilities_shape_the_mask_and_the_filter() {
        let config = SecurityConfig::from_flags(&SecurityFlags {
            cap_add: &strings(&["sys_admin"]),
            cap_drop: &strings(&["mknod"]),
            ..SecurityFlags::default()
        })
        .unwrap();
        assert_eq!(config.cap_add, ["CAP_SYS_ADMIN"]);
        let confinement = Confinement::for_container(&config).unwrap();
        assert_eq!(
            confinement.capabilities,
            0xa804_25fb - (1 << 27) + (1 << 21)
        );
        let default = Confinement::for_container(&SecurityConfig::default()).unwrap();
        assert_eq!(default.capabilities, 0xa804_25fb);
        assert_eq!(default.bounding(false), 0xa004_25fb);
        // SYS_ADMIN allows mount and friends: a longer allow-list, a different program.
        assert_ne!(confinement.seccomp, default.seccomp);
        let error = SecurityConfig::from_flags(&SecurityFlags {
            cap_add: &strings(&["nosuch"]),
            ..SecurityFlags::default()
        })
        .unwrap_err()
        .to_string();
        assert_eq!(error, "invalid CapAdd: unknown capability: \"CAP_NOSUCH\"");
    }
}
