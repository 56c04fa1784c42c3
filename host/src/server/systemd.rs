//! systemd service notifications (SPEC section 9): `READY=1` once the
//! daemon serves, `RELOADING=1` then `READY=1` around a SIGHUP reload,
//! `STOPPING=1` when a stop begins, and `WATCHDOG=1`
//! heartbeats at half of `WatchdogSec` while the database answers.
//!
//! Every call is a no-op when `NOTIFY_SOCKET` is not set (not under
//! systemd); a failed send is logged and never stops the daemon.

use crate::records::Records;
use sd_notify::NotifyState;
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
/// `WATCHDOG_PID` unset or this process), spawns a task sending
/// `WATCHDOG=1` every half interval, but only while the database answers:
/// a daemon whose database hangs is restarted by systemd.
pub fn spawn_watchdog(records: Records) -> Option<tokio::task::JoinHandle<()>> {
    let interval = sd_notify::watchdog_enabled()?;
    let period = (interval / 2).max(Duration::from_millis(1));
    tracing::info!(every = ?period, "sending systemd watchdog heartbeats");
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match tokio::time::timeout(period, records.ping()).await {
                Ok(Ok(())) => send(&[NotifyState::Watchdog], "WATCHDOG=1"),
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "watchdog: the database does not answer; no heartbeat")
                }
                Err(_) => tracing::warn!("watchdog: the database ping timed out; no heartbeat"),
            }
        }
    }))
}
