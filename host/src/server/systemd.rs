//! systemd service notifications (README.md, "Under systemd"): `READY=1` once the
//! daemon serves, `RELOADING=1` then `READY=1` around a SIGHUP reload,
//! `STOPPING=1` when a stop begins, and `WATCHDOG=1`
//! heartbeats at half of `WatchdogSec` while the database takes writes.
//!
//! Every call is a no-op when `NOTIFY_SOCKET` is not set (not under
//! systemd); a failed send is logged and never stops the daemon.

use crate::server::AppState;
use sd_notify::NotifyState;
use std::sync::Arc;
use std::time::Duration;

/// Tells systemd the daemon is up: plugins, database and storage are open
/// and the listener is bound.
pub fn ready() {
    send(&[NotifyState::Ready], "READY=1");
}

/// Tells systemd a reload (SIGHUP) has begun; [`ready`] ends it.
pub fn reloading() {
    send(&[NotifyState::Reloading], "RELOADING=1");
}

/// Tells systemd a graceful stop has begun.
pub fn stopping() {
    send(&[NotifyState::Stopping], "STOPPING=1");
}

fn send(states: &[NotifyState], what: &str) {
    if let Err(err) = sd_notify::notify(states) {
        tracing::warn!(error = %err, notification = what, "cannot notify systemd");
    }
}

/// When systemd asks for watchdog heartbeats (`WATCHDOG_USEC`, and
/// `WATCHDOG_PID` unset or this process), spawns a task that runs the
/// readiness checks (the write probes included) every half interval and
/// sends `WATCHDOG=1` unless database writes have been failing for longer
/// than `WatchdogSec`: systemd then restarts the daemon. A shorter spell
/// of failures (a transient lock, a full disk being cleared) keeps the
/// heartbeats going; the storage alone never stops them, since a restart
/// cannot free a disk.
pub fn spawn_watchdog(state: Arc<AppState>) -> Option<tokio::task::JoinHandle<()>> {
    let interval = sd_notify::watchdog_enabled()?;
    let period = (interval / 2).max(Duration::from_millis(1));
    tracing::info!(every = ?period, "sending systemd watchdog heartbeats");
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let checked = state.readiness.check(&state.service).await;
            let health = state.service.database_write_health();
            match health.failing_for() {
                Some(failing) if failing > interval => {
                    tracing::error!(
                        failing = ?failing,
                        cause = health.current_cause().unwrap_or_default(),
                        "watchdog: database writes have failed for longer than WatchdogSec; \
                         no heartbeat, so systemd restarts the daemon"
                    );
                }
                _ => {
                    if let Err(causes) = checked {
                        tracing::debug!(causes = %causes.join("; "), "watchdog: not ready, still within WatchdogSec");
                    }
                    send(&[NotifyState::Watchdog], "WATCHDOG=1");
                }
            }
        }
    }))
}
