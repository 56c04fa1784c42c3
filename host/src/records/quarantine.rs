//! Plugin faults and quarantine, kept in the database so that every daemon
//! sharing it, `plugins list` and the CLI reach the same decision.
//!
//! A fault is a call into a plugin that took its worker down (a crash, a
//! timeout, a protocol fault, an exit), or a daemon that died twice while
//! one export was inside the same plugin. Each is recorded with the plugin,
//! the user whose export it was, and when. Quarantine is then a question
//! asked of those rows, never a flag that someone must remember to clear:
//!
//! - a user is held off a plugin when the plugin faulted `after` times for
//!   that user within `window` (one user's crafted selectors stop that
//!   user's use first);
//! - the plugin is held off for everyone when faults within `window` come
//!   from at least `users` different users (and number `after` or more).
//!
//! Either lifts on its own when enough faults age out of the window. Faults
//! recorded with a library's SHA-256 count only while that library is the
//! one loaded, so replacing a broken library starts it afresh.
//!
//! Which plugin an export is calling into is also written on its row
//! (`in_plugin`) while the call runs: when the daemon dies then, the lease
//! sweep knows where ([`Records::fail_deaths_in_plugins`]).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::row::Ts;
use super::{
    finish, postgres, sqlite, typed, Backend, ExportId, Mode, RecordError, Records, Scope,
};

/// How long faults are kept at least, whatever the plugin's window, so a
/// listing can still show the last one.
const FAULT_MEMORY: Duration = Duration::from_secs(86_400);

/// Longest fault message kept (the rest is cut).
const MAX_MESSAGE_CHARS: usize = 2000;

/// The `cause` of a daemon that died twice inside a plugin on one export.
pub const DAEMON_DIED: &str = "daemon_died";

/// How many faults hold a plugin off (a plugin's `quarantine_*` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarantinePolicy {
    /// `quarantine_after`: faults of one user within `window` that hold that
    /// user off the plugin (and the least number that hold everyone off).
    pub after: u32,
    /// `quarantine_window`: how far back faults count.
    pub window: Duration,
    /// `quarantine_users`: how many different users must have faults within
    /// `window` before the plugin is held off for everyone.
    pub users: u32,
}

/// A fault to record.
#[derive(Debug, Clone, Copy)]
pub struct NewPluginFault<'a> {
    /// The plugin's table name.
    pub plugin: &'a str,
    /// SHA-256 of the library that faulted, when known.
    pub sha256: Option<&'a str>,
    /// Whose export it was.
    pub user_id: &'a str,
    /// A short label: `signal`, `timeout`, `protocol`, `exit`, ...
    pub cause: &'a str,
    /// What happened, for people.
    pub message: &'a str,
    /// The export it failed.
    pub export_id: Option<&'a ExportId>,
}

/// A recorded fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginFault {
    /// Whose export it was.
    pub user_id: String,
    /// Its short label.
    pub cause: String,
    /// What happened.
    pub message: String,
    /// The export it failed, if any.
    pub export_id: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// One user held off a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserHold {
    /// The user.
    pub user_id: String,
    /// Their faults within the window.
    pub faults: u64,
    /// When it lifts, unless more faults come first.
    pub until: DateTime<Utc>,
}

/// A plugin held off for everyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalHold {
    /// Different users with faults within the window.
    pub users: u64,
    /// Faults within the window.
    pub faults: u64,
    /// When it lifts, unless more faults come first.
    pub until: DateTime<Utc>,
}

/// A plugin's quarantine as of one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuarantineState {
    /// Held off for everyone.
    pub global: Option<GlobalHold>,
    /// The users held off it (each on their own faults).
    pub users_held: Vec<UserHold>,
    /// Faults within the window, all users.
    pub faults: u64,
    /// The most recent fault (within the retention, not only the window).
    pub last: Option<PluginFault>,
}

impl QuarantineState {
    /// Whether `user` may not use the plugin: held for everyone, or held
    /// on their own faults.
    pub fn holds(&self, user: &str) -> bool {
        self.global.is_some() || self.user_hold(user).is_some()
    }

