//! A profile made into one BPF program for one container: the rules that
//! apply to its architecture, capabilities and kernel (docker's
//! `setupSeccomp`), grouped by action, each group compiled by
//! `seccompiler`, and the groups chained into a single filter.
//!
//! `seccompiler` builds a filter with one action for the calls it
//! matches and one for the rest. A profile has several (ALLOW, ERRNO with
//! different numbers, ...), so each action gets its own group whose
//! "no match" exit is patched into a jump to the next group; the last
//! falls through to the profile's default action. Groups run from the
//! most restrictive action to the least, so a call two rules match gets
//! the stricter answer (what the kernel does between stacked filters).

use super::profile::{Action, Arg, Op, Profile};
use super::syscalls;
use super::SeccompError;
use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

/// The kernel's limit on one filter's length (`BPF_MAXINSNS`).
const MAX_INSTRUCTIONS: usize = 4096;

const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K
const BPF_JA: u16 = 0x05; // BPF_JMP | BPF_JA

/// What a profile is narrowed to: the machine and the container.
#[derive(Debug, Clone)]
pub struct Target {
    /// seccompiler's architecture (the one this binary runs on).
    pub arch: TargetArch,
    /// docker's name for it (`amd64`, `arm64`), as profiles' `arches` say it.
    pub arch_name: &'static str,
    /// The container's capabilities (`CAP_...`), its bounding set.
    pub capabilities: Vec<String>,
    /// The running kernel's (major, minor).
    pub kernel: (u32, u32),
}

impl Target {
    /// This machine, for a container with `capabilities`.
    pub fn native(capabilities: Vec<String>) -> Result<Target, SeccompError> {
        let (arch, arch_name) = native_arch()?;
        let release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .map_err(|e| SeccompError::Kernel(e.to_string()))?;
        let kernel = parse_kernel(&release).ok_or(SeccompError::Kernel(release))?;
        Ok(Target {
            arch,
            arch_name,
            capabilities,
            kernel,
        })
    }

    fn table(&self) -> &'static [(&'static str, i64)] {
        match self.arch {
            TargetArch::aarch64 => syscalls::AARCH64,
            _ => syscalls::X86_64,
        }
    }

    fn syscall(&self, name: &str) -> Option<i64> {
        let table = self.table();
        table
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| table[i].1)
    }
}

fn native_arch() -> Result<(TargetArch, &'static str), SeccompError> {
    match std::env::consts::ARCH {
        "x86_64" => Ok((TargetArch::x86_64, "amd64")),
        "aarch64" => Ok((TargetArch::aarch64, "arm64")),
        other => Err(SeccompError::Arch(other.to_string())),
    }
}

/// `6.1.0-18-amd64` → (6, 1).
fn parse_kernel(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

/// An action with its data, ordered from the most restrictive (as the
/// kernel ranks them) to the least.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    KillProcess,
    KillThread,
    Trap,
    Errno(u32),
    Trace(u32),
    Log,
    Allow,
}

impl Rank {
    fn of(action: Action, errno: Option<u32>) -> Result<Rank, SeccompError> {
        let errno = errno.unwrap_or(libc::EPERM as u32);
        Ok(match action {
            Action::Kill | Action::KillThread => Rank::KillThread,
            Action::KillProcess => Rank::KillProcess,
            Action::Trap => Rank::Trap,
            Action::Errno => Rank::Errno(errno),
            Action::Trace => Rank::Trace(errno),
            Action::Log => Rank::Log,
            Action::Allow => Rank::Allow,
            Action::Notify => return Err(SeccompError::Unsupported("SCMP_ACT_NOTIFY".into())),
        })
    }

    fn action(self) -> SeccompAction {
        match self {
            Rank::KillProcess => SeccompAction::KillProcess,
            Rank::KillThread => SeccompAction::KillThread,
            Rank::Trap => SeccompAction::Trap,
            Rank::Errno(e) => SeccompAction::Errno(e),
            Rank::Trace(e) => SeccompAction::Trace(e),
            Rank::Log => SeccompAction::Log,
            Rank::Allow => SeccompAction::Allow,
        }
    }
}

/// A syscall's rules in one group; `None` once some rule matches it unconditionally.
type Chains = BTreeMap<i64, Option<Vec<SeccompRule>>>;

