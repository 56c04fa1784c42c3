//! The probe: a library is loaded in a throw-away child process before the
//! host maps it, so a library that crashes, hangs or aborts while loading
//! (a truncated file, a broken initialiser) costs a child, not the host.
//!
//! The child is the host binary as `export-host __plugin-worker --probe
//! COPY`: it caps its memory, loads the (already verified) private copy
//! through the real ABI checks, reads the manifest, prints one line and
//! exits. The host waits for it at most the plugin's `load_timeout`.

use super::worker_executable;
use export_plugin_api::host::PluginLibrary;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the probe child prints on success, before the plugin's name.
const LOADED: &str = "loaded ";
/// What it prints before the load error.
const REFUSED: &str = "refused ";

/// Why a probe refused a library.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The library loaded in the child but failed the ABI or version checks.
    #[error("{0}")]
    Refused(String),
    /// The child died of a signal while loading the library.
    #[error(
        "loading it killed a probe process with signal {signal}{detail}; the host did not load it"
    )]
    Crashed {
        /// The signal's name.
        signal: String,
        /// The child's last words, when it had any.
        detail: String,
    },
    /// The child exited without saying how the load went.
    #[error(
        "a probe process loading it exited with status {code}{detail}; the host did not load it"
    )]
    Exited {
        /// The exit status.
        code: i32,
        /// The child's last words, when it had any.
        detail: String,
    },
    /// Loading took longer than the limit.
    #[error("loading it did not finish within {} s in a probe process (load_timeout); the host did not load it", .0.as_secs_f64())]
    TimedOut(Duration),
    /// The child could not be started.
    #[error("cannot start a probe process to load it: {0}")]
    Start(std::io::Error),
}

/// Loads `library` (a verified private copy) in a child process and waits
/// for it at most `limit`.
pub fn probe(
    plugin: &str,
    library: &Path,
    memory_limit: u64,
    limit: Duration,
) -> Result<(), ProbeError> {
    let exe = worker_executable().map_err(ProbeError::Start)?;
    let mut command = Command::new(exe);
    command
        .arg("__plugin-worker")
        .arg("--plugin")
        .arg(plugin)
        .arg("--memory-limit")
        .arg(memory_limit.to_string())
        .arg("--parent")
        .arg(std::process::id().to_string())
        .arg("--probe")
        .arg(library)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child =
        super::process::spawn_from_long_lived_thread(command).map_err(ProbeError::Start)?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ProbeError::TimedOut(limit));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(err) => return Err(ProbeError::Start(err)),
        }
    };
    // A process the initialiser started may hold the pipes open: what the
    // probe said is read for a moment only.
    let said = stdout.recv_timeout(PIPE_GRACE).unwrap_or_default();
    let last_words = stderr.recv_timeout(PIPE_GRACE).unwrap_or_default();
    if status.success() && said.lines().any(|line| line.starts_with(LOADED)) {
        return Ok(());
    }
    if let Some(message) = said.lines().find_map(|line| line.strip_prefix(REFUSED)) {
        return Err(ProbeError::Refused(message.to_owned()));
    }
    let detail = last_line(&last_words)
        .map(|line| format!(" ({line})"))
        .unwrap_or_default();
    match status.signal() {
        Some(signal) => Err(ProbeError::Crashed {
            signal: nix::sys::signal::Signal::try_from(signal)
                .map(|s| s.as_str().to_owned())
                .unwrap_or_else(|_| signal.to_string()),
            detail,
        }),
        None => Err(ProbeError::Exited {
            code: status.code().unwrap_or(-1),
            detail,
        }),
    }
}

/// How long the pipes of a probe that exited may take to be read out.
const PIPE_GRACE: Duration = Duration::from_secs(1);

/// Reads `pipe` on a thread, keeping its first 64 KiB and discarding the
/// rest (so a chatty initialiser never blocks on a full pipe); the text
/// arrives on the receiver at end of stream.
fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<String> {
    let (send, receive) = mpsc::sync_channel(1);
    let Some(mut pipe) = pipe else {
        let _ = send.send(String::new());
        return receive;
    };
    let spawned = std::thread::Builder::new()
        .name("plugin-probe-pipe".to_owned())
        .spawn(move || {
            let mut bytes = Vec::new();
            let _ = (&mut pipe).take(64 * 1024).read_to_end(&mut bytes);
            let _ = std::io::copy(&mut pipe, &mut std::io::sink());
            let _ = send.send(String::from_utf8_lossy(&bytes).into_owned());
        });
    if let Err(err) = spawned {
        tracing::warn!(error = %err, "cannot read a probe process's output");
    }
    receive
}

fn last_line(text: &str) -> Option<&str> {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
}

/// The child's side: load `library`, say how it went on stdout, exit.
pub fn run(library: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    // SAFETY: the library passed the host's trust and structure checks;
    // whatever its initialisers do happens in this throw-away process.
    let line = match unsafe { PluginLibrary::load(library) } {
        Ok(loaded) => {
            let manifest = loaded.manifest();
            format!("{LOADED}{} {}", manifest.name, manifest.version)
        }
        Err(err) => format!("{REFUSED}{}", err.to_string().replace('\n', " ")),
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()?;
    // Exit at once: unloading a library runs its destructors, which are
    // none of the probe's business.
    std::process::exit(0)
}
