//! The export lifecycle: every transition from every status,
//! allowed or refused with a typed error, on SQLite and PostgreSQL.

#[macro_use]
mod records_common;

use chrono::TimeDelta;
use export_host::records::{ExportId, ExportRecord, RecordError, Records, Scope, Status};
use records_common::*;
use serde_json::json;

/// The whole graph, as `records::lifecycle` draws it: exactly these 8 edges exist.
#[test]
fn state_machine_has_exactly_the_spec_edges() {
    use Status::*;
    let allowed = [
        (Pending, Processing),
        (Processing, Completed),
        (Completed, Expired),
        (Pending, Failed),
        (Processing, Failed),
        (Pending, Cancelled),
        (Processing, Cancelled),
        (Processing, Pending),
    ];
    for from in Status::ALL {
        for to in Status::ALL {
            assert_eq!(
                from.can_become(to),
                allowed.contains(&(from, to)),
                "{from} -> {to}"
            );
        }
    }
    assert!(Expired.is_final() && Failed.is_final() && Cancelled.is_final());
    assert!(!Completed.is_final() && !Pending.is_final() && !Processing.is_final());
    assert!(Pending.is_active() && Processing.is_active() && !Completed.is_active());
}

#[test]
fn status_spelling_round_trips() {
    for status in Status::ALL {
        assert_eq!(status.as_str().parse::<Status>().unwrap(), status);
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            json!(status.as_str())
        );
    }
    let err = "done".parse::<Status>().unwrap_err();
    assert!(
        err.to_string().contains("`done`") && err.to_string().contains("pending"),
        "{err}"
    );
}

