//! The walls around a plugin worker: what an isolated plugin can reach.
//!
//! The host builds a [`Policy`] from the plugin's table (the paths its
//! `[config]` names, its `network` and `env` grants) and hands it to the
//! worker, which enters the sandbox after it has read the hello and copied
//! and checked the library, and before the library is loaded: no plugin
//! code ever runs outside it. The layers, each applied when the kernel has
//! it (README, "Process isolation"):
//!
//! - a user namespace (no capability over the host's processes or files,
//!   process counts of its own) and, unless the table grants network
//!   access, an empty network namespace: no interface but a downed
//!   loopback, so no TCP, UDP or raw socket reaches anything;
//! - Landlock: read-only access to the system libraries, locale and time
//!   zone data, the private library copy and the configured paths; read and
//!   write in a private temporary folder only; TCP connect to the granted
//!   ports only and no TCP bind; no signal to and no abstract unix socket of
//!   any process outside the sandbox (ptrace of outside processes is always
//!   denied to a Landlock domain);
//! - `PR_SET_NO_NEW_PRIVS`, not dumpable (no core file, no ptrace by a
//!   process of the same uid), and rlimits on processes, file size, open
//!   descriptors and core size. The host adds an empty environment, a
//!   session of its own and `PR_SET_PDEATHSIG`.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// How strong a worker sandbox is, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxLevel {
    /// Only the process-level limits (no-new-privs, rlimits, empty
    /// environment): the worker reads and connects to what the host can.
    #[default]
    None,
    /// Some kernel isolation: an older Landlock (fewer rights enforced) or
    /// namespaces without Landlock.
    Partial,
    /// Landlock with filesystem, TCP and scope rules (ABI 6 or later) and
    /// user and network namespaces.
    Full,
}

impl SandboxLevel {
    /// `none`, `partial` or `full`, as in plugins.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxLevel::None => "none",
            SandboxLevel::Partial => "partial",
            SandboxLevel::Full => "full",
        }
    }
}

impl std::fmt::Display for SandboxLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first Landlock ABI with everything the sandbox uses: filesystem
/// rights including truncate and device ioctls, TCP ports (4), and the
/// signal and abstract unix socket scopes (6).
const LANDLOCK_FULL_ABI: i32 = 6;

/// What this machine's kernel offers a worker sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Support {
    /// The Landlock ABI version, when Landlock is enabled.
    pub landlock_abi: Option<i32>,
    /// Whether an unprivileged process may create user and network namespaces.
    pub namespaces: bool,
}

impl Support {
    /// What the running kernel offers (detected once per process).
    pub fn detect() -> Support {
        static DETECTED: OnceLock<Support> = OnceLock::new();
        *DETECTED.get_or_init(|| Support {
            landlock_abi: landlock_abi(),
            namespaces: namespaces_available(),
        })
    }

    /// `full (ABI 7)`, `partial (ABI 3)` or `none`.
    pub fn landlock(&self) -> String {
        match self.landlock_abi {
            Some(abi) if abi >= LANDLOCK_FULL_ABI => format!("full (ABI {abi})"),
            Some(abi) => format!("partial (ABI {abi})"),
            None => "none".to_owned(),
        }
    }

    /// The level a worker started now gets.
    pub fn level(&self) -> SandboxLevel {
        match (self.landlock_abi, self.namespaces) {
            (Some(abi), true) if abi >= LANDLOCK_FULL_ABI => SandboxLevel::Full,
            (None, false) => SandboxLevel::None,
            _ => SandboxLevel::Partial,
        }
    }

    /// `full: landlock full (ABI 7), namespaces yes`, for messages and the CLI.
    pub fn describe(&self) -> String {
        format!(
            "{}: landlock {}, namespaces {}",
            self.level(),
            self.landlock(),
            if self.namespaces { "yes" } else { "no" }
        )
    }

    /// `{"level", "landlock", "namespaces"}` for `/v1/plugins` and `plugins list --json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "level": self.level().as_str(),
            "landlock": self.landlock(),
            "namespaces": self.namespaces,
        })
    }
}

/// The sandbox a plugin's workers get, for listings (`plugins list`,
/// `/v1/plugins`): `None` for a plugin that runs in the host.
pub fn for_plugin(isolation: super::settings::Isolation) -> Option<Support> {
    match isolation {
        super::settings::Isolation::Process => Some(Support::detect()),
        super::settings::Isolation::InProcess => None,
    }
}

