//! `MAX_PER_USER` under racing requests, on SQLite and on PostgreSQL: the
//! count and the insert are one transaction, so 50 requests at once accept
//! exactly the quota.

mod common;
mod faults_common;
mod server_common;

use faults_common::{gate_sandbox, FreshPg};
use serde_json::json;
use server_common::Daemon;
use std::sync::{Arc, Barrier};

const RACERS: usize = 50;

fn race(extra: &[(&str, &str)]) {
    let sandbox = gate_sandbox();
    // Never created: every accepted export stays active.
    let closed = sandbox.path().join("never-open");
    let mut env = vec![
        ("EXPORT_HOST_MAX_PER_USER", "3"),
        ("EXPORT_HOST_WORKERS", "1"),
    ];
    env.extend_from_slice(extra);
    let daemon = Arc::new(Daemon::start(sandbox, &env));
    let token = Arc::new(daemon.token("racer", false));
    let request = json!({"loader": "gate", "format": "csv", "selector": {"until": closed}});
    let barrier = Arc::new(Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (daemon, token, barrier, request) = (
                daemon.clone(),
                token.clone(),
                barrier.clone(),
                request.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                let answer = daemon.post("/v1/exports", Some(&token), &request);
                (
                    answer.status,
                    String::from_utf8_lossy(&answer.body).to_string(),
                )
            })
        })
        .collect();
    let answers: Vec<(u16, String)> = racers
        .into_iter()
        .map(|racer| racer.join().expect("a racer"))
        .collect();
    let accepted = answers.iter().filter(|(status, _)| *status == 202).count();
    let refused = answers.iter().filter(|(status, _)| *status == 429).count();
    assert_eq!(
        (accepted, refused),
        (3, RACERS - 3),
        "answers: {answers:?}\n{}",
        daemon.log()
    );
    let refusal = &answers
        .iter()
        .find(|(status, _)| *status == 429)
        .expect("a refusal")
        .1;
    assert!(refusal.contains("MAX_PER_USER"), "{refusal}");
    let listed = daemon.get("/v1/exports", Some(&token)).json();
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(3),
        "{listed}"
    );
}

#[test]
fn fifty_racing_requests_accept_exactly_max_per_user_on_sqlite() {
    race(&[]);
}

#[test]
fn fifty_racing_requests_accept_exactly_max_per_user_on_postgres() {
    let pg = FreshPg::new();
    race(&[("EXPORT_HOST_DATABASE_URL", pg.url.as_str())]);
}
