//! The host's side of one worker process: start it, talk to it, and tell
//! what happened when it stops answering.

use super::fault::Fault;
use super::protocol::{self, FrameError, Reply, Request};
use super::sandbox::{Policy, Support};
use super::settings::WorkerSettings;
use super::worker_executable;
use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Lines of a worker's stderr kept for diagnosing its end.
const STDERR_TAIL_LINES: usize = 20;

/// The last lines a worker wrote to stderr.
type StderrTail = Arc<Mutex<VecDeque<String>>>;

/// How long a worker whose socket closed gets to finish dying.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// When a call must be answered by, and the plugin timeout that set it.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    /// The instant.
    pub at: Instant,
    /// The plugin's timeout.
    pub timeout: Duration,
}

impl Deadline {
    /// `timeout` from `started`.
    pub fn after(started: Instant, timeout: Duration) -> Deadline {
        Deadline {
            at: started + timeout,
            timeout,
        }
    }
}

/// Ends a worker from another thread (a run that gave up on it).
#[derive(Clone)]
pub struct Killer {
    child: Arc<Mutex<Child>>,
    killed_for: Arc<Mutex<Option<Fault>>>,
    busy: Arc<AtomicBool>,
}

impl Killer {
    /// Kills the worker, and blames `reason` for its end.
    pub fn kill(&self, reason: Fault) {
        let mut killed_for = self
            .killed_for
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        killed_for.get_or_insert(reason);
        // Once reaped, `kill` is a no-op: the pid is never reused under us.
        let _ = self
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .kill();
    }

    /// Kills the worker only if it is inside a call (so its stream cannot
    /// be closed cleanly), not blaming the plugin.
    pub fn abandon(&self) {
        if self.busy.load(Ordering::SeqCst) {
            self.kill(Fault::Abandoned);
        }
    }
}

/// One live worker process.
pub struct WorkerProcess {
    plugin: String,
    pid: u32,
    socket: UnixStream,
    killer: Killer,
    stderr_tail: StderrTail,
    stderr_done: Receiver<()>,
    memory_limit: u64,
    /// The largest reply payload accepted (`max_frame`).
    max_frame: u64,
    /// Set once a call failed: the worker is not reused.
    broken: bool,
    /// The worker's private temporary folder, removed after it ends
    /// (declared last: dropped after the worker is reaped).
    _tmp: tempfile::TempDir,
}