/// The Landlock ABI the kernel supports, `None` when Landlock is missing or off.
fn landlock_abi() -> Option<i32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute, size 0 and the VERSION flag the call
    // only returns a number; it reads and writes no memory.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    i32::try_from(abi).ok().filter(|abi| *abi > 0)
}

/// Whether a child can unshare a user and a network namespace: tried in a
/// throw-away child, since a multi-threaded process (the host) never can.
fn namespaces_available() -> bool {
    // SAFETY: between fork and _exit the child calls only unshare and _exit,
    // both async-signal-safe, so the parent's other threads (and any lock
    // they held at the fork) do not matter.
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            let entered = libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) == 0;
            libc::_exit(if entered { 0 } else { 1 });
        }
        if pid < 0 {
            return false;
        }
        let mut status = 0;
        loop {
            let waited = libc::waitpid(pid, &mut status, 0);
            if waited == pid {
                break;
            }
            if waited < 0
                && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
            {
                return false;
            }
        }
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
    }
}

/// Largest file a worker may write (RLIMIT_FSIZE): its own temporary files
/// only, since its output travels over the socket.
const MAX_FILE_SIZE: u64 = 4 << 30;
/// Open descriptors a worker may hold (RLIMIT_NOFILE).
const MAX_OPEN_FILES: u64 = 1024;
/// Threads and processes a worker may run at once (RLIMIT_NPROC, counted in
/// its own user namespace).
const MAX_PROCESSES: u64 = 256;

/// What one worker's sandbox lets through: set by the host, applied by the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Files and folders it may read (besides the system's libraries and data).
    pub read: Vec<PathBuf>,
    /// Its private temporary folder: the only place it may write.
    pub tmp: PathBuf,
    /// TCP ports it may connect to; empty means no network at all.
    pub connect: Vec<u16>,
    /// Whether to use user and network namespaces (the host found them available).
    pub namespaces: bool,
    /// The weakest sandbox it may run in.
    pub minimum: SandboxLevel,
}

impl Policy {
    /// The policy of a worker of a plugin whose table grants `grants`.
    pub fn new(grants: &super::settings::SandboxGrants, tmp: &Path, support: &Support) -> Policy {
        let mut connect: Vec<u16> = grants
            .network
            .iter()
            .filter_map(|address| address.rsplit_once(':'))
            .filter_map(|(_, port)| port.parse().ok())
            .collect();
        connect.sort_unstable();
        connect.dedup();
        Policy {
            read: grants.read.clone(),
            tmp: tmp.to_owned(),
            connect,
            namespaces: support.namespaces,
            minimum: grants.minimum,
        }
    }
}

/// What [`enter`] achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entered {
    /// The sandbox's strength.
    pub level: SandboxLevel,
    /// For the worker's log.
    pub summary: String,
}

/// Why the sandbox could not be entered.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A system call refused.
    #[error("cannot {what}: {error}")]
    Os {
        /// What was attempted.
        what: &'static str,
        /// The kernel's answer.
        error: std::io::Error,
    },
    /// The Landlock rules could not be built or applied.
    #[error("cannot apply the Landlock rules: {0}")]
    Landlock(#[from] landlock::RulesetError),
    /// Weaker than plugins.toml's `sandbox_minimum`.
    #[error("the worker's sandbox is only {got} ({summary}) but plugins.toml sets sandbox_minimum = \"{minimum}\"; run on a kernel with Landlock (ABI 6 or later) and unprivileged user namespaces, or lower sandbox_minimum")]
    BelowMinimum {
        /// What was reached.
        got: SandboxLevel,
        /// What the layers did.
        summary: String,
        /// What was asked.
        minimum: SandboxLevel,
    },
}

/// Read-only system paths every worker needs: the dynamic loader's cache
/// and libraries, locale and time zone data, the CPU list thread pools size
/// themselves by, and the harmless devices.
const SYSTEM_READ: &[&str] = &[
    "/usr/lib",
    "/usr/lib64",
    "/usr/lib32",
    "/lib",
    "/lib64",
    "/lib32",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/timezone",
    "/usr/share/zoneinfo",
    "/usr/share/locale",
    "/usr/share/i18n",
    "/sys/devices/system/cpu",
    "/dev/urandom",
    "/dev/random",
    "/dev/zero",
];

/// Devices a worker may also write (its stdin is /dev/null).
const SYSTEM_WRITE: &[&str] = &["/dev/null", "/dev/full"];

