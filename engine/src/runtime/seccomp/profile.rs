//! A seccomp profile in docker's JSON format (what `--security-opt
//! seccomp=FILE` reads, and what docker's own `default.json` is written
//! in): a default action, then rules naming system calls with an action,
//! optional argument conditions, and `includes`/`excludes` that pick the
//! rules for a container's architecture, capabilities and kernel.

use serde::{Deserialize, Deserializer, Serialize};

/// What the filter does with a system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    #[serde(rename = "SCMP_ACT_KILL")]
    Kill,
    #[serde(rename = "SCMP_ACT_KILL_PROCESS")]
    KillProcess,
    #[serde(rename = "SCMP_ACT_KILL_THREAD")]
    KillThread,
    #[serde(rename = "SCMP_ACT_TRAP")]
    Trap,
    #[serde(rename = "SCMP_ACT_ERRNO")]
    Errno,
    #[serde(rename = "SCMP_ACT_TRACE")]
    Trace,
    #[serde(rename = "SCMP_ACT_ALLOW")]
    Allow,
    #[serde(rename = "SCMP_ACT_LOG")]
    Log,
    /// Hands the call to a user-space agent; not supported here.
    #[serde(rename = "SCMP_ACT_NOTIFY")]
    Notify,
}

/// How an argument is compared with a rule's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "SCMP_CMP_NE")]
    NotEqual,
    #[serde(rename = "SCMP_CMP_LT")]
    LessThan,
    #[serde(rename = "SCMP_CMP_LE")]
    LessOrEqual,
    #[serde(rename = "SCMP_CMP_EQ")]
    Equal,
    #[serde(rename = "SCMP_CMP_GE")]
    GreaterOrEqual,
    #[serde(rename = "SCMP_CMP_GT")]
    GreaterThan,
    /// `(arg & value) == value_two`.
    #[serde(rename = "SCMP_CMP_MASKED_EQ")]
    MaskedEqual,
}

/// One condition on a system call's argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    /// Which argument, 0 to 5.
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: Op,
}

/// When a rule applies: every listed architecture (any of), capability
/// (all of) and the kernel version (at least).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(default, deserialize_with = "null_default")]
    pub arches: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub caps: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub min_kernel: String,
}

/// One rule of the profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    /// The older single-name form (not together with `names`).
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub names: Vec<String>,
    pub action: Action,
    /// The errno for `SCMP_ACT_ERRNO` (default EPERM).
    #[serde(default)]
    pub errno_ret: Option<u32>,
    /// Conditions, all of which must hold (several on one argument: any of them, as runc reads them).
    #[serde(default, deserialize_with = "null_default")]
    pub args: Vec<Arg>,
    #[serde(default, deserialize_with = "null_default")]
    pub comment: String,
    #[serde(default)]
    pub includes: Filter,
    #[serde(default)]
    pub excludes: Filter,
}

impl SyscallRule {
    /// An unconditional rule.
    pub fn new(names: &[&str], action: Action) -> SyscallRule {
        SyscallRule {
            name: String::new(),
            names: names.iter().map(|n| n.to_string()).collect(),
            action,
            errno_ret: None,
            args: Vec::new(),
            comment: String::new(),
            includes: Filter::default(),
            excludes: Filter::default(),
        }
    }
}

/// An architecture with the ones that run on it (`archMap`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: String,
    #[serde(default, deserialize_with = "null_default")]
    pub sub_architectures: Vec<String>,
}

/// A whole profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// `None` with no rules means no filter at all, as docker reads it.
    #[serde(default)]
    pub default_action: Option<Action>,
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "null_default")]
    pub architectures: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub arch_map: Vec<ArchMap>,
    #[serde(default, deserialize_with = "null_default")]
    pub syscalls: Vec<SyscallRule>,
}

impl Profile {
    /// Reads a profile from its JSON text.
    pub fn parse(json: &str) -> Result<Profile, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// JSON `null` read as the empty value, as Go reads it into a slice or string.
fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_profiles_with_nulls_and_both_name_forms() {
        let profile = Profile::parse(
            r#"{
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": 1,
                "archMap": [{"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": null}],
                "syscalls": [
                    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                    {"name": "clone", "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
                     "excludes": {"caps": ["CAP_SYS_ADMIN"]}, "includes": {}, "comment": null}
                ]
            }"#,
        )
        .unwrap();
        assert_eq!(profile.default_action, Some(Action::Errno));
        assert!(profile.arch_map[0].sub_architectures.is_empty());
        assert_eq!(profile.syscalls[0].errno_ret, Some(13));
        assert_eq!(profile.syscalls[1].name, "clone");
        assert_eq!(profile.syscalls[1].args[0].op, Op::MaskedEqual);
        assert_eq!(profile.syscalls[1].excludes.caps, ["CAP_SYS_ADMIN"]);
    }

    #[test]
    fn refuses_unknown_actions_and_operators() {
        let bad_action = r#"{"defaultAction": "SCMP_ACT_MAYBE"}"#;
        assert!(Profile::parse(bad_action)
            .unwrap_err()
            .to_string()
            .contains("SCMP_ACT_MAYBE"));
        let bad_op = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
            "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}"#;
        assert!(Profile::parse(bad_op).is_err());
    }
}
