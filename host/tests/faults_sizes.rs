//! Record sizes against the real daemon: a long file name, large selectors
//! and options and unknown top-level fields are refused with 400; a user's
//! stored records (failed ones included) are capped; a list page is bounded
//! in bytes as well as in items.

mod common;
mod server_common;

use common::Sandbox;
use export_host::records::{NewExport, Records};
use serde_json::{json, Value};
use server_common::Daemon;

fn csv_daemon(extra: &[(&str, &str)]) -> Daemon {
    let sandbox = Sandbox::with_csv();
    sandbox.put("people.csv", "id,name\n1,ann\n");
    // Ragged rows: the export is accepted and then fails while running.
    sandbox.put("ragged.csv", "a,b\n1,2,3\n");
    Daemon::start(sandbox, extra)
}

fn message(answer: &server_common::Answer) -> String {
    answer.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn oversized_parts_and_unknown_fields_are_refused_with_400() {
    let daemon = csv_daemon(&[]);
    let token = daemon.token("ada", false);
    let base = json!({"loader": "csv", "format": "csv", "selector": {"path": "people.csv"}});

    let mut long_name = base.clone();
    long_name["options"] = json!({"file_name": format!("{}.csv", "n".repeat(252))});
    let answer = daemon.post("/v1/exports", Some(&token), &long_name);
    assert_eq!(answer.status, 400, "{}", message(&answer));
    assert!(
        message(&answer).contains("file_name is 256 bytes"),
        "{}",
        message(&answer)
    );
    long_name["options"] = json!({"file_name": format!("{}.csv", "n".repeat(251))});
    let answer = daemon.post("/v1/exports?wait=30", Some(&token), &long_name);
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );

    let mut big_selector = base.clone();
    big_selector["selector"]["path"] = json!("p".repeat(70_000));
    let answer = daemon.post("/v1/exports", Some(&token), &big_selector);
    assert_eq!(answer.status, 400);
    assert!(
        message(&answer).starts_with("selector is"),
        "{}",
        message(&answer)
    );

    let mut big_options = base.clone();
    big_options["options"] = json!({"padding": "o".repeat(70_000)});
    let answer = daemon.post("/v1/exports", Some(&token), &big_options);
    assert_eq!(answer.status, 400);
    assert!(
        message(&answer).starts_with("options is"),
        "{}",
        message(&answer)
    );

    let mut unknown = base.clone();
    unknown["selectr"] = json!({"path": "people.csv"});
    let answer = daemon.post("/v1/exports", Some(&token), &unknown);
    assert_eq!(answer.status, 400);
    assert!(
        message(&answer).contains("unknown field"),
        "{}",
        message(&answer)
    );

    // Nothing refused was recorded.
    let listed = daemon.get("/v1/exports", Some(&token)).json();
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
}

#[test]
fn failed_records_count_against_the_per_user_cap_of_stored_records() {
    let daemon = csv_daemon(&[("EXPORT_HOST_MAX_STORED_PER_USER", "3")]);
    let token = daemon.token("ada", false);
    let other = daemon.token("bo", false);
    let missing = json!({"loader": "csv", "format": "csv", "selector": {"path": "ragged.csv"}});
    for _ in 0..3 {
        let answer = daemon.post("/v1/exports?wait=30", Some(&token), &missing);
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json()["status"], "failed");
    }
    let answer = daemon.post("/v1/exports", Some(&token), &missing);
    assert_eq!(answer.status, 429);
    assert!(
        message(&answer).contains("stored export records"),
        "{}",
        message(&answer)
    );
    // Another user is not affected; deleting one makes room.
    assert_eq!(
        daemon.post("/v1/exports", Some(&other), &missing).status,
        202
    );
    let listed = daemon.get("/v1/exports", Some(&token)).json();
    let id = listed["items"][0]["id"].as_str().expect("an id").to_owned();
    assert_eq!(
        daemon
            .delete(&format!("/v1/exports/{id}"), Some(&token))
            .status,
        204
    );
    assert_eq!(
        daemon.post("/v1/exports", Some(&token), &missing).status,
        202
    );
}

#[test]
fn a_list_page_is_bounded_in_bytes() {
    let daemon = csv_daemon(&[]);
    let token = daemon.token("ada", false);
    // Large records straight into the daemon's database (the API caps
    // selectors at 64 KiB; these are 60 KiB each).
    let url = format!("sqlite://{}", daemon.data_dir.join("exports.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let records = Records::connect(&url).await.expect("the database");
        for n in 0..200 {
            let new = NewExport {
                user_id: "ada".to_owned(),
                loader: "csv/csv".to_owned(),
                format: "csv/csv".to_owned(),
                selector: json!({"path": format!("{n}{}", "x".repeat(60 * 1024))}),
                options: json!({}),
                file_name: None,
                request_hash: None,
                expires_at: None,
                metadata: json!({}),
                callback_url: None,
            };
            records
                .insert(new, chrono::Utc::now())
                .await
                .expect("an insert");
        }
        records.close().await;
    });
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/exports?limit=500&cursor={cursor}"),
            None => "/v1/exports?limit=500".to_owned(),
        };
        let answer = daemon.get(&path, Some(&token));
        assert_eq!(answer.status, 200);
        assert!(
            answer.body.len() < 10 * 1024 * 1024,
            "a page of {} bytes",
            answer.body.len()
        );
        let page: Value = answer.json();
        let items = page["items"].as_array().expect("items").len();
        assert!(items > 0);
        seen += items;
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, 200);
    assert!(pages >= 2, "200 records of 60 KiB came in {pages} page(s)");
}