/// Read-only paths a worker with a network grant needs to resolve names and
/// check TLS certificates.
const NETWORK_READ: &[&str] = &[
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/ssl",
    "/etc/pki",
    "/etc/ca-certificates",
    "/usr/share/ca-certificates",
];

/// Enters the sandbox `policy` describes, for good. The process must still
/// be single-threaded (a user namespace cannot be entered otherwise, and
/// Landlock binds only the calling thread and those it starts later).
pub fn enter(policy: &Policy) -> Result<Entered, SandboxError> {
    let os = |what: &'static str| move |error: std::io::Error| SandboxError::Os { what, error };
    let namespaces = if policy.namespaces {
        let mut flags = libc::CLONE_NEWUSER;
        if policy.connect.is_empty() {
            flags |= libc::CLONE_NEWNET;
        }
        // SAFETY: unshare takes flags only.
        if unsafe { libc::unshare(flags) } != 0 {
            return Err(os("enter a user and network namespace")(
                std::io::Error::last_os_error(),
            ));
        }
        true
    } else {
        false
    };
    nix::sys::prctl::set_no_new_privs().map_err(|errno| os("set no_new_privs")(errno.into()))?;
    // Not dumpable: no core file, and no ptrace or /proc/PID/mem by any
    // process of the same uid (other workers included).
    nix::sys::prctl::set_dumpable(false)
        .map_err(|errno| os("clear the dumpable flag")(errno.into()))?;
    limit_resources().map_err(os("set the worker's rlimits"))?;
    forbid_unix_sockets().map_err(os("install the seccomp filter"))?;
    let (landlock_level, landlock_summary) = restrict_with_landlock(policy)?;
    let level = match (landlock_level, namespaces) {
        (SandboxLevel::Full, true) => SandboxLevel::Full,
        (SandboxLevel::None, false) => SandboxLevel::None,
        _ => SandboxLevel::Partial,
    };
    let summary = format!(
        "landlock {landlock_summary}, namespaces {}{}",
        if namespaces { "user" } else { "none" },
        if namespaces && policy.connect.is_empty() {
            "+net"
        } else {
            ""
        }
    );
    if level < policy.minimum {
        return Err(SandboxError::BelowMinimum {
            got: level,
            summary,
            minimum: policy.minimum,
        });
    }
    Ok(Entered { level, summary })
}

/// A seccomp filter refusing `socket(AF_UNIX, ...)` (EACCES): Landlock
/// governs pathname unix sockets only from ABI 9, and a socket file such as
/// a local PostgreSQL's or a container engine's would otherwise be reachable.
/// The worker's own socket is already open; nothing it serves needs another.
fn forbid_unix_sockets() -> std::io::Result<()> {
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xC000_00B7;
    // x32 system calls reach the same kernel code under other numbers.
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    // Offsets in struct seccomp_data: nr, arch, then the arguments (the low
    // half of args[0] on a little-endian machine).
    const NR: u32 = 0;
    const ARCH: u32 = 4;
    const ARG0: u32 = 16;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    let refuse = libc::SECCOMP_RET_ERRNO | libc::EACCES as u32;
    let filter = [
        stmt(load, ARCH),
        jump(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            AUDIT_ARCH,
            1,
            0,
        ),
        stmt(ret, libc::SECCOMP_RET_KILL_PROCESS),
        stmt(load, NR),
        jump(
            libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K,
            X32_SYSCALL_BIT,
            4,
            0,
        ),
        jump(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            libc::SYS_socket as u32,
            0,
            4,
        ),
        stmt(load, ARG0),
        jump(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            libc::AF_UNIX as u32,
            0,
            2,
        ),
        stmt(ret, refuse),
        stmt(ret, refuse),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `program` points at `filter`, which outlives the call; the
    // kernel copies the filter. no_new_privs is already set.
    let installed = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &program as *const libc::sock_fprog,
        )
    };
    if installed != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn limit_resources() -> std::io::Result<()> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let cap = |resource: Resource, wanted: u64| -> std::io::Result<()> {
        let (_, hard) = getrlimit(resource)?;
        let limit = wanted.min(hard);
        setrlimit(resource, limit, limit)?;
        Ok(())
    };
    cap(Resource::RLIMIT_CORE, 0)?;
    cap(Resource::RLIMIT_FSIZE, MAX_FILE_SIZE)?;
    cap(Resource::RLIMIT_NOFILE, MAX_OPEN_FILES)?;
    cap(Resource::RLIMIT_NPROC, MAX_PROCESSES)?;
    Ok(())
}