impl WorkerProcess {
    /// Starts `export-host __plugin-worker` for `plugin` with its table's
    /// worker settings: an address space capped at `memory_limit`, and the
    /// sandbox its grants describe (refused when this machine cannot give
    /// the `sandbox_minimum` asked for).
    pub fn spawn(plugin: &str, settings: &WorkerSettings) -> Result<WorkerProcess, Fault> {
        let start = |what: &str, err: io::Error| Fault::Start(format!("{what}: {err}"));
        let memory_limit = settings.memory_limit;
        let support = Support::detect();
        let minimum = settings.sandbox.minimum;
        if support.level() < minimum {
            return Err(Fault::Start(format!(
                "this machine's worker sandbox is only {} (landlock {}, namespaces {}), and plugins.toml sets sandbox_minimum = \"{minimum}\"; run on a kernel with Landlock (ABI 6 or later) and unprivileged user namespaces (and allow them to the service), or lower sandbox_minimum",
                support.level(),
                support.landlock(),
                if support.namespaces { "yes" } else { "no" },
            )));
        }
        let tmp =
            private_folder().map_err(|e| start("cannot make the worker's temporary folder", e))?;
        let policy = Policy::new(&settings.sandbox, tmp.path(), &support);
        let policy = serde_json::to_string(&policy)
            .map_err(|e| start("cannot describe the sandbox", io::Error::other(e)))?;
        let (ours, theirs) = UnixStream::pair().map_err(|e| start("cannot make a socket", e))?;
        let exe = worker_executable().map_err(|e| start("cannot find the host binary", e))?;
        let mut command = Command::new(exe);
        command
            .arg("__plugin-worker")
            .arg("--plugin")
            .arg(plugin)
            .arg("--memory-limit")
            .arg(memory_limit.to_string())
            .arg("--parent")
            .arg(std::process::id().to_string())
            .arg("--max-frame")
            .arg(settings.max_frame.to_string())
            .arg("--sandbox")
            .arg(policy)
            // Nothing of the host's environment (credentials, database
            // URLs) but what the table grants and the worker itself uses.
            .env_clear()
            .env("TMPDIR", tmp.path())
            // The socket is the worker's stdin; it moves it aside at once and
            // puts /dev/null there. Its stdout and stderr never carry the
            // protocol, so whatever a plugin prints cannot corrupt it.
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in std::iter::once("EXPORT_HOST_LOG")
            .chain(settings.sandbox.env.iter().map(String::as_str))
        {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        // Its own session (so its own process group, and no controlling
        // terminal to push input into): a Ctrl-C meant for the host (which
        // then stops gracefully) must not kill the exports still running.
        // SAFETY: setsid is async-signal-safe and touches no memory.
        unsafe {
            command.pre_exec(|| {
                nix::unistd::setsid().map_err(io::Error::from)?;
                Ok(())
            });
        }
        let mut child = spawn_from_long_lived_thread(command)
            .map_err(|e| start("cannot start the worker process", e))?;
        let pid = child.id();
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let (stderr_sender, stderr_done) = mpsc::sync_channel(1);
        if let Some(stderr) = child.stderr.take() {
            forward(
                plugin,
                pid,
                "stderr",
                stderr,
                Some((stderr_tail.clone(), stderr_sender)),
            );
        }
        if let Some(stdout) = child.stdout.take() {
            forward(plugin, pid, "stdout", stdout, None);
        }
        tracing::debug!(plugin, pid, "plugin worker started");
        Ok(WorkerProcess {
            plugin: plugin.to_owned(),
            pid,
            socket: ours,
            killer: Killer {
                child: Arc::new(Mutex::new(child)),
                killed_for: Arc::new(Mutex::new(None)),
                busy: Arc::new(AtomicBool::new(false)),
            },
            stderr_tail,
            stderr_done,
            memory_limit,
            max_frame: settings.max_frame,
            broken: false,
            _tmp: tmp,
        })
    }

    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A handle that can end this worker from another thread.
    pub fn killer(&self) -> Killer {
        self.killer.clone()
    }

    /// Whether the worker can take another conversation.
    pub fn is_usable(&mut self) -> bool {
        !self.broken
            && matches!(
                self.killer
                    .child
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .try_wait(),
                Ok(None)
            )
    }

    /// Sends `request` (with `payload`) and waits for the reply, at most
    /// until `deadline`. Any failure ends the worker and says why.
    pub fn call(
        &mut self,
        request: &Request,
        payload: &[u8],
        deadline: Option<&Deadline>,
    ) -> Result<(Reply, Vec<u8>), Fault> {
        if self.broken {
            return Err(Fault::Protocol("the worker already failed".to_owned()));
        }
        self.killer.busy.store(true, Ordering::SeqCst);
        let result = self.exchange(request, payload, deadline);
        self.killer.busy.store(false, Ordering::SeqCst);
        result.map_err(|err| {
            self.broken = true;
            self.diagnose(err, deadline)
        })
    }

    fn exchange(
        &mut self,
        request: &Request,
        payload: &[u8],
        deadline: Option<&Deadline>,
    ) -> Result<(Reply, Vec<u8>), FrameError> {
        let wait = match deadline {
            None => None,
            Some(deadline) => {
                let left = deadline.at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::from(io::ErrorKind::TimedOut).into());
                }
                Some(left)
            }
        };
        self.socket.set_write_timeout(wait)?;
        self.socket.set_read_timeout(wait)?;
        protocol::write_frame(&mut self.socket, request, payload)?;
        match protocol::read_frame_within(&mut self.socket, self.max_frame)? {
            Some(reply) => Ok(reply),
            None => Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
        }
    }

    /// Why the conversation failed: a timeout or garbage (the worker is
    /// killed for it), or the worker's own end (waited for and read).
    fn diagnose(&mut self, err: FrameError, deadline: Option<&Deadline>) -> Fault {
        match err {
            FrameError::Io(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                let timeout = deadline.map(|d| d.timeout).unwrap_or_default();
                self.killer.kill(Fault::Timeout { timeout });
            }
            FrameError::Malformed(message) => self.killer.kill(Fault::Protocol(message)),
            FrameError::Io(err) => {
                tracing::debug!(plugin = %self.plugin, pid = self.pid, error = %err, "worker connection lost");
            }
        }
        let status = self.wait_for_exit();
        if let Some(reason) = self
            .killer
            .killed_for
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return reason;
        }
        // Its last words are on stderr: let the forwarder read them to the end.
        let _ = self.stderr_done.recv_timeout(Duration::from_secs(1));
        let tail: Vec<String> = self
            .stderr_tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        match status {
            Some(status) => Fault::from_exit(status, &tail.join("\n"), self.memory_limit),
            None => Fault::Protocol("the worker closed its socket but kept running".to_owned()),
        }
    }

    /// Waits a little for the worker to exit, then kills it; the status when known.
    fn wait_for_exit(&mut self) -> Option<std::process::ExitStatus> {
        let until = Instant::now() + EXIT_GRACE;
        loop {
            let polled = self
                .killer
                .child
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .try_wait();
            match polled {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
                Ok(None) => {
                    let mut child = self
                        .killer
                        .child
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
                Err(_) => return None,
            }
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        // Closing the socket tells an idle worker to exit; one that does not
        // within a moment is killed. Either way it is reaped here.
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        let until = Instant::now() + Duration::from_millis(200);
        {
            let mut child = self
                .killer
                .child
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            loop {
                match child.try_wait() {
                    Ok(None) if Instant::now() < until => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    Ok(None) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    _ => break,
                }
            }
        }
        // What it wrote last (its drop's words) reaches the log before the
        // host goes on, or exits; bounded, and immediate once forwarded.
        let _ = self.stderr_done.recv_timeout(Duration::from_millis(500));
        tracing::debug!(plugin = %self.plugin, pid = self.pid, "plugin worker ended");
    }
}

/// A fresh folder only this user can enter, for one worker's temporary
/// files (and its private copy of the library).
fn private_folder() -> io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("export-host-worker-")
        .tempdir_in(crate::library::trust::runtime_dir())
}