    /// `user`'s own hold, if any.
    pub fn user_hold(&self, user: &str) -> Option<&UserHold> {
        self.users_held.iter().find(|hold| hold.user_id == user)
    }

    /// When `user` may use the plugin again (`None`: they may now).
    pub fn held_until(&self, user: &str) -> Option<DateTime<Utc>> {
        let global = self.global.as_ref().map(|hold| hold.until);
        let own = self.user_hold(user).map(|hold| hold.until);
        global.max(own)
    }

    /// Why `user`'s export that needs `plugin` is refused, or `None` when it
    /// is not: which plugin, why, for whom, and until when.
    pub fn refusal(&self, plugin: &str, user: &str, policy: &QuarantinePolicy) -> Option<String> {
        let window = humantime::format_duration(policy.window);
        let last = self
            .last
            .as_ref()
            .map(|fault| format!(" (the last one: {})", fault.message))
            .unwrap_or_default();
        let until = self.held_until(user)?;
        let until = until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        if let Some(global) = &self.global {
            return Some(format!(
                "plugin {plugin:?} is quarantined for every user: its calls failed {} times within {window} \
                 for {} different users{last}; exports that need it are refused until {until}, or \
                 until its library is replaced",
                global.faults, global.users
            ));
        }
        let own = self.user_hold(user)?;
        Some(format!(
            "plugin {plugin:?} is quarantined for user {user:?}: its calls failed {} times within \
             {window} on this user's exports{last}; this user's exports that need it are refused \
             until {until} (other users are not affected), or until its library is replaced",
            own.faults
        ))
    }
}

/// `sha256 IS NULL OR ...`: faults of an unknown library always count;
/// known ones only for the library given as `$n` (NULL: any).
fn same_library(n: u8) -> String {
    format!("(sha256 IS NULL OR CAST(${n} AS TEXT) IS NULL OR sha256 = ${n})")
}

/// `$1` plugin, `$2` sha256, `$3` user_id, `$4` cause, `$5` message,
/// `$6` export_id, `$7` at.
const INSERT_FAULT: &str = "INSERT INTO plugin_faults \
     (plugin, sha256, user_id, cause, message, export_id, at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// `$1` plugin, `$2` before.
const FORGET_FAULTS: &str = "DELETE FROM plugin_faults WHERE plugin = $1 AND at < $2";

/// Faults in the window by user. `$1` plugin, `$2` since, `$3` sha256.
fn by_user_sql() -> String {
    format!(
        "SELECT user_id, count(*), max(at) FROM plugin_faults \
         WHERE plugin = $1 AND at >= $2 AND {} GROUP BY user_id",
        same_library(3)
    )
}

/// The `$4`-th most recent fault time (0-based offset) of one user, or of
/// everyone when `$5` is NULL. `$1` plugin, `$2` since, `$3` sha256.
fn nth_latest_sql() -> String {
    format!(
        "SELECT at FROM plugin_faults \
         WHERE plugin = $1 AND at >= $2 AND {} AND (CAST($5 AS TEXT) IS NULL OR user_id = $5) \
         ORDER BY at DESC LIMIT 1 OFFSET $4",
        same_library(3)
    )
}

/// The most recent fault. `$1` plugin, `$2` sha256.
fn last_sql() -> String {
    format!(
        "SELECT user_id, cause, message, export_id, at FROM plugin_faults \
         WHERE plugin = $1 AND {} ORDER BY at DESC LIMIT 1",
        same_library(2)
    )
}

/// Processing exports whose lease ran out while they were inside a plugin.
/// `$1` now.
const DEATHS_IN_PLUGINS: &str = "SELECT id, user_id, in_plugin, died_in, attempts FROM exports \
     WHERE status = 'processing' AND lease_expires_at < $1 AND in_plugin IS NOT NULL";

/// Fails one of them, if it is still so. `$1` id, `$2` error, `$3` now,
/// `$4` in_plugin.
const FAIL_DEATH: &str = "UPDATE exports SET status = 'failed', error = $2, updated_at = $3, \
         lease_owner = NULL, lease_expires_at = NULL \
     WHERE id = $1 AND status = 'processing' AND lease_expires_at < $3 AND in_plugin = $4";

