//! A daemon holding one `gate` export in `processing` until the test opens
//! the gate: the fixture of the progress, events and fault tests.

use super::{gate_sandbox, FreshPg};
use crate::server_common::Daemon;
use serde_json::Value;
use std::path::PathBuf;

/// The rows an export's record (or an event's data) says were written.
pub fn progress_rows(record: &Value) -> u64 {
    record["progress"]["rows"].as_u64().unwrap_or(0)
}

/// A `gate` export of user `ada`, started on `daemon`.
pub struct GateRun {
    pub daemon: Daemon,
    pub token: String,
    pub id: String,
    pub gate: PathBuf,
}

impl GateRun {
    /// Starts a daemon on a gate sandbox with `env`, and the export on it.
    pub fn start(env: &[(&str, &str)]) -> GateRun {
        let sandbox = gate_sandbox();
        let gate = sandbox.path().join("gate-open");
        let daemon = Daemon::start(sandbox, env);
        let token = daemon.token("ada", false);
        let id = daemon.start_gate_export(&token, &gate);
        GateRun {
            daemon,
            token,
            id,
            gate,
        }
    }
}

/// Two daemons on one fresh PostgreSQL database, the gate export started
/// on the first (`run.daemon`); either may run it. Bind `pg` to a named
/// variable when destructuring: the database is dropped with it.
pub struct GatePair {
    pub run: GateRun,
    pub other: Daemon,
    pub pg: FreshPg,
}

impl GatePair {
    pub fn start() -> GatePair {
        let pg = FreshPg::new();
        let env = [("EXPORT_HOST_DATABASE_URL", pg.url.as_str())];
        let run = GateRun::start(&env);
        let other = Daemon::start(gate_sandbox(), &env);
        GatePair { run, other, pg }
    }
}
