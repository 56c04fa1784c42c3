//! The read side and cleanup: list pagination and filters, dedupe, the
//! active-export quota count, expiry, purge and live storage keys, on SQLite
//! and PostgreSQL, with a clock the test controls.

#[macro_use]
mod records_common;

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use export_host::records::{
    ExportId, ExportRecord, ListFilter, Page, RecordError, Records, Scope, Status,
};
use records_common::*;

both_backends!(
    list_pages_newest_first_with_a_cursor,
    list_filters_by_status_loader_and_format,
    list_rejects_a_bad_cursor,
    dedupe_finds_the_newest_reusable_export,
    count_active_counts_pending_and_processing,
    expiry_and_purge_follow_the_clock,
);

/// Every page of `filter`, following next_cursor to the end.
async fn all_pages(records: &Records, mut filter: ListFilter) -> (Vec<ExportRecord>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    loop {
        let page = records.list(&filter).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= filter.limit as usize);
        items.extend(page.items);
        match page.next_cursor {
            Some(cursor) => filter.cursor = Some(cursor),
            None => return (items, pages),
        }
        assert!(pages < 100, "pagination does not end");
    }
}

fn ids(records: &[ExportRecord]) -> Vec<ExportId> {
    records.iter().map(|r| r.id.clone()).collect()
}

/// A new pending export of `user`, created at `at`.
async fn insert_export(records: &Records, user: &str, at: DateTime<Utc>) -> ExportRecord {
    records.insert(new_export(user), at).await.unwrap()
}

/// The first page of Alice's list, at most `limit` exports.
async fn alices_first_page(records: &Records, limit: u32) -> Page {
    let filter = ListFilter {
        limit,
        ..ListFilter::for_user("alice")
    };
    records.list(&filter).await.unwrap()
}

async fn list_pages_newest_first_with_a_cursor(records: Records) {
    let mut alices = Vec::new();
    for i in 0..7 {
        alices.push(insert_export(&records, "alice", t0() + secs(i)).await);
    }
    // Three created in the same microsecond: the id breaks the tie, and a
    // page boundary between them neither skips nor repeats one.
    for _ in 0..3 {
        alices.push(insert_export(&records, "alice", t0() + secs(3)).await);
    }
    for i in 0..2 {
        insert_export(&records, "bob", t0() + secs(i)).await;
    }
    let mut expected = alices.clone();
    expected.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));

    for limit in [1, 2, 3, 4, 10, 11, 500] {
        let filter = ListFilter {
            limit,
            ..ListFilter::for_user("alice")
        };
        let (items, pages) = all_pages(&records, filter).await;
        assert_eq!(ids(&items), ids(&expected), "limit {limit}");
        // No empty last page: one row more than the page tells whether another follows.
        assert_eq!(pages, 10usize.div_ceil(limit as usize), "limit {limit}");
    }

    let first = alices_first_page(&records, 4).await;
    assert_eq!(ids(&first.items), ids(&expected[..4]));
    assert!(first.next_cursor.is_some());
    let exact = alices_first_page(&records, 10).await;
    assert_eq!(exact.items.len(), 10);
    assert_eq!(exact.next_cursor, None, "no empty last page");

    // The admin list (user None) sees everyone.
    let (everyone, _) = all_pages(
        &records,
        ListFilter {
            limit: 5,
            ..ListFilter::all()
        },
    )
    .await;
    assert_eq!(everyone.len(), 12);
    let users: HashSet<_> = everyone.iter().map(|r| r.user_id.as_str()).collect();
    assert_eq!(users, HashSet::from(["alice", "bob"]));
    assert!(everyone
        .windows(2)
        .all(|w| (w[0].created_at, &w[0].id) > (w[1].created_at, &w[1].id)));

    // Bob's list has only Bob's, and a cursor from Alice's list grants nothing.
    let bobs = records
        .list(&ListFilter {
            cursor: first.next_cursor.clone(),
            ..ListFilter::for_user("bob")
        })
        .await
        .unwrap();
    assert!(bobs.items.iter().all(|r| r.user_id == "bob"));

    // A limit of 0 is clamped to 1.
    let one = alices_first_page(&records, 0).await;
    assert_eq!(one.items.len(), 1);
}