#[test]
fn export_ids_are_128_random_bits() {
    let a = ExportId::generate();
    let b = ExportId::generate();
    assert_ne!(a, b);
    for id in [&a, &b] {
        let hex = id.as_str().strip_prefix("exp_").expect("exp_ prefix");
        assert_eq!(hex.len(), 32);
        assert!(hex
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(id.as_str().parse::<ExportId>().unwrap(), *id);
    }
    // Malformed ids are simply not found (a 404, like a missing one).
    for bad in [
        "",
        "exp_",
        "exp_XYZ",
        "../../etc/passwd",
        "exp_0123456789abcdef0123456789ABCDEF",
    ] {
        assert!(
            matches!(bad.parse::<ExportId>(), Err(RecordError::NotFound { .. })),
            "{bad}"
        );
    }
}

#[test]
fn illegal_transition_message_says_what_to_do() {
    let err = RecordError::IllegalTransition {
        id: "exp_1".into(),
        from: Status::Completed,
        to: Status::Cancelled,
    };
    assert_eq!(
        err.to_string(),
        "export exp_1 is completed and cannot become cancelled: it has already completed; \
         delete it instead of cancelling it"
    );
    let err = RecordError::IllegalTransition {
        id: "exp_1".into(),
        from: Status::Pending,
        to: Status::Completed,
    };
    assert!(
        err.to_string()
            .contains("only a processing export can become completed"),
        "{err}"
    );
}

both_backends!(
    insert_and_get_round_trip,
    every_transition_from_every_status,
    worker_transitions_need_the_lease,
    cancel_and_get_are_scoped_to_the_user,
    delete_only_finished_exports,
    downloads_are_counted_on_completed_exports,
);

async fn insert_and_get_round_trip(records: Records) {
    let now = t0() + TimeDelta::microseconds(123_456);
    let mut new = new_export("alice");
    new.request_hash = Some("h1".into());
    new.expires_at = Some(now + TimeDelta::days(1));
    new.selector =
        json!({"path": "a.csv", "nested": {"list": [1, "two", null], "unicode": "ü 日本"}});
    let inserted = records.insert(new.clone(), now).await.unwrap();

    assert!(inserted.id.as_str().starts_with("exp_"));
    assert_eq!(inserted.user_id, "alice");
    assert_eq!(
        (inserted.loader.as_str(), inserted.format.as_str()),
        ("csv", "jsonl")
    );
    assert_eq!(inserted.status, Status::Pending);
    assert_eq!(inserted.selector, new.selector);
    assert_eq!(inserted.options, new.options);
    assert_eq!(inserted.metadata, json!({}));
    assert_eq!(
        inserted.file_name.as_deref(),
        Some("conversations.jsonl.gz")
    );
    assert_eq!(inserted.request_hash.as_deref(), Some("h1"));
    assert_eq!(inserted.attempts, 0);
    assert_eq!(inserted.download_count, 0);
    // Microseconds survive on both backends.
    assert_eq!(inserted.created_at, now);
    assert_eq!(inserted.updated_at, now);
    assert_eq!(inserted.expires_at, Some(now + TimeDelta::days(1)));
    for unset in [
        &inserted.storage_key,
        &inserted.mime_type,
        &inserted.sha256,
        &inserted.error,
        &inserted.lease_owner,
    ] {
        assert!(unset.is_none());
    }
    assert!(inserted.started_at.is_none() && inserted.completed_at.is_none());

    let got = records
        .get(&Scope::user("alice"), &inserted.id)
        .await
        .unwrap();
    assert_eq!(got, inserted);
    assert_eq!(
        records.get(&Scope::Admin, &inserted.id).await.unwrap(),
        inserted
    );

    // The serialized record is keyed by the column names, times in RFC 3339 UTC.
    let value = serde_json::to_value(&got).unwrap();
    assert_eq!(value["id"], json!(inserted.id.as_str()));
    assert_eq!(value["status"], json!("pending"));
    assert_eq!(value["created_at"], json!("2024-05-01T10:00:00.123456Z"));

    // Completion fills in the file's facts.
    let claimed = claim(&records, &inserted.id, now + secs(1)).await;
    assert_eq!(claimed.attempts, 1);
    assert_eq!(claimed.lease_owner.as_deref(), Some(WORKER));
    assert_eq!(claimed.started_at, Some(now + secs(1)));
    assert_eq!(claimed.lease_expires_at, Some(now + secs(31)));
    let done = records
        .complete(
            &inserted.id,
            WORKER,
            &completion(&inserted.id, now + secs(2)),
            now + secs(2),
        )
        .await
        .unwrap();
    assert_eq!(done.status, Status::Completed);
    assert_eq!(done.storage_key, Some(format!("files/{}", inserted.id)));
    assert_eq!(done.mime_type.as_deref(), Some("application/jsonl"));
    assert_eq!((done.size_bytes, done.row_count), (Some(1234), Some(42)));
    assert_eq!(done.sha256, Some("ab".repeat(32)));
    assert_eq!(done.metadata["loader"]["name"], json!("csv"));
    assert_eq!(done.completed_at, Some(now + secs(2)));
    assert_eq!(done.updated_at, now + secs(2));
    assert_eq!(done.expires_at, Some(now + secs(2) + TimeDelta::hours(1)));
    assert!(done.lease_owner.is_none() && done.lease_expires_at.is_none());
    assert_eq!(
        records.get(&Scope::Admin, &inserted.id).await.unwrap(),
        done
    );
}

/// One operation of the lifecycle, applied by id.
#[derive(Debug, Clone, Copy)]
enum Op {
    Complete,
    FailByWorker,
    FailByService,
    Cancel,
    Release,
}

impl Op {
    fn target(self) -> Status {
        match self {
            Op::Complete => Status::Completed,
            Op::FailByWorker | Op::FailByService => Status::Failed,
            Op::Cancel => Status::Cancelled,
            Op::Release => Status::Pending,
        }
    }

    async fn apply(
        self,
        records: &Records,
        record: &ExportRecord,
    ) -> Result<ExportRecord, RecordError> {
        let now = t0() + secs(10);
        let id = &record.id;
        match self {
            Op::Complete => {
                records
                    .complete(id, WORKER, &completion(id, now), now)
                    .await
            }
            Op::FailByWorker => records.fail(id, Some(WORKER), "plugin error", now).await,
            Op::FailByService => records.fail(id, None, "refused", now).await,
            Op::Cancel => records.cancel(&Scope::user(&record.user_id), id, now).await,
            Op::Release => records.release(id, WORKER, now).await,
        }
    }
}

async fn every_transition_from_every_status(records: Records) {
    let ops = [
        Op::Complete,
        Op::FailByWorker,
        Op::FailByService,
        Op::Cancel,
        Op::Release,
    ];
    for op in ops {
        for from in Status::ALL {
            let record = in_state(&records, "alice", from, t0()).await;
            let result = op.apply(&records, &record).await;
            let to = op.target();
            if from.can_become(to) && !(from == Status::Pending && matches!(op, Op::FailByWorker)) {
                let after = result.unwrap_or_else(|err| panic!("{op:?} from {from}: {err}"));
                assert_eq!(after.status, to, "{op:?} from {from}");
                assert_eq!(after.updated_at, t0() + secs(10));
                assert_eq!(records.get(&Scope::Admin, &record.id).await.unwrap(), after);
            } else if from.can_become(to) {
                // A worker cannot fail an export it never claimed.
                assert!(
                    matches!(result, Err(RecordError::LeaseLost { .. })),
                    "{op:?} from {from}: {result:?}"
                );
            } else {
                assert_illegal(result, &record.id, from, to);
                let unchanged = records.get(&Scope::Admin, &record.id).await.unwrap();
                assert_eq!(unchanged, record, "{op:?} from {from} changed the record");
            }
            // Leave no pending export behind for the next claim.
            let now_status = records.get(&Scope::Admin, &record.id).await.unwrap().status;
            if now_status.is_active() {
                records
                    .cancel(&Scope::Admin, &record.id, t0() + secs(11))
                    .await
                    .unwrap();
            }
        }
    }

    // Expiry moves only completed exports past expires_at.
    for from in Status::ALL {
        let record = in_state(&records, "bob", from, t0()).await;
        let expired = records.expire_due(t0() + TimeDelta::days(1)).await.unwrap();
        let after = records.get(&Scope::Admin, &record.id).await.unwrap();
        if from == Status::Completed {
            assert_eq!(
                expired,
                vec![(record.id.clone(), format!("files/{}", record.id))]
            );
            assert_eq!(after.status, Status::Expired);
        } else {
            assert!(expired.is_empty(), "{from}: {expired:?}");
            assert_eq!(after.status, from);
        }
        if after.status.is_active() {
            records
                .cancel(&Scope::Admin, &record.id, t0())
                .await
                .unwrap();
        }
    }

    // Claiming takes only pending exports.
    for from in Status::ALL {
        let record = in_state(&records, "carol", from, t0()).await;
        let claimed = records.claim_next("worker-2", LEASE, t0()).await.unwrap();
        if from == Status::Pending {
            assert_eq!(claimed.map(|r| r.id), Some(record.id.clone()));
            records
                .cancel(&Scope::Admin, &record.id, t0())
                .await
                .unwrap();
        } else {
            assert!(claimed.is_none(), "claimed a {from} export");
        }
    }
}

async fn worker_transitions_need_the_lease(records: Records) {
    let record = in_state(&records, "alice", Status::Processing, t0()).await;
    let id = &record.id;
    let now = t0() + secs(1);

    let lost = records
        .complete(id, "intruder", &completion(id, now), now)
        .await;
    match lost {
        Err(RecordError::LeaseLost {
            id: got,
            worker,
            status,
        }) => {
            assert_eq!(
                (got.as_str(), worker.as_str(), status),
                (id.as_str(), "intruder", Status::Processing)
            );
        }
        other => panic!("expected LeaseLost, got {other:?}"),
    }
    assert!(matches!(
        records.fail(id, Some("intruder"), "x", now).await,
        Err(RecordError::LeaseLost { .. })
    ));
    assert!(matches!(
        records.release(id, "intruder", now).await,
        Err(RecordError::LeaseLost { .. })
    ));
    assert!(matches!(
        records.heartbeat(id, "intruder", now + secs(60), now).await,
        Err(RecordError::LeaseLost { .. })
    ));
    assert_eq!(
        records.get(&Scope::Admin, id).await.unwrap(),
        record,
        "refusals changed nothing"
    );

    // Heartbeats extend the lease of its holder.
    records
        .heartbeat(id, WORKER, now + secs(90), now)
        .await
        .unwrap();
    let beaten = records.get(&Scope::Admin, id).await.unwrap();
    assert_eq!(beaten.lease_expires_at, Some(now + secs(90)));

    // Release hands it back and gives the attempt back.
    let released = records.release(id, WORKER, now).await.unwrap();
    assert_eq!((released.status, released.attempts), (Status::Pending, 0));
    assert!(released.lease_owner.is_none() && released.lease_expires_at.is_none());
    assert!(matches!(
        records.heartbeat(id, WORKER, now, now).await,
        Err(RecordError::LeaseLost {
            status: Status::Pending,
            ..
        })
    ));

    // A cancelled export tells its worker to stop.
    let again = claim(&records, id, now).await;
    assert_eq!(again.attempts, 1);
    records
        .cancel(&Scope::user("alice"), id, now)
        .await
        .unwrap();
    assert!(matches!(
        records.heartbeat(id, WORKER, now + secs(30), now).await,
        Err(RecordError::LeaseLost {
            status: Status::Cancelled,
            ..
        })
    ));
    assert_illegal(
        records
            .complete(id, WORKER, &completion(id, now), now)
            .await,
        id,
        Status::Cancelled,
        Status::Completed,
    );

    // Unknown ids are NotFound everywhere.
    let ghost = ExportId::generate();
    assert!(matches!(
        records.heartbeat(&ghost, WORKER, now, now).await,
        Err(RecordError::NotFound { .. })
    ));
    assert!(matches!(
        records
            .complete(&ghost, WORKER, &completion(&ghost, now), now)
            .await,
        Err(RecordError::NotFound { .. })
    ));
    assert!(matches!(
        records.fail(&ghost, None, "x", now).await,
        Err(RecordError::NotFound { .. })
    ));
    assert!(matches!(
        records.cancel(&Scope::Admin, &ghost, now).await,
        Err(RecordError::NotFound { .. })
    ));
    assert!(matches!(
        records.release(&ghost, WORKER, now).await,
        Err(RecordError::NotFound { .. })
    ));
    assert!(matches!(
        records.get(&Scope::Admin, &ghost).await,
        Err(RecordError::NotFound { .. })
    ));
}

async fn cancel_and_get_are_scoped_to_the_user(records: Records) {
    let alices = records.insert(new_export("alice"), t0()).await.unwrap();
    let bob = Scope::user("bob");

    // Bob cannot see, cancel, delete or download Alice's export: it does not exist for him.
    let err = records.get(&bob, &alices.id).await.unwrap_err();
    assert!(matches!(err, RecordError::NotFound { .. }), "{err:?}");
    assert_eq!(err.to_string(), format!("export {} not found", alices.id));
    assert!(matches!(
        records.cancel(&bob, &alices.id, t0()).await,
        Err(RecordError::NotFound { .. })
    ));
    assert!(matches!(
        records.delete(&bob, &alices.id).await,
        Err(RecordError::NotFound { .. })
    ));
    assert!(matches!(
        records.record_download(&bob, &alices.id, t0()).await,
        Err(RecordError::NotFound { .. })
    ));
    assert_eq!(
        records.get(&Scope::Admin, &alices.id).await.unwrap().status,
        Status::Pending
    );

    let cancelled = records
        .cancel(&Scope::user("alice"), &alices.id, t0() + secs(5))
        .await
        .unwrap();
    assert_eq!(cancelled.status, Status::Cancelled);
    assert_eq!(cancelled.updated_at, t0() + secs(5));
    assert_illegal(
        records
            .cancel(&Scope::user("alice"), &alices.id, t0())
            .await,
        &alices.id,
        Status::Cancelled,
        Status::Cancelled,
    );
}

async fn delete_only_finished_exports(records: Records) {
    for from in Status::ALL {
        let record = in_state(&records, "alice", from, t0()).await;
        let result = records.delete(&Scope::user("alice"), &record.id).await;
        if from.is_active() {
            match result {
                Err(RecordError::Conflict { reason, .. }) => {
                    assert!(reason.contains("cancel it first"), "{reason}")
                }
                other => panic!("deleting a {from} export: {other:?}"),
            }
            records
                .cancel(&Scope::Admin, &record.id, t0())
                .await
                .unwrap();
            assert_eq!(
                records.delete(&Scope::Admin, &record.id).await.unwrap(),
                None
            );
        } else {
            let key = result.unwrap_or_else(|err| panic!("deleting a {from} export: {err}"));
            let expected = matches!(from, Status::Completed | Status::Expired)
                .then(|| format!("files/{}", record.id));
            assert_eq!(key, expected, "{from}");
        }
        assert!(matches!(
            records.get(&Scope::Admin, &record.id).await,
            Err(RecordError::NotFound { .. })
        ));
        assert!(matches!(
            records.delete(&Scope::Admin, &record.id).await,
            Err(RecordError::NotFound { .. })
        ));
    }
}

async fn downloads_are_counted_on_completed_exports(records: Records) {
    let done = in_state(&records, "alice", Status::Completed, t0()).await;
    let alice = Scope::user("alice");
    let first = records
        .record_download(&alice, &done.id, t0() + secs(60))
        .await
        .unwrap();
    assert_eq!(
        (first.download_count, first.last_downloaded_at),
        (1, Some(t0() + secs(60)))
    );
    let second = records
        .record_download(&Scope::Admin, &done.id, t0() + secs(61))
        .await
        .unwrap();
    assert_eq!(second.download_count, 2);

    // Past expires_at (even before cleanup ran) there is nothing to download.
    let late = records
        .record_download(&alice, &done.id, t0() + TimeDelta::hours(2))
        .await;
    assert!(
        matches!(late, Err(RecordError::Conflict { .. })),
        "{late:?}"
    );

    let pending = in_state(&records, "alice", Status::Pending, t0()).await;
    match records.record_download(&alice, &pending.id, t0()).await {
        Err(RecordError::Conflict { reason, .. }) => {
            assert!(reason.contains("it is pending"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}
