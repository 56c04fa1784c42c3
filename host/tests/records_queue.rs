//! The queue: claims in order, leases, the lease sweep, and 8 tasks racing
//! for the same transition (exactly one wins), on SQLite and PostgreSQL.

#[macro_use]
mod records_common;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::TimeDelta;
use export_host::records::{ExportRecord, RecordError, Records, Scope, Status};
use records_common::*;
use tokio::sync::Barrier;

const RACERS: usize = 8;

both_backends!(
    claims_oldest_first,
    racing_claims_of_one_export_have_one_winner,
    racing_claims_of_several_exports_take_each_once,
    racing_complete_and_cancel_have_one_winner,
    racing_cancels_have_one_winner,
    racing_fail_and_cancel_have_one_winner,
    lost_lease_requeues_then_fails,
    heartbeat_keeps_the_lease,
);

async fn claims_oldest_first(records: Records) {
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            records
                .insert(new_export("alice"), t0() + secs(i))
                .await
                .unwrap()
                .id,
        );
    }
    for id in &ids {
        let claimed = records
            .claim_next(WORKER, LEASE, t0() + secs(10))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&claimed.id, id);
        assert_eq!(claimed.status, Status::Processing);
    }
    assert!(records
        .claim_next(WORKER, LEASE, t0())
        .await
        .unwrap()
        .is_none());
}

/// Runs `RACERS` tasks (each its own pooled connection, on a multi-thread
/// runtime), released together by a barrier, and returns their results.
async fn race<T, F, Fut>(records: &Records, attempt: F) -> Vec<Result<T, RecordError>>
where
    T: Send + 'static,
    F: Fn(Records, usize) -> Fut,
    Fut: std::future::Future<Output = Result<T, RecordError>> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for n in 0..RACERS {
        let barrier = barrier.clone();
        let attempt = attempt(records.clone(), n);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            attempt.await
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("racer panicked"));
    }
    results
}

async fn racing_claims_of_one_export_have_one_winner(records: Records) {
    let pending = records.insert(new_export("alice"), t0()).await.unwrap();
    let results = race(&records, |records, n| async move {
        records
            .claim_next(&format!("worker-{n}"), LEASE, t0() + secs(1))
            .await
    })
    .await;
    let winners: Vec<ExportRecord> = results
        .into_iter()
        .filter_map(|result| result.expect("a claim never errors"))
        .collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    let stored = records.get(&Scope::Admin, &pending.id).await.unwrap();
    assert_eq!(stored, winners[0]);
    assert_eq!(stored.attempts, 1, "exactly one claim counted");
}

async fn racing_claims_of_several_exports_take_each_once(records: Records) {
    let mut pending = HashSet::new();
    for i in 0..5 {
        pending.insert(
            records
                .insert(new_export("alice"), t0() + secs(i))
                .await
                .unwrap()
                .id,
        );
    }
    let results = race(&records, |records, n| async move {
        records
            .claim_next(&format!("worker-{n}"), LEASE, t0() + secs(10))
            .await
    })
    .await;
    let claimed: Vec<ExportRecord> = results.into_iter().filter_map(|r| r.unwrap()).collect();
    let ids: HashSet<_> = claimed.iter().map(|r| r.id.clone()).collect();
    assert_eq!(
        claimed.len(),
        5,
        "each pending export claimed once: {claimed:?}"
    );
    assert_eq!(ids, pending);
    assert!(claimed.iter().all(|r| r.attempts == 1));
}

async fn racing_complete_and_cancel_have_one_winner(records: Records) {
    let record = in_state(&records, "alice", Status::Processing, t0()).await;
    let id = record.id.clone();
    let results = race(&records, |records, n| {
        let id = id.clone();
        async move {
            let now = t0() + secs(5);
            if n % 2 == 0 {
                let mut done = completion(&id, now);
                done.storage_key = format!("files/{id}/{n}");
                records.complete(&id, WORKER, &done, now).await
            } else {
                records.cancel(&Scope::user("alice"), &id, now).await
            }
        }
    })
    .await;
    let (winners, losers): (Vec<_>, Vec<_>) = results.into_iter().partition(|r| r.is_ok());
    assert_eq!(winners.len(), 1, "exactly one transition wins: {winners:?}");
    let winner = winners.into_iter().next().unwrap().unwrap();
    for loser in losers {
        match loser {
            Err(RecordError::IllegalTransition { from, .. }) => assert_eq!(from, winner.status),
            other => panic!("a loser must get IllegalTransition, got {other:?}"),
        }
    }
    assert_eq!(records.get(&Scope::Admin, &id).await.unwrap(), winner);
}

