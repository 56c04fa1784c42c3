//! The host threads that call into plugins during a run, watched.
//!
//! An in-process plugin that never returns cannot be stopped: its thread is
//! left behind when its export fails, and counted ([`runaway_threads`]) so
//! `/metrics` and `/readyz` can say the process is degraded. A plugin that
//! ends the process (`exit`) while the host is inside one of its calls is
//! caught by an exit hook, which names it and makes the exit status 1.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once, TryLockError};
use std::thread::JoinHandle;
use std::time::Duration;

/// In-process plugin threads still running after their export ended.
static RUNAWAY: AtomicUsize = AtomicUsize::new(0);

/// Every plugin thread not yet ended.
static ACTIVE: Mutex<Vec<Arc<Watch>>> = Mutex::new(Vec::new());

static EXIT_HOOK: Once = Once::new();

const RUNNING: u8 = 0;
const ABANDONED: u8 = 1;
const DONE: u8 = 2;

/// In-process plugin threads left running after their export ended: each
/// may hold a core until the process restarts.
pub fn runaway_threads() -> usize {
    RUNAWAY.load(Ordering::Relaxed)
}

/// From how many runaway threads the process reports itself degraded: half
/// the cores (at least one), since each may spin a core for good.
pub fn runaway_degraded_at() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() / 2)
        .unwrap_or(1)
        .max(1)
}

/// What the host knows about one plugin thread.
pub struct Watch {
    plugin: String,
    in_process: bool,
    /// The thread is inside a call into the plugin.
    inside: AtomicBool,
    state: AtomicU8,
    finished: Mutex<bool>,
    finished_signal: Condvar,
}

impl Watch {
    /// Runs `call` into the plugin, marked as inside it (for the exit hook).
    pub fn call<R>(&self, call: impl FnOnce() -> R) -> R {
        struct Outside<'a>(&'a AtomicBool);
        impl Drop for Outside<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::SeqCst);
            }
        }
        self.inside.store(true, Ordering::SeqCst);
        let _outside = Outside(&self.inside);
        call()
    }

    fn end(self: &Arc<Self>) {
        if self.state.swap(DONE, Ordering::SeqCst) == ABANDONED && self.in_process {
            RUNAWAY.fetch_sub(1, Ordering::Relaxed);
            tracing::info!(plugin = %self.plugin, "a runaway plugin thread ended at last");
        }
        lock(&ACTIVE).retain(|watch| !Arc::ptr_eq(watch, self));
        *lock(&self.finished) = true;
        self.finished_signal.notify_all();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A thread that calls into a plugin.
pub struct PluginThread<T> {
    handle: JoinHandle<T>,
    watch: Arc<Watch>,
}

impl<T: Send + 'static> PluginThread<T> {
    /// Starts `body` on a thread named `name`, calling into `plugin`.
    pub fn spawn<F>(name: &str, plugin: &str, in_process: bool, body: F) -> std::io::Result<Self>
    where
        F: FnOnce(&Watch) -> T + Send + 'static,
    {
        EXIT_HOOK.call_once(install_exit_hook);
        let watch = Arc::new(Watch {
            plugin: plugin.to_owned(),
            in_process,
            inside: AtomicBool::new(false),
            state: AtomicU8::new(RUNNING),
            finished: Mutex::new(false),
            finished_signal: Condvar::new(),
        });
        lock(&ACTIVE).push(watch.clone());
        let mine = watch.clone();
        let spawned = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                // Ends the watch however the body ends, a panic included.
                struct Ended(Arc<Watch>);
                impl Drop for Ended {
                    fn drop(&mut self) {
                        self.0.end();
                    }
                }
                let ended = Ended(mine);
                body(&ended.0)
            });
        match spawned {
            Ok(handle) => Ok(PluginThread { handle, watch }),
            Err(err) => {
                watch.end();
                Err(err)
            }
        }
    }

    /// Waits up to `grace` for the thread to end, then joins it: its result,
    /// or its panic message. `None` if it is still running; it is then left
    /// behind (and counted, in-process, as a runaway thread).
    pub fn finish(self, grace: Duration) -> Option<Result<T, String>> {
        let ended = {
            let finished = lock(&self.watch.finished);
            let (finished, _) = self
                .watch
                .finished_signal
                .wait_timeout_while(finished, grace, |done| !*done)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            *finished
        };
        if !ended {
            self.abandon();
            return None;
        }
        Some(self.handle.join().map_err(|payload| panic_text(&*payload)))
    }

    fn abandon(self) {
        let watch = &self.watch;
        if watch
            .state
            .compare_exchange(RUNNING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
            && watch.in_process
        {
            RUNAWAY.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                plugin = %watch.plugin,
                thread = self.handle.thread().name().unwrap_or("?"),
                runaway_threads = runaway_threads(),
                "a thread inside in-process plugin {:?} is still running after its export \
                 ended; it cannot be stopped and is left behind (run the plugin with \
                 isolation = \"process\" so a stuck call can be ended)",
                watch.plugin
            );
        }
        // Dropping the handle detaches the thread.
    }
}

/// A panic payload as text.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with no message".to_owned()
    }
}

fn install_exit_hook() {
    // SAFETY: registers a plain function with no captured state.
    let failed = unsafe { libc::atexit(exit_hook) } != 0;
    if failed {
        tracing::warn!(
            "cannot register the exit hook: a plugin that ends the process will not be named"
        );
    }
}

/// Runs at `exit`. If a thread is inside a call into an in-process plugin,
/// the plugin ended the process: say so and exit with status 1.
extern "C" fn exit_hook() {
    let active = match ACTIVE.try_lock() {
        Ok(active) => active,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => return,
    };
    let culprit = active.iter().find(|watch| {
        watch.in_process
            && watch.inside.load(Ordering::SeqCst)
            && watch.state.load(Ordering::SeqCst) == RUNNING
    });
    if let Some(watch) = culprit {
        let message = format!(
            "export-host: plugin {:?} ended the process (it called exit) during an export; \
             the export failed. Fix the plugin, or run it with isolation = \"process\" in \
             plugins.toml so it can only end its own worker.\n",
            watch.plugin
        );
        // Raw writes: at exit, std's stderr lock may be held by the thread
        // that called exit.
        // SAFETY: writes a live buffer to descriptor 2, then ends the
        // process without running further exit handlers.
        unsafe {
            libc::write(2, message.as_ptr().cast(), message.len());
            libc::_exit(1);
        }
    }
}