/// Applies the Landlock rules; the level reached and a few words on it.
fn restrict_with_landlock(policy: &Policy) -> Result<(SandboxLevel, String), SandboxError> {
    use landlock::{
        path_beneath_rules, Access, AccessFs, AccessNet, NetPort, Ruleset, RulesetAttr,
        RulesetCreatedAttr, RulesetStatus, Scope, ABI,
    };
    let Some(kernel_abi) = landlock_abi() else {
        return Ok((SandboxLevel::None, "none".to_owned()));
    };
    // Ask for exactly what this kernel has, so "fully enforced" means every
    // right it knows is handled.
    let abi = ABI::from(kernel_abi);
    let read = AccessFs::from_read(abi);
    let all = AccessFs::from_all(abi);
    let mut system_read: Vec<&Path> = SYSTEM_READ.iter().map(Path::new).collect();
    if !policy.connect.is_empty() {
        system_read.extend(NETWORK_READ.iter().map(Path::new));
    }
    let status = Ruleset::default()
        .handle_access(all)?
        .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)?
        .scope(Scope::AbstractUnixSocket | Scope::Signal)?
        .create()?
        .add_rules(path_beneath_rules(&system_read, read))?
        .add_rules(path_beneath_rules(&policy.read, read))?
        .add_rules(path_beneath_rules(
            SYSTEM_WRITE.iter().map(Path::new),
            read | AccessFs::WriteFile,
        ))?
        .add_rules(path_beneath_rules([&policy.tmp], all))?
        .add_rules(policy.connect.iter().map(|port| {
            Ok::<_, landlock::RulesetError>(NetPort::new(*port, AccessNet::ConnectTcp))
        }))?
        .restrict_self()?;
    let level = match status.ruleset {
        RulesetStatus::FullyEnforced if kernel_abi >= LANDLOCK_FULL_ABI => SandboxLevel::Full,
        RulesetStatus::NotEnforced => SandboxLevel::None,
        _ => SandboxLevel::Partial,
    };
    let words = match level {
        SandboxLevel::Full => format!("full (ABI {kernel_abi})"),
        SandboxLevel::Partial => format!("partial (ABI {kernel_abi})"),
        SandboxLevel::None => "not enforced".to_owned(),
    };
    Ok((level, words))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_and_spell_as_in_plugins_toml() {
        assert!(SandboxLevel::None < SandboxLevel::Partial);
        assert!(SandboxLevel::Partial < SandboxLevel::Full);
        for level in [
            SandboxLevel::None,
            SandboxLevel::Partial,
            SandboxLevel::Full,
        ] {
            let text = serde_json::to_string(&level).unwrap();
            assert_eq!(text, format!("\"{level}\""));
        }
    }

    #[test]
    fn support_levels() {
        let full = Support {
            landlock_abi: Some(7),
            namespaces: true,
        };
        assert_eq!(full.level(), SandboxLevel::Full);
        assert_eq!(full.landlock(), "full (ABI 7)");
        let old = Support {
            landlock_abi: Some(3),
            namespaces: true,
        };
        assert_eq!(old.level(), SandboxLevel::Partial);
        assert_eq!(old.landlock(), "partial (ABI 3)");
        let bare = Support {
            landlock_abi: None,
            namespaces: false,
        };
        assert_eq!(bare.level(), SandboxLevel::None);
        assert_eq!(bare.describe(), "none: landlock none, namespaces no");
    }

    #[test]
    fn grants_become_ports() {
        let grants = crate::isolation::settings::SandboxGrants {
            network: vec![
                "db.internal:5432".into(),
                "127.0.0.1:5432".into(),
                "[::1]:6432".into(),
            ],
            env: vec![],
            read: vec![PathBuf::from("/srv/data")],
            minimum: SandboxLevel::Partial,
        };
        let support = Support {
            landlock_abi: Some(7),
            namespaces: true,
        };
        let policy = Policy::new(&grants, Path::new("/tmp/w"), &support);
        assert_eq!(policy.connect, [5432, 6432]);
        assert_eq!(policy.read, [PathBuf::from("/srv/data")]);
        assert!(policy.namespaces);
        assert_eq!(policy.minimum, SandboxLevel::Partial);
    }
}