/// Copies a worker's output, line by line, into the host log; for stderr,
/// also keeps the last lines, and says when the stream ended.
fn forward(
    plugin: &str,
    pid: u32,
    stream: &'static str,
    output: impl Read + Send + 'static,
    tail: Option<(StderrTail, SyncSender<()>)>,
) {
    let name = plugin.to_owned();
    let spawned = std::thread::Builder::new()
        .name(format!("worker-{stream}"))
        .spawn(move || {
            let mut reader = BufReader::new(output);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end();
                tracing::warn!(target: "export_host::plugin_output", plugin = %name, pid, stream, "{text}");
                if let Some((tail, _)) = &tail {
                    let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
                    if tail.len() == STDERR_TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(text.chars().take(1000).collect());
                }
            }
            if let Some((_, done)) = tail {
                let _ = done.try_send(());
            }
        });
    if let Err(err) = spawned {
        tracing::warn!(plugin = %plugin, error = %err, "cannot start a thread to read a worker's {stream}");
    }
}

type SpawnJob = (Command, SyncSender<io::Result<Child>>);

/// Starts `command` from one thread that lives as long as the host: a
/// worker asks the kernel to kill it when the thread that started it ends
/// (PR_SET_PDEATHSIG), which must mean the host, not a short-lived thread.
pub(crate) fn spawn_from_long_lived_thread(command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (jobs, queue) = mpsc::channel::<SpawnJob>();
        let started = std::thread::Builder::new()
            .name("worker-spawner".to_owned())
            .spawn(move || {
                for (mut command, answer) in queue {
                    let _ = answer.send(command.spawn());
                }
            });
        if let Err(err) = started {
            tracing::error!(error = %err, "cannot start the worker spawner thread");
        }
        Mutex::new(jobs)
    });
    let (answer, answered) = mpsc::sync_channel(1);
    spawner
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .send((command, answer))
        .map_err(|_| io::Error::other("the worker spawner thread is gone"))?;
    answered
        .recv()
        .map_err(|_| io::Error::other("the worker spawner thread is gone"))?
}