/// The filter for `profile` on `target`; `None` when the profile asks for none.
pub fn compile(profile: &Profile, target: &Target) -> Result<Option<BpfProgram>, SeccompError> {
    let default = match profile.default_action {
        Some(action) => Rank::of(action, profile.default_errno_ret)?,
        None if profile.syscalls.is_empty() => return Ok(None),
        None => return Err(SeccompError::Invalid("no defaultAction".into())),
    };
    if !profile.architectures.is_empty() && !profile.arch_map.is_empty() {
        return Err(SeccompError::Invalid(
            "'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'".into(),
        ));
    }
    let mut groups: BTreeMap<Rank, Chains> = BTreeMap::new();
    for rule in &profile.syscalls {
        if !rule.name.is_empty() && !rule.names.is_empty() {
            return Err(SeccompError::Invalid(
                "'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'".into(),
            ));
        }
        let rank = Rank::of(rule.action, rule.errno_ret)?;
        let conditions = rule_conditions(&rule.args)?;
        if !applies(rule, target)? || rank == default {
            continue;
        }
        let names = if rule.name.is_empty() {
            rule.names.as_slice()
        } else {
            std::slice::from_ref(&rule.name)
        };
        let chains = groups.entry(rank).or_default();
        for name in names {
            let Some(number) = target.syscall(name) else {
                tracing::debug!(syscall = %name, "not a system call of this architecture; skipped");
                continue;
            };
            let chain = chains.entry(number).or_insert_with(|| Some(Vec::new()));
            match (&conditions, chain.as_mut()) {
                (None, _) => *chain = None,
                (Some(rules), Some(list)) => list.extend(rules.iter().cloned()),
                (Some(_), None) => {}
            }
        }
    }
    chain_groups(groups, default, target.arch)
}

/// Whether `rule` is for this container, as docker's `setupSeccomp` decides.
fn applies(rule: &super::profile::SyscallRule, target: &Target) -> Result<bool, SeccompError> {
    let has = |cap: &String| target.capabilities.contains(cap);
    let (inc, exc) = (&rule.includes, &rule.excludes);
    if exc.arches.iter().any(|a| a == target.arch_name) || exc.caps.iter().any(has) {
        return Ok(false);
    }
    if !exc.min_kernel.is_empty() && kernel_at_least(&exc.min_kernel, target)? {
        return Ok(false);
    }
    if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == target.arch_name) {
        return Ok(false);
    }
    if !inc.caps.iter().all(has) {
        return Ok(false);
    }
    if !inc.min_kernel.is_empty() && !kernel_at_least(&inc.min_kernel, target)? {
        return Ok(false);
    }
    Ok(true)
}

fn kernel_at_least(version: &str, target: &Target) -> Result<bool, SeccompError> {
    let wanted = parse_kernel(version)
        .ok_or_else(|| SeccompError::Invalid(format!("bad minKernel {version:?}")))?;
    Ok(target.kernel >= wanted)
}

/// The rules a rule's conditions make: `None` for no condition; one rule
/// (all must hold) when each argument is named once; else one rule per
/// condition (any may hold), as runc reads such rules.
fn rule_conditions(args: &[Arg]) -> Result<Option<Vec<SeccompRule>>, SeccompError> {
    if args.is_empty() {
        return Ok(None);
    }
    let conditions = args.iter().map(condition).collect::<Result<Vec<_>, _>>()?;
    let mut indexes: Vec<u32> = args.iter().map(|a| a.index).collect();
    indexes.sort_unstable();
    indexes.dedup();
    let rules = if indexes.len() == args.len() {
        vec![SeccompRule::new(conditions)?]
    } else {
        conditions
            .into_iter()
            .map(|c| SeccompRule::new(vec![c]))
            .collect::<Result<_, _>>()?
    };
    Ok(Some(rules))
}

