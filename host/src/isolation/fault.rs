//! What went wrong with a worker process, in words an operator can act on.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

/// A worker process that failed, as opposed to a plugin that returned an
/// error (which travels as a value and leaves the worker usable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// Killed by a signal it raised or received (segfault, abort, ...).
    #[error("crashed: its worker process was killed by signal {name} ({meaning})")]
    Signal {
        /// The signal's name, e.g. `SIGSEGV`.
        name: String,
        /// What it usually means.
        meaning: &'static str,
    },
    /// An allocation failed at the worker's `memory_limit`.
    #[error("ran out of memory: an allocation failed at its worker's memory_limit of {limit} and the worker died; raise memory_limit in plugins.toml or narrow the export")]
    MemoryLimit {
        /// The limit, for people (e.g. `256.0 MiB`).
        limit: String,
    },
    /// Exited on its own in the middle of a conversation.
    #[error("crashed: its worker process exited with code {code} in the middle of a call")]
    Exit {
        /// The exit code.
        code: i32,
    },
    /// Ran past the plugin's `timeout`, and was killed for it.
    #[error("ran past its timeout of {}; its worker process was killed", humantime::format_duration(*timeout))]
    Timeout {
        /// The plugin's timeout.
        timeout: Duration,
    },
    /// Sent something that is not the protocol.
    #[error("broke the worker protocol ({0}); its worker process was killed")]
    Protocol(String),
    /// The worker could not be started or refused its hello.
    #[error("could not start a worker process: {0}")]
    Start(String),
    /// The export stopped while the worker was busy: it was ended, and the
    /// plugin is not to blame.
    #[error("its worker process was ended because the export stopped")]
    Abandoned,
}

impl Fault {
    /// Whether the plugin's worker failed (as opposed to being ended
    /// because its export stopped).
    pub fn is_crash(&self) -> bool {
        !matches!(self, Fault::Abandoned)
    }

    /// Whether it counts towards the plugin's quarantine: the call itself
    /// took the worker down. A worker that could not start says nothing
    /// about the export's request (resources, a replaced library), so it
    /// does not count.
    pub fn counts_towards_quarantine(&self) -> bool {
        self.is_crash() && !matches!(self, Fault::Start(_))
    }

    /// A short lowercase label for logs and the API.
    pub fn label(&self) -> &'static str {
        match self {
            Fault::Signal { .. } => "signal",
            Fault::MemoryLimit { .. } => "memory_limit",
            Fault::Exit { .. } => "exit",
            Fault::Timeout { .. } => "timeout",
            Fault::Protocol(_) => "protocol",
            Fault::Start(_) => "start",
            Fault::Abandoned => "abandoned",
        }
    }

    /// The fault for a worker that ended with `status`; `stderr` is the
    /// tail of what it wrote there, where an allocator's last words show.
    pub fn from_exit(status: ExitStatus, stderr: &str, memory_limit: u64) -> Fault {
        // Rust's allocation failure handler prints this, then aborts.
        let allocation_failed =
            stderr.contains("memory allocation of") || stderr.contains("out of memory");
        if allocation_failed && !status.success() {
            return Fault::MemoryLimit {
                limit: bytesize::ByteSize::b(memory_limit)
                    .display()
                    .iec()
                    .to_string(),
            };
        }
        match (status.signal(), status.code()) {
            (Some(signal), _) => Fault::Signal {
                name: signal_name(signal),
                meaning: signal_meaning(signal),
            },
            (None, Some(code)) => Fault::Exit { code },
            (None, None) => Fault::Exit { code: -1 },
        }
    }
}

fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| format!("{signal}"))
}

fn signal_meaning(signal: i32) -> &'static str {
    use nix::sys::signal::Signal;
    match Signal::try_from(signal) {
        Ok(Signal::SIGSEGV) => "invalid memory access",
        Ok(Signal::SIGBUS) => "invalid memory access",
        Ok(Signal::SIGABRT) => "the plugin aborted",
        Ok(Signal::SIGILL) => "illegal instruction",
        Ok(Signal::SIGFPE) => "arithmetic fault",
        Ok(Signal::SIGKILL) => "killed from outside, often by the kernel's out-of-memory killer",
        Ok(Signal::SIGTERM) => "terminated from outside",
        Ok(Signal::SIGXCPU) => "CPU time limit",
        Ok(Signal::SIGPIPE) => "wrote to a closed pipe",
        _ => "unexpected signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wait status: the signal number when killed, `code << 8` when exited.
    fn status(raw: i32) -> ExitStatus {
        ExitStatus::from_raw(raw)
    }

    #[test]
    fn names_signals_exit_codes_and_the_memory_limit() {
        let segv = Fault::from_exit(status(11), "", 1 << 30);
        assert_eq!(segv.label(), "signal");
        assert!(segv.to_string().contains("SIGSEGV"), "{segv}");
        let exit = Fault::from_exit(status(3 << 8), "", 1 << 30);
        assert_eq!(exit, Fault::Exit { code: 3 });
        let oom = Fault::from_exit(
            status(6),
            "memory allocation of 16777216 bytes failed\n",
            256 << 20,
        );
        assert!(oom.to_string().contains("256.0 MiB"), "{oom}");
        assert!(oom.is_crash() && oom.counts_towards_quarantine());
        assert!(!Fault::Abandoned.is_crash());
        assert!(!Fault::Start("no memory".into()).counts_towards_quarantine());
    }
}