async fn list_filters_by_status_loader_and_format(records: Records) {
    let mut cancelled = Vec::new();
    for i in 0..6 {
        let mut new = new_export("alice");
        if i % 2 == 0 {
            new.loader = "jsonl".into();
            new.format = "csv".into();
        }
        let record = records.insert(new, t0() + secs(i)).await.unwrap();
        if i < 3 {
            records
                .cancel(&Scope::user("alice"), &record.id, t0() + secs(10))
                .await
                .unwrap();
            cancelled.push(record.id);
        }
    }
    insert_export(&records, "bob", t0()).await;

    let filter = |status: Option<Status>| ListFilter {
        status,
        limit: 2,
        ..ListFilter::for_user("alice")
    };
    let (items, _) = all_pages(&records, filter(Some(Status::Cancelled))).await;
    let mut expected = cancelled.clone();
    expected.reverse();
    assert_eq!(ids(&items), expected);
    let (items, _) = all_pages(&records, filter(Some(Status::Pending))).await;
    assert_eq!(items.len(), 3);
    assert!(items
        .iter()
        .all(|r| r.status == Status::Pending && r.user_id == "alice"));
    let (items, _) = all_pages(&records, filter(Some(Status::Completed))).await;
    assert!(items.is_empty());

    let (items, _) = all_pages(
        &records,
        ListFilter {
            status: Some(Status::Pending),
            limit: 2,
            ..ListFilter::all()
        },
    )
    .await;
    assert_eq!(items.len(), 4, "admin: 3 of Alice's and Bob's");

    let by_loader = ListFilter {
        loader: Some("jsonl".into()),
        limit: 2,
        ..ListFilter::for_user("alice")
    };
    let (items, _) = all_pages(&records, by_loader).await;
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|r| r.loader == "jsonl"));
    let both = ListFilter {
        loader: Some("csv".into()),
        format: Some("jsonl".into()),
        status: Some(Status::Pending),
        ..ListFilter::for_user("alice")
    };
    let (items, _) = all_pages(&records, both).await;
    assert_eq!(items.len(), 2);
}

async fn list_rejects_a_bad_cursor(records: Records) {
    for cursor in [
        "nonsense",
        "",
        "zz",
        &hex_of("v1:12:exp_short"),
        &hex_of("v2:0:x"),
    ] {
        let filter = ListFilter {
            cursor: Some(cursor.to_owned()),
            ..ListFilter::for_user("alice")
        };
        match records.list(&filter).await {
            Err(err @ RecordError::InvalidCursor { .. }) => {
                assert!(err.to_string().contains("next_cursor"), "{err}")
            }
            other => panic!("cursor {cursor:?}: expected InvalidCursor, got {other:?}"),
        }
    }
}