/// Marks which plugins the holder of the lease is calling into (NULL: none).
/// `$1` id, `$2` worker, `$3` in_plugin, `$4` now.
const MARK_IN_PLUGINS: &str = "UPDATE exports SET in_plugin = $3, updated_at = $4 \
     WHERE id = $1 AND status = 'processing' AND lease_owner = $2";

/// `plugin "a"`, or `plugins "a" and "b"`, from an `in_plugin` value.
fn plugins_phrase(in_plugin: &str) -> String {
    let names: Vec<String> = in_plugin
        .split(',')
        .filter(|name| !name.is_empty())
        .map(|name| format!("{name:?}"))
        .collect();
    match names.as_slice() {
        [one] => format!("plugin {one}"),
        [rest @ .., last] => format!("plugins {} and {last}", rest.join(", ")),
        [] => "a plugin".to_owned(),
    }
}

fn cut(message: &str) -> &str {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => &message[..at],
        None => message,
    }
}

/// `at + by`, saturating far in the future.
fn later(at: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(by)
        .ok()
        .and_then(|by| at.checked_add_signed(by))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `at - by`, saturating far in the past.
fn earlier(at: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(by)
        .ok()
        .and_then(|by| at.checked_sub_signed(by))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A count from the database as a `u64`.
fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Records {
    /// Records a fault of `fault.plugin` on `fault.user_id`'s export, at
    /// `now`, and forgets the plugin's faults older than `keep` (at least a
    /// day).
    pub async fn record_plugin_fault(
        &self,
        fault: &NewPluginFault<'_>,
        keep: Duration,
        now: DateTime<Utc>,
    ) -> Result<(), RecordError> {
        let horizon = earlier(now, keep.max(FAULT_MEMORY));
        in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            sqlx::query(INSERT_FAULT)
                .bind(fault.plugin)
                .bind(fault.sha256)
                .bind(fault.user_id)
                .bind(fault.cause)
                .bind(cut(fault.message))
                .bind(fault.export_id.map(ExportId::as_str))
                .bind(Ts::new(now))
                .execute(&mut *tx)
                .await?;
            sqlx::query(FORGET_FAULTS)
                .bind(fault.plugin)
                .bind(Ts::new(horizon))
                .execute(&mut *tx)
                .await?;
            Ok(())
        })?;
        tracing::warn!(
            plugin = fault.plugin,
            user = fault.user_id,
            cause = fault.cause,
            export_id = fault.export_id.map(ExportId::as_str),
            "plugin fault recorded: {}",
            fault.message
        );
        Ok(())
    }

    /// The quarantine of `plugin` (whose loaded library is `sha256`, when
    /// known) under `policy`, as of `now`: for everyone, and each user held.
    pub async fn plugin_quarantine(
        &self,
        plugin: &str,
        sha256: Option<&str>,
        policy: &QuarantinePolicy,
        now: DateTime<Utc>,
    ) -> Result<QuarantineState, RecordError> {
        self.quarantine(plugin, sha256, policy, now, None).await
    }

    /// Whether `user` may use `plugin` now: the state, with only `user`'s
    /// hold worked out (cheaper than [`Records::plugin_quarantine`]), and
    /// `last` only when someone is held.
    pub async fn quarantine_for(
        &self,
        plugin: &str,
        sha256: Option<&str>,
        user: &str,
        policy: &QuarantinePolicy,
        now: DateTime<Utc>,
    ) -> Result<QuarantineState, RecordError> {
        self.quarantine(plugin, sha256, policy, now, Some(user))
            .await
    }

    async fn quarantine(
        &self,
        plugin: &str,
        sha256: Option<&str>,
        policy: &QuarantinePolicy,
        now: DateTime<Utc>,
        only: Option<&str>,
    ) -> Result<QuarantineState, RecordError> {
        let since = Ts::new(earlier(now, policy.window));
        let after = i64::from(policy.after.max(1));
        let needed_users = u64::from(policy.users.max(1));
        let by_user_sql = by_user_sql();
        let nth_sql = nth_latest_sql();
        let last_sql = last_sql();
        in_tx!(self, &Scope::Admin, Mode::Read, |tx| {
            let by_user: Vec<(String, i64, Ts)> = sqlx::query_as(&by_user_sql)
                .bind(plugin)
                .bind(since)
                .bind(sha256)
                .fetch_all(&mut *tx)
                .await?;
            let mut state = QuarantineState {
                faults: by_user.iter().map(|(_, n, _)| unsigned(*n)).sum(),
                ..QuarantineState::default()
            };
            // Held users: their after-th latest fault ages out last.
            for (user, count, _) in &by_user {
                if *count < after || only.is_some_and(|only| only != user) {
                    continue;
                }
                let nth: Option<Ts> = sqlx::query_scalar(&nth_sql)
                    .bind(plugin)
                    .bind(since)
                    .bind(sha256)
                    .bind(after - 1)
                    .bind(user.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(nth) = nth {
                    state.users_held.push(UserHold {
                        user_id: user.clone(),
                        faults: unsigned(*count),
                        until: later(nth.0, policy.window),
                    });
                }
            }
            // Everyone: enough users and enough faults; it lifts when
            // either drops below its threshold.
            let users = by_user.len() as u64;
            if users >= needed_users && state.faults >= unsigned(after) {
                let mut latest: Vec<DateTime<Utc>> =
                    by_user.iter().map(|(_, _, at)| at.0).collect();
                latest.sort_unstable_by(|a, b| b.cmp(a));
                let users_lift = latest
                    .get(usize::try_from(needed_users - 1).unwrap_or(usize::MAX))
                    .map(|at| later(*at, policy.window));
                let nth: Option<Ts> = sqlx::query_scalar(&nth_sql)
                    .bind(plugin)
                    .bind(since)
                    .bind(sha256)
                    .bind(after - 1)
                    .bind(None::<&str>)
                    .fetch_optional(&mut *tx)
                    .await?;
                let faults_lift = nth.map(|nth| later(nth.0, policy.window));
                if let Some(until) = users_lift.into_iter().chain(faults_lift).min() {
                    state.global = Some(GlobalHold {
                        users,
                        faults: state.faults,
                        until,
                    });
                }
            }
            if only.is_none() || state.global.is_some() || !state.users_held.is_empty() {
                let last: Option<(String, String, String, Option<String>, Ts)> =
                    sqlx::query_as(&last_sql)
                        .bind(plugin)
                        .bind(sha256)
                        .fetch_optional(&mut *tx)
                        .await?;
                state.last = last.map(|(user_id, cause, message, export_id, at)| PluginFault {
                    user_id,
                    cause,
                    message,
                    export_id,
                    at: at.0,
                });
            }
            Ok(state)
        })
    }

    /// Marks that `worker`, holding the lease on `id`, is calling into
    /// `plugins` (table names; `None`: no plugin any more). If the daemon
    /// dies meanwhile, the lease sweep finds them on the row. `false` when
    /// the lease is no longer the worker's.
    pub async fn mark_in_plugins(
        &self,
        id: &ExportId,
        worker: &str,
        plugins: Option<&[&str]>,
        now: DateTime<Utc>,
    ) -> Result<bool, RecordError> {
        let value = plugins.map(|names| {
            let mut names = names.to_vec();
            names.sort_unstable();
            names.dedup();
            names.join(",")
        });
        in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            let done = sqlx::query(MARK_IN_PLUGINS)
                .bind(id.as_str())
                .bind(worker)
                .bind(value.as_deref())
                .bind(Ts::new(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            Ok(done == 1)
        })
    }

    /// The first step of the lease sweep: an export whose lease ran out
    /// while its daemon was inside a plugin, for the second time in the
    /// same plugin (or on its last attempt), fails naming the plugin: a
    /// plugin that takes its daemon down would otherwise do so on every
    /// retry. A second death in the same plugin also counts as a fault of
    /// that plugin for the export's user. The first death is retried
    /// (step two, with `died_in` noted): a daemon can be killed for
    /// reasons that are not the plugin's, and killing one loses no export.
    pub(super) async fn fail_deaths_in_plugins(
        &self,
        now: DateTime<Utc>,
        max_attempts: i32,
    ) -> Result<Vec<ExportId>, RecordError> {
        let failed = in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            let rows: Vec<(String, String, String, Option<String>, i32)> =
                sqlx::query_as(DEATHS_IN_PLUGINS)
                    .bind(Ts::new(now))
                    .fetch_all(&mut *tx)
                    .await?;
            let mut failed = Vec::new();
            for (id, user, in_plugin, died_in, attempts) in rows {
                let again = died_in.as_deref() == Some(in_plugin.as_str());
                if !again && attempts < max_attempts {
                    continue;
                }
                let plugins = plugins_phrase(&in_plugin);
                let error = if again {
                    format!(
                        "its daemon died twice while it was calling {plugins} (killed, crashed \
                         or stopped inside it); a plugin that takes its daemon down would do so \
                         on every retry, so it is not retried, and this counts towards the \
                         plugin's quarantine; create the export again to retry"
                    )
                } else {
                    format!(
                        "its worker stopped renewing the lease on each of {max_attempts} \
                         attempts, the last time while it was calling {plugins} (its daemon \
                         was killed, crashed or hung); it will not be retried, create it again \
                         to retry"
                    )
                };
                let done = sqlx::query(FAIL_DEATH)
                    .bind(id.as_str())
                    .bind(&error)
                    .bind(Ts::new(now))
                    .bind(in_plugin.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if done != 1 {
                    continue;
                }
                if again {
                    let message =
                        format!("the daemon died twice while export {id} was calling {plugins}");
                    for plugin in in_plugin.split(',').filter(|name| !name.is_empty()) {
                        sqlx::query(INSERT_FAULT)
                            .bind(plugin)
                            .bind(None::<&str>)
                            .bind(user.as_str())
                            .bind(DAEMON_DIED)
                            .bind(message.as_str())
                            .bind(id.as_str())
                            .bind(Ts::new(now))
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                failed.push((ExportId::from_db(id), user, in_plugin, again));
            }
            Ok(failed)
        })?;
        for (id, user, plugins, again) in &failed {
            if *again {
                tracing::error!(
                    export_id = %id, user, plugins = plugins.as_str(), status = %super::Status::Failed,
                    "export transition: its daemon died twice inside the same plugin; failed, and a fault recorded"
                );
            } else {
                tracing::info!(
                    export_id = %id, user, plugins = plugins.as_str(), status = %super::Status::Failed,
                    "export transition: lease expired inside a plugin, out of attempts"
                );
            }
        }
        Ok(failed.into_iter().map(|(id, ..)| id).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_one_or_several_plugins() {
        assert_eq!(plugins_phrase("faulty"), "plugin \"faulty\"");
        assert_eq!(plugins_phrase("a,b"), "plugins \"a\" and \"b\"");
    }

    #[test]
    fn a_refusal_says_which_plugin_why_for_whom_and_until_when() {
        let at = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let policy = QuarantinePolicy {
            after: 2,
            window: Duration::from_secs(600),
            users: 3,
        };
        let state = QuarantineState {
            users_held: vec![UserHold {
                user_id: "ada".into(),
                faults: 2,
                until: at,
            }],
            faults: 2,
            last: Some(PluginFault {
                user_id: "ada".into(),
                cause: "signal".into(),
                message: "crashed: SIGSEGV".into(),
                export_id: None,
                at,
            }),
            ..QuarantineState::default()
        };
        let refusal = state.refusal("faulty", "ada", &policy).unwrap();
        assert!(
            refusal.contains("plugin \"faulty\" is quarantined for user \"ada\"")
                && refusal.contains("2 times within 10m")
                && refusal.contains("SIGSEGV")
                && refusal.contains("2026-01-01T10:00:00Z"),
            "{refusal}"
        );
        assert_eq!(state.refusal("faulty", "bob", &policy), None);
        assert!(state.holds("ada") && !state.holds("bob"));
    }
}