async fn racing_cancels_have_one_winner(records: Records) {
    let record = records.insert(new_export("alice"), t0()).await.unwrap();
    let id = record.id.clone();
    let results = race(&records, |records, _| {
        let id = id.clone();
        async move {
            records
                .cancel(&Scope::user("alice"), &id, t0() + secs(1))
                .await
        }
    })
    .await;
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{results:?}");
    for result in results.into_iter().filter(|r| r.is_err()) {
        assert_illegal(result, &id, Status::Cancelled, Status::Cancelled);
    }
}

async fn racing_fail_and_cancel_have_one_winner(records: Records) {
    let record = in_state(&records, "alice", Status::Processing, t0()).await;
    let id = record.id.clone();
    let results = race(&records, |records, n| {
        let id = id.clone();
        async move {
            let now = t0() + secs(1);
            match n % 3 {
                0 => records.fail(&id, Some(WORKER), "plugin crashed", now).await,
                1 => records.fail(&id, None, "admin", now).await,
                _ => records.cancel(&Scope::Admin, &id, now).await,
            }
        }
    })
    .await;
    let wins: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(wins.len(), 1, "{results:?}");
    let final_status = wins[0].status;
    for result in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(result, RecordError::IllegalTransition { from, .. } if *from == final_status),
            "{result:?}"
        );
    }
}

async fn lost_lease_requeues_then_fails(records: Records) {
    let max_attempts = 2;
    let record = records.insert(new_export("alice"), t0()).await.unwrap();
    let id = record.id.clone();

    // Attempt 1: the worker dies; its lease (30 s) runs out.
    let first = records
        .claim_next("worker-a", LEASE, t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (first.attempts, first.lease_expires_at),
        (1, Some(t0() + secs(30)))
    );
    let early = records
        .requeue_expired_leases(t0() + secs(29), max_attempts)
        .await
        .unwrap();
    assert!(
        early.requeued.is_empty() && early.failed.is_empty(),
        "{early:?}"
    );
    let sweep = records
        .requeue_expired_leases(t0() + secs(31), max_attempts)
        .await
        .unwrap();
    assert_eq!((sweep.requeued, sweep.failed), (vec![id.clone()], vec![]));
    let requeued = records.get(&Scope::Admin, &id).await.unwrap();
    assert_eq!((requeued.status, requeued.attempts), (Status::Pending, 1));
    assert!(requeued.lease_owner.is_none() && requeued.lease_expires_at.is_none());
    assert_eq!(requeued.updated_at, t0() + secs(31));

    // Attempt 2 by another worker; the first one's late result is refused.
    let second = records
        .claim_next("worker-b", LEASE, t0() + secs(40))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((second.id.clone(), second.attempts), (id.clone(), 2));
    let late = records
        .complete(
            &id,
            "worker-a",
            &completion(&id, t0() + secs(41)),
            t0() + secs(41),
        )
        .await;
    assert!(
        matches!(
            late,
            Err(RecordError::LeaseLost {
                status: Status::Processing,
                ..
            })
        ),
        "{late:?}"
    );

    // Attempt 2 dies too: out of attempts, the export fails with a reason.
    let sweep = records
        .requeue_expired_leases(t0() + secs(71), max_attempts)
        .await
        .unwrap();
    assert_eq!((sweep.requeued, sweep.failed), (vec![], vec![id.clone()]));
    let failed = records.get(&Scope::Admin, &id).await.unwrap();
    assert_eq!(failed.status, Status::Failed);
    assert_eq!(failed.attempts, 2);
    let error = failed.error.unwrap();
    assert!(
        error.contains("lease") && error.contains("2 attempts"),
        "{error}"
    );
    assert!(records
        .claim_next("worker-c", LEASE, t0() + secs(80))
        .await
        .unwrap()
        .is_none());
    let idle = records
        .requeue_expired_leases(t0() + TimeDelta::days(1), max_attempts)
        .await
        .unwrap();
    assert!(idle.requeued.is_empty() && idle.failed.is_empty());
}

async fn heartbeat_keeps_the_lease(records: Records) {
    let record = in_state(&records, "alice", Status::Processing, t0()).await;
    records
        .heartbeat(&record.id, WORKER, t0() + secs(60), t0() + secs(25))
        .await
        .unwrap();
    let sweep = records
        .requeue_expired_leases(t0() + secs(45), 3)
        .await
        .unwrap();
    assert!(sweep.requeued.is_empty(), "a renewed lease is not lost");
    let sweep = records
        .requeue_expired_leases(t0() + secs(61), 3)
        .await
        .unwrap();
    assert_eq!(sweep.requeued, vec![record.id.clone()]);
}
