//! Seccomp: the system calls a container's processes may make.
//!
//! - [`profile`]: docker's profile format (what `--security-opt seccomp=FILE` reads).
//! - [`default`]: docker's default profile, which every container gets unless told otherwise.
//! - [`compile`]: a profile narrowed to one container and built into one BPF program
//!   (by `seccompiler`, rust-vmm's pure-Rust filter compiler).
//! - [`Program`]: that program as the monitor hands it to the init, and its installation.

pub mod compile;
pub mod default;
pub mod profile;
mod syscalls;

pub use compile::Target;
pub use profile::Profile;
use serde::{Deserialize, Serialize};

/// Why a profile cannot be made into a filter, or the filter not installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("Decoding seccomp profile failed: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("invalid seccomp profile: {0}")]
    Invalid(String),
    #[error("seccomp profile: {0} is not supported")]
    Unsupported(String),
    #[error("seccomp profile: {0}")]
    Build(#[from] seccompiler::BackendError),
    #[error(
        "the seccomp profile makes a filter of {0} instructions; the kernel takes at most 4096"
    )]
    TooLarge(usize),
    #[error("seccomp filters are not built for this architecture ({0}); use --security-opt seccomp=unconfined")]
    Arch(String),
    #[error("cannot read the kernel version: {0}")]
    Kernel(String),
    #[error("install the seccomp filter: {0}")]
    Install(std::io::Error),
}

/// One BPF instruction, laid out as `struct sock_filter` (code, jt, jf, k).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instruction(pub u16, pub u8, pub u8, pub u32);

/// A compiled filter, ready to install.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program(pub Vec<Instruction>);

impl Program {
    /// The filter `profile` makes for a container with `capabilities` on
    /// this machine; `None` when the profile asks for no filter.
    pub fn build(
        profile: &Profile,
        capabilities: &[String],
    ) -> Result<Option<Program>, SeccompError> {
        let target = Target::native(capabilities.to_vec())?;
        Ok(compile::compile(profile, &target)?.map(|bpf| {
            Program(
                bpf.into_iter()
                    .map(|i| Instruction(i.code, i.jt, i.jf, i.k))
                    .collect(),
            )
        }))
    }

    /// Installs the filter on the calling thread (and what it execs).
    /// Needs no_new_privs set, or CAP_SYS_ADMIN. Allocates nothing (safe
    /// after a fork).
    pub fn install(&self) -> Result<(), SeccompError> {
        let len = u16::try_from(self.0.len()).map_err(|_| SeccompError::TooLarge(self.0.len()))?;
        let program = libc::sock_fprog {
            len,
            // `Instruction` is `repr(C)` with sock_filter's fields in its order.
            filter: self.0.as_ptr().cast::<libc::sock_filter>().cast_mut(),
        };
        // SAFETY: `program` points at `len` instructions laid out as the
        // kernel's sock_filter, alive for the call; the kernel copies them
        // and keeps no pointer.
        let done = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &program as *const libc::sock_fprog,
            )
        };
        if done != 0 {
            return Err(SeccompError::Install(std::io::Error::last_os_error()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