/// The export `user` may reuse for `hash`: the newest completed since
/// `since` and not expired at `now`.
async fn reusable(
    records: &Records,
    user: &str,
    hash: &str,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<ExportRecord> {
    records.find_reusable(user, hash, since, now).await.unwrap()
}

fn hex_of(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

async fn dedupe_finds_the_newest_reusable_export(records: Records) {
    let hashed = |user: &str, hash: &str| {
        let mut new = new_export(user);
        new.request_hash = Some(hash.to_owned());
        new
    };
    let complete = |id: ExportId, at| {
        let records = records.clone();
        async move {
            records
                .claim_next(WORKER, LEASE, at)
                .await
                .unwrap()
                .unwrap();
            records
                .complete(&id, WORKER, &completion(&id, at), at)
                .await
                .unwrap()
        }
    };
    let since = t0() - TimeDelta::minutes(10);
    let now = t0() + secs(100);

    assert_eq!(reusable(&records, "alice", "h", since, now).await, None);

    // A pending one is not reusable.
    let pending = records.insert(hashed("alice", "h"), t0()).await.unwrap();
    assert_eq!(reusable(&records, "alice", "h", since, now).await, None);
    let older = complete(pending.id, t0() + secs(1)).await;
    assert_eq!(
        reusable(&records, "alice", "h", since, now).await,
        Some(older.clone())
    );

    // The newest of two completed ones wins.
    let newer = records
        .insert(hashed("alice", "h"), t0() + secs(5))
        .await
        .unwrap();
    let newer = complete(newer.id, t0() + secs(6)).await;
    assert_eq!(
        reusable(&records, "alice", "h", since, now).await,
        Some(newer.clone())
    );

    // Not another user's, not another hash, not older than the TTL window,
    // not past its expiry.
    assert_eq!(reusable(&records, "bob", "h", since, now).await, None);
    assert_eq!(reusable(&records, "alice", "other", since, now).await, None);
    assert_eq!(
        reusable(&records, "alice", "h", t0() + secs(6), now).await,
        None
    );
    assert_eq!(
        reusable(&records, "alice", "h", t0() + secs(5), now)
            .await
            .map(|r| r.id),
        Some(newer.id.clone())
    );
    let after_expiry = t0() + TimeDelta::hours(2);
    assert_eq!(
        reusable(&records, "alice", "h", since, after_expiry).await,
        None
    );

    // Cancelled or failed ones are never reused.
    let cancelled = records.insert(hashed("carol", "h"), t0()).await.unwrap();
    records
        .cancel(&Scope::Admin, &cancelled.id, t0())
        .await
        .unwrap();
    assert_eq!(reusable(&records, "carol", "h", since, now).await, None);
}

async fn count_active_counts_pending_and_processing(records: Records) {
    assert_eq!(records.count_active("alice").await.unwrap(), 0);
    // Pending last: in_state claims the oldest pending export.
    let mut statuses = Status::ALL.to_vec();
    statuses.rotate_left(1);
    for status in statuses {
        in_state(&records, "alice", status, t0()).await;
    }
    insert_export(&records, "bob", t0() + secs(1)).await;
    insert_export(&records, "alice", t0() + secs(2)).await;
    assert_eq!(
        records.count_active("alice").await.unwrap(),
        3,
        "pending x2 + processing"
    );
    assert_eq!(records.count_active("bob").await.unwrap(), 1);
    assert_eq!(records.count_active("nobody").await.unwrap(), 0);
}

async fn expiry_and_purge_follow_the_clock(records: Records) {
    let retention = TimeDelta::days(7);
    // Completed at t0 and t0+1h, so they expire an hour later each.
    let early = in_state(&records, "alice", Status::Completed, t0()).await;
    let late = in_state(
        &records,
        "alice",
        Status::Completed,
        t0() + TimeDelta::hours(1),
    )
    .await;
    let failed = in_state(&records, "alice", Status::Failed, t0()).await;
    let cancelled = in_state(&records, "bob", Status::Cancelled, t0()).await;
    let pending = in_state(&records, "bob", Status::Pending, t0()).await;
    let early_key = early.storage_key.clone().unwrap();
    let late_key = late.storage_key.clone().unwrap();

    let mut live = records.live_storage_keys().await.unwrap();
    live.sort();
    let mut both = vec![early_key.clone(), late_key.clone()];
    both.sort();
    assert_eq!(live, both);
    assert!(records.is_key_live(&early_key).await.unwrap());
    assert!(!records.is_key_live("files/never-recorded").await.unwrap());

    // Nothing is due before expires_at.
    assert!(records
        .expire_due(t0() + TimeDelta::minutes(59))
        .await
        .unwrap()
        .is_empty());

    // At t0+1h the first one is due: expired, its key handed back, no longer live.
    let due = t0() + TimeDelta::hours(1);
    let expired = records.expire_due(due).await.unwrap();
    assert_eq!(expired, vec![(early.id.clone(), early_key.clone())]);
    let after = records.get(&Scope::Admin, &early.id).await.unwrap();
    assert_eq!((after.status, after.updated_at), (Status::Expired, due));
    assert!(!records.is_key_live(&early_key).await.unwrap());
    assert!(
        records.is_key_live(&late_key).await.unwrap(),
        "the other file is still live"
    );
    assert_eq!(
        records.live_storage_keys().await.unwrap(),
        vec![late_key.clone()]
    );
    assert!(
        records.expire_due(due).await.unwrap().is_empty(),
        "expiring is done once"
    );

    // Purge takes `now - RETENTION_DAYS`: finished records last changed
    // before it go, nothing else. Failed and cancelled were last changed at
    // t0, the expired one at t0+1h.
    let cleanup_at = |now: chrono::DateTime<chrono::Utc>| records.purge(now - retention);
    assert_eq!(cleanup_at(t0() + retention - secs(1)).await.unwrap(), 0);
    let purged = cleanup_at(t0() + retention + secs(1)).await.unwrap();
    assert_eq!(purged, 2);
    for gone in [&failed.id, &cancelled.id] {
        assert!(matches!(
            records.get(&Scope::Admin, gone).await,
            Err(RecordError::NotFound { .. })
        ));
    }
    assert_eq!(
        records.get(&Scope::Admin, &early.id).await.unwrap().status,
        Status::Expired
    );

    // A week after expiry the expired record goes; completed and pending stay.
    let week_later = due + retention;
    assert_eq!(cleanup_at(week_later - secs(1)).await.unwrap(), 0);
    assert_eq!(cleanup_at(week_later + secs(1)).await.unwrap(), 1);
    assert!(matches!(
        records.get(&Scope::Admin, &early.id).await,
        Err(RecordError::NotFound { .. })
    ));
    assert_eq!(
        records.get(&Scope::Admin, &late.id).await.unwrap().status,
        Status::Completed
    );
    assert_eq!(
        records
            .get(&Scope::Admin, &pending.id)
            .await
            .unwrap()
            .status,
        Status::Pending
    );
    assert!(records.is_key_live(&late_key).await.unwrap());
}