fn condition(arg: &Arg) -> Result<SeccompCondition, SeccompError> {
    let index = u8::try_from(arg.index)
        .ok()
        .filter(|i| *i < 6)
        .ok_or_else(|| SeccompError::Invalid(format!("argument index {} (0 to 5)", arg.index)))?;
    let (op, value) = match arg.op {
        Op::NotEqual => (SeccompCmpOp::Ne, arg.value),
        Op::LessThan => (SeccompCmpOp::Lt, arg.value),
        Op::LessOrEqual => (SeccompCmpOp::Le, arg.value),
        Op::Equal => (SeccompCmpOp::Eq, arg.value),
        Op::GreaterOrEqual => (SeccompCmpOp::Ge, arg.value),
        Op::GreaterThan => (SeccompCmpOp::Gt, arg.value),
        Op::MaskedEqual => (SeccompCmpOp::MaskedEq(arg.value), arg.value_two),
    };
    // All 64 bits, as libseccomp compares them.
    Ok(SeccompCondition::new(
        index,
        SeccompCmpArgLen::Qword,
        op,
        value,
    )?)
}

/// One program: each group in rank order, its "no match" exit jumping to
/// the next group, then the default action.
fn chain_groups(
    groups: BTreeMap<Rank, Chains>,
    default: Rank,
    arch: TargetArch,
) -> Result<Option<BpfProgram>, SeccompError> {
    let mut sections: Vec<(BpfProgram, u32)> = Vec::new();
    for (rank, chains) in groups {
        if chains.is_empty() {
            continue;
        }
        // A "no match" return no group's own actions can produce.
        let marker = if rank == Rank::Trace(0xffff) {
            SeccompAction::Trace(0xfffe)
        } else {
            SeccompAction::Trace(0xffff)
        };
        let rules = chains
            .into_iter()
            .map(|(nr, rules)| (nr, rules.unwrap_or_default()))
            .collect();
        let filter = SeccompFilter::new(rules, marker.clone(), rank.action(), arch)?;
        sections.push((filter.try_into()?, u32::from(marker)));
    }
    if sections.is_empty() {
        // Only the default: seccompiler's architecture check, then it.
        let other = if default == Rank::Allow {
            SeccompAction::Log
        } else {
            SeccompAction::Allow
        };
        let filter = SeccompFilter::new(BTreeMap::new(), default.action(), other, arch)?;
        return Ok(Some(filter.try_into()?));
    }
    let total: usize = sections.iter().map(|(s, _)| s.len()).sum::<usize>() + 1;
    if total > MAX_INSTRUCTIONS {
        return Err(SeccompError::TooLarge(total));
    }
    let mut program: BpfProgram = Vec::with_capacity(total);
    for (section, marker) in sections {
        let end = program.len() + section.len();
        for instruction in section {
            let at = program.len();
            if instruction.code == BPF_RET_K && instruction.k == marker {
                // Jumps count from the next instruction; `end` is the next group's start.
                let offset = end - at - 1;
                program.push(sock_filter {
                    code: BPF_JA,
                    jt: 0,
                    jf: 0,
                    k: offset as u32,
                });
            } else {
                program.push(instruction);
            }
        }
    }
    program.push(sock_filter {
        code: BPF_RET_K,
        jt: 0,
        jf: 0,
        k: u32::from(default.action()),
    });
    Ok(Some(program))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kernel_releases() {
        assert_eq!(parse_kernel("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(parse_kernel("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel("5"), Some((5, 0)));
        assert_eq!(parse_kernel("x.y"), None);
    }

    #[test]
    fn tables_are_sorted_for_binary_search() {
        for table in [syscalls::X86_64, syscalls::AARCH64] {
            assert!(table.windows(2).all(|w| w[0].0 < w[1].0));
        }
        let target = Target {
            arch: TargetArch::x86_64,
            arch_name: "amd64",
            capabilities: Vec::new(),
            kernel: (6, 1),
        };
        assert_eq!(target.syscall("mkdir"), Some(83));
        assert_eq!(target.syscall("chown32"), None);
    }

    #[test]
    fn the_default_profile_builds_for_both_architectures_and_every_capability() {
        let all: Vec<String> = crate::runtime::capabilities::NAMES
            .iter()
            .map(|c| c.to_string())
            .collect();
        for (arch, arch_name) in [
            (TargetArch::x86_64, "amd64"),
            (TargetArch::aarch64, "arm64"),
        ] {
            for capabilities in [Vec::new(), all.clone()] {
                let target = Target {
                    arch,
                    arch_name,
                    capabilities,
                    kernel: (6, 1),
                };
                let program = compile(&super::super::default::profile(), &target)
                    .unwrap()
                    .unwrap();
                assert!(
                    program.len() < MAX_INSTRUCTIONS,
                    "{arch:?}: {}",
                    program.len()
                );
            }
        }
    }
}
