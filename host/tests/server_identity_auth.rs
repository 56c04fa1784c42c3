//! Who may call the daemon, through the real process over HTTP: JWT bearer
//! tokens (HS256 from JWT_SECRET; RS256, ES256 and EdDSA from a JWKS file
//! or URL) beside the host's own tokens, each refusal naming its reason;
//! scoped and read-only tokens (on SQLite and PostgreSQL); the bearer
//! scheme in any case; link requests (415 without JSON, URLs from
//! PUBLIC_URL, links of a rotated SIGNING_KEY still valid while it is
//! SIGNING_KEY_PREVIOUS).
//!
//! The keys are fixtures made with OpenSSL (tests/fixtures/jwt/README.md);
//! the JWKS is derived from them here.

mod common;
#[allow(unused_macros)] // both_backends! is for the records tests
mod records_common;
mod server_common;

use base64::Engine;
use common::Sandbox;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use server_common::{Answer, Daemon};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "a-test-jwt-secret-of-at-least-thirty-two-characters";
const ISSUER: &str = "https://auth.example.test/";
const AUDIENCE: &str = "authenticated";

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_der(&fixture("rsa_private.der"))
}

fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_der(&fixture("ec_private.der"))
}

fn ed_key() -> EncodingKey {
    EncodingKey::from_ed_der(&fixture("ed25519_private.der"))
}

fn secret_key() -> EncodingKey {
    EncodingKey::from_secret(SECRET.as_bytes()).expect("an HMAC key")
}

/// The public JWK of a private key, with a key id.
fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(key, alg).expect("a JWK of the key");
    jwk.common.key_id = Some(kid.to_owned());
    jwk
}

fn jwks(keys: Vec<Jwk>) -> String {
    serde_json::to_string(&JwkSet { keys }).expect("JWKS as JSON")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// Claims for `sub`, valid for an hour, with the test issuer and audience.
fn claims(sub: &str) -> Value {
    json!({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now(), "exp": now() + 3600})
}

/// The [`claims`] for `sub` with the claim `name` set to `value`.
fn claims_with(sub: &str, name: &str, value: Value) -> Value {
    let mut claims = claims(sub);
    claims[name] = value;
    claims
}

/// The [`claims`] for `sub` less the claim named `missing`.
fn claims_without(sub: &str, missing: &str) -> Value {
    let mut claims = claims(sub);
    claims
        .as_object_mut()
        .expect("claims are an object")
        .remove(missing);
    claims
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("a signed JWT")
}

/// A JWT of `claims` signed HS256 with [`SECRET`], without a key id.
fn hs256_jwt(claims: &Value) -> String {
    sign(Algorithm::HS256, None, &secret_key(), claims)
}

/// A JWT of `claims` signed RS256 with the RSA key, key id `rsa1`.
fn rs256_jwt(claims: &Value) -> String {
    sign(Algorithm::RS256, Some("rsa1"), &rsa_key(), claims)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An unsigned JWT (`alg: none`).
fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    )
}

/// `token` with its payload swapped for `claims` (the signature kept).
fn tampered(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!(
        "{}.{}.{}",
        parts[0],
        b64(claims.to_string().as_bytes()),
        parts[2]
    )
}

/// Asserts a 401 whose message contains `needle`.
fn assert_refused(answer: &Answer, needle: &str) {
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(answer.error_code(), "unauthorized");
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains(needle),
        "the 401 should say {needle:?}: {message}"
    );
}

/// Asserts that listing the exports with `token` is refused with a 401
/// whose message contains `needle`.
fn assert_listing_refused(daemon: &Daemon, token: &str, needle: &str) {
    assert_refused(&daemon.get("/v1/exports", Some(token)), needle);
}

/// Asserts a 403 whose message contains each of `needles`.
fn assert_forbidden(answer: &Answer, needles: &[&str]) {
    assert_eq!(answer.status, 403, "{}", answer.text());
    assert_eq!(answer.error_code(), "forbidden");
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for needle in needles {
        assert!(
            message.contains(needle),
            "the 403 should say {needle:?}: {message}"
        );
    }
}

fn sandbox() -> Sandbox {
    let sandbox = Sandbox::with_csv_and_json();
    sandbox.put("people.csv", "id,name\n1,ann\n2,bo\n");
    sandbox.put("people.jsonl", "{\"id\":1,\"name\":\"ann\"}\n");
    sandbox
}

fn people() -> Value {
    json!({"loader": "csv", "format": "csv", "selector": {"path": "people.csv"}})
}

fn ids(list: &Answer) -> Vec<String> {
    assert_eq!(list.status, 200, "{}", list.text());
    list.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["id"].as_str().expect("an id").to_owned())
        .collect()
}

fn with_authorization(daemon: &Daemon, path: &str, value: &str) -> Answer {
    daemon.request("GET", path, None, &[("Authorization", value)], None)
}

#[test]
fn hs256_jwts_are_the_same_users_as_tokens_and_admins_by_claim() {
    let daemon = Daemon::start(
        sandbox(),
        &[
            ("EXPORT_HOST_JWT_SECRET", SECRET),
            ("EXPORT_HOST_JWT_ADMIN", "role=service_role"),
        ],
    );
    let alice_token = daemon.token("alice", false);
    let alice_jwt = hs256_jwt(&claims("alice"));
    let bob_jwt = hs256_jwt(&claims("bob"));

    // An export made with the token is the JWT user's, and the other way.
    let by_token = daemon.create_and_wait(&alice_token, &people())["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_jwt = daemon.create_and_wait(&alice_jwt, &people());
    assert_eq!(by_jwt["user_id"], "alice");
    let by_jwt = by_jwt["id"].as_str().unwrap().to_owned();
    let mut seen = ids(&daemon.get("/v1/exports", Some(&alice_jwt)));
    seen.sort();
    let mut expected = vec![by_token.clone(), by_jwt.clone()];
    expected.sort();
    assert_eq!(seen, expected);
    let mut seen = ids(&daemon.get("/v1/exports", Some(&alice_token)));
    seen.sort();
    assert_eq!(seen, expected);
    let download = daemon.get(
        &format!("/v1/exports/{by_token}/download"),
        Some(&alice_jwt),
    );
    assert_eq!(download.status, 200);
    assert_eq!(download.body, b"id,name\n1,ann\n2,bo\n");
    // Another user's JWT sees neither.
    assert_eq!(
        daemon
            .get(&format!("/v1/exports/{by_token}"), Some(&bob_jwt))
            .status,
        404
    );
    assert!(ids(&daemon.get("/v1/exports", Some(&bob_jwt))).is_empty());

    // The admin claim makes an admin; any other value does not.
    let ops = hs256_jwt(&claims_with("ops", "role", json!("service_role")));
    assert_eq!(
        daemon
            .get(&format!("/v1/exports/{by_jwt}"), Some(&ops))
            .status,
        200
    );
    assert_eq!(ids(&daemon.get("/v1/exports", Some(&ops))).len(), 2);
    let user_role = hs256_jwt(&claims_with("eve", "role", json!("authenticated")));
    assert_eq!(
        daemon
            .get(&format!("/v1/exports/{by_jwt}"), Some(&user_role))
            .status,
        404
    );

    // The scheme in any case (RFC 9110), for both kinds.
    for scheme in ["BEARER", "bearer", "bEaReR"] {
        let answer = with_authorization(&daemon, "/v1/exports", &format!("{scheme} {alice_token}"));
        assert_eq!(answer.status, 200, "{scheme}: {}", answer.text());
        let answer = with_authorization(&daemon, "/v1/exports", &format!("{scheme} {alice_jwt}"));
        assert_eq!(answer.status, 200, "{scheme}: {}", answer.text());
    }
    assert_refused(
        &with_authorization(&daemon, "/v1/exports", &format!("Basic {alice_token}")),
        "Bearer",
    );

    // Each refusal says why.
    let expired = claims_with("alice", "exp", json!(now() - 120));
    assert_listing_refused(&daemon, &hs256_jwt(&expired), "expired");
    // Within the 60 s of leeway it is still good.
    let just_expired = claims_with("alice", "exp", json!(now() - 20));
    assert_eq!(
        daemon
            .get("/v1/exports", Some(&hs256_jwt(&just_expired)))
            .status,
        200
    );
    let early = claims_with("alice", "nbf", json!(now() + 3600));
    assert_listing_refused(&daemon, &hs256_jwt(&early), "not valid yet");
    let other_secret =
        EncodingKey::from_secret(b"another-secret-of-at-least-thirty-two-chars").unwrap();
    assert_listing_refused(
        &daemon,
        &sign(Algorithm::HS256, None, &other_secret, &claims("alice")),
        "signature",
    );
    assert_listing_refused(&daemon, &tampered(&alice_jwt, &claims("bob")), "signature");
    assert_listing_refused(&daemon, &unsigned(&claims("alice")), "alg: none");
    let no_subject = claims_without("alice", "sub");
    assert_listing_refused(&daemon, &hs256_jwt(&no_subject), "no `sub` claim");
    let no_expiry = claims_without("alice", "exp");
    assert_listing_refused(&daemon, &hs256_jwt(&no_expiry), "`exp`");
    // An asymmetric token where only a secret is configured.
    assert_listing_refused(
        &daemon,
        &sign(Algorithm::RS256, None, &rsa_key(), &claims("alice")),
        "algorithm",
    );
    assert_listing_refused(&daemon, "not-a-token", "neither");
    // Tokens still work as before.
    assert_listing_refused(
        &daemon,
        &format!("eht_{}", "0".repeat(64)),
        "unknown or revoked",
    );
}

#[test]
fn jwks_file_keys_verify_and_every_refusal_names_its_reason() {
    let sandbox = sandbox();
    let set = jwks(vec![
        jwk(&rsa_key(), Algorithm::RS256, "rsa1"),
        jwk(&ec_key(), Algorithm::ES256, "ec1"),
        jwk(&ed_key(), Algorithm::EdDSA, "ed1"),
    ]);
    let file = sandbox.put("jwks.json", set);
    let daemon = Daemon::start(
        sandbox,
        &[
            ("EXPORT_HOST_JWT_JWKS", file.to_str().unwrap()),
            ("EXPORT_HOST_JWT_ISSUER", ISSUER),
            ("EXPORT_HOST_JWT_AUDIENCE", AUDIENCE),
        ],
    );
    let ok = |token: &str| {
        let answer = daemon.get("/v1/exports", Some(token));
        assert_eq!(answer.status, 200, "{}", answer.text());
    };
    let rs256 = rs256_jwt(&claims("alice"));
    ok(&rs256);
    ok(&sign(
        Algorithm::ES256,
        Some("ec1"),
        &ec_key(),
        &claims("alice"),
    ));
    ok(&sign(
        Algorithm::EdDSA,
        Some("ed1"),
        &ed_key(),
        &claims("alice"),
    ));
    // Without a key id, the keys of the token's algorithm are tried.
    ok(&sign(Algorithm::RS256, None, &rsa_key(), &claims("alice")));
    // An RS256 user is the token user of the same id.
    let token = daemon.token("alice", false);
    let id = daemon.create_and_wait(&token, &people())["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(ids(&daemon.get("/v1/exports", Some(&rs256))), vec![id]);

    // The published RSA key used as an HS256 secret.
    let public_pem = fixture("rsa_public.pem");
    let confused = sign(
        Algorithm::HS256,
        Some("rsa1"),
        &EncodingKey::from_secret(&public_pem).unwrap(),
        &claims("alice"),
    );
    assert_listing_refused(&daemon, &confused, "algorithm");
    // A key id's algorithm is the key's, not the token's.
    assert_listing_refused(
        &daemon,
        &sign(Algorithm::RS384, Some("rsa1"), &rsa_key(), &claims("alice")),
        "algorithm",
    );
    assert_listing_refused(&daemon, &unsigned(&claims("alice")), "alg: none");
    let mut expired = claims("alice");
    expired["exp"] = json!(now() - 3600);
    expired["iat"] = json!(now() - 7200);
    assert_listing_refused(&daemon, &rs256_jwt(&expired), "expired");
    let early = claims_with("alice", "nbf", json!(now() + 600));
    assert_listing_refused(
        &daemon,
        &sign(Algorithm::ES256, Some("ec1"), &ec_key(), &early),
        "not valid yet",
    );
    assert_listing_refused(&daemon, &tampered(&rs256, &claims("bob")), "signature");
    let wrong_issuer = claims_with("alice", "iss", json!("https://evil.example.test/"));
    assert_listing_refused(&daemon, &rs256_jwt(&wrong_issuer), "issuer");
    let no_issuer = claims_without("alice", "iss");
    assert_listing_refused(&daemon, &rs256_jwt(&no_issuer), "issuer");
    let wrong_audience = claims_with("alice", "aud", json!(["billing", "reports"]));
    assert_listing_refused(
        &daemon,
        &sign(Algorithm::EdDSA, Some("ed1"), &ed_key(), &wrong_audience),
        "audience",
    );
    let no_subject = claims_without("alice", "sub");
    assert_listing_refused(&daemon, &rs256_jwt(&no_subject), "no `sub` claim");
    assert_listing_refused(
        &daemon,
        &sign(Algorithm::RS256, Some("gone"), &rsa_key(), &claims("alice")),
        "kid",
    );
    // No secret is configured: HS256 is not accepted at all.
    assert_listing_refused(&daemon, &hs256_jwt(&claims("alice")), "algorithm");

    // The OpenAPI document names both kinds, and every /v1 route takes either.
    let doc = daemon.get("/v1/openapi.json", None).json();
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["jwt"]["scheme"], "bearer", "{schemes}");
    assert_eq!(schemes["jwt"]["bearerFormat"], "JWT", "{schemes}");
    assert_eq!(schemes["bearer"]["scheme"], "bearer", "{schemes}");
    for (path, method) in [
        ("/v1/exports", "post"),
        ("/v1/exports", "get"),
        ("/v1/exports/{id}", "delete"),
        ("/v1/exports/{id}/link", "post"),
        ("/v1/exports/{id}/download", "get"),
        ("/v1/plugins", "get"),
    ] {
        let security = &doc["paths"][path][method]["security"];
        let names: Vec<String> = security
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path} has security: {security}"))
            .iter()
            .flat_map(|r| r.as_object().unwrap().keys().cloned().collect::<Vec<_>>())
            .collect();
        assert!(
            names.contains(&"bearer".to_owned()) && names.contains(&"jwt".to_owned()),
            "{method} {path}: {security}"
        );
    }
}

#[test]
fn a_daemon_without_jwt_settings_says_so() {
    let daemon = Daemon::start(sandbox(), &[]);
    assert_listing_refused(
        &daemon,
        &hs256_jwt(&claims("alice")),
        "does not accept JWTs",
    );
}

/// A one-route HTTP server answering every request with `body`, counting
/// the requests.
struct JwksServer {
    url: String,
    body: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    fn start(body: String) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let body = Arc::new(Mutex::new(body));
        let hits = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (body.clone(), hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let text = served.lock().unwrap().clone();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        JwksServer { url, body, hits }
    }
}

#[test]
fn a_jwks_url_is_fetched_again_for_an_unknown_key_id_at_most_once_per_floor() {
    let server = JwksServer::start(jwks(vec![jwk(&ec_key(), Algorithm::ES256, "ec1")]));
    let daemon = Daemon::start(
        sandbox(),
        &[
            ("EXPORT_HOST_JWT_JWKS", server.url.as_str()),
            ("EXPORT_HOST_JWKS_REFRESH_SECONDS", "3"),
        ],
    );
    assert_eq!(server.hits.load(Ordering::SeqCst), 1, "fetched at start");
    let ec = sign(Algorithm::ES256, Some("ec1"), &ec_key(), &claims("alice"));
    assert_eq!(daemon.get("/v1/exports", Some(&ec)).status, 200);

    // The auth server rotates in a new key: tokens signed with it work once
    // the floor has passed, after exactly one more fetch however many
    // requests asked meanwhile.
    *server.body.lock().unwrap() = jwks(vec![
        jwk(&ec_key(), Algorithm::ES256, "ec1"),
        jwk(&ed_key(), Algorithm::EdDSA, "ed2"),
    ]);
    let ed = sign(Algorithm::EdDSA, Some("ed2"), &ed_key(), &claims("alice"));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut refused = 0;
    loop {
        let answer = daemon.get("/v1/exports", Some(&ed));
        if answer.status == 200 {
            break;
        }
        assert_refused(&answer, "kid");
        refused += 1;
        assert!(Instant::now() < deadline, "the new key was never fetched");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        2,
        "after {refused} refusals"
    );
    // Right after a fetch, unknown key ids fetch nothing.
    let unknown = sign(Algorithm::EdDSA, Some("nope"), &ed_key(), &claims("alice"));
    for _ in 0..5 {
        assert_listing_refused(&daemon, &unknown, "kid");
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);
}

fn token_with(daemon: &Daemon, user: &str, scope: &[&str]) -> String {
    let mut args = vec!["token", "create", "--user", user];
    args.extend_from_slice(scope);
    let out = common::succeeded(&daemon.cli(&args));
    String::from_utf8(out).expect("UTF-8").trim().to_owned()
}

fn scoped_tokens_are_held_to_their_scope(extra: &[(&str, &str)]) {
    let daemon = Daemon::start(sandbox(), extra);
    let full = daemon.token("alice", false);
    let read_only = token_with(&daemon, "alice", &["--read-only"]);
    let csv_only = token_with(
        &daemon,
        "alice",
        &["--loaders", "csv/csv", "--formats", "json"],
    );
    let jsonl_only = token_with(&daemon, "alice", &["--loaders", "jsonl"]);
    let queries = token_with(&daemon, "alice", &["--queries", "conversations,traces"]);

    let id = daemon.create_and_wait(&full, &people())["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Read-only: everything but create and delete.
    assert_eq!(
        ids(&daemon.get("/v1/exports", Some(&read_only))),
        vec![id.clone()]
    );
    assert_eq!(
        daemon
            .get(&format!("/v1/exports/{id}"), Some(&read_only))
            .status,
        200
    );
    assert_eq!(
        daemon
            .get(&format!("/v1/exports/{id}/download"), Some(&read_only))
            .status,
        200
    );
    let link = daemon.post(
        &format!("/v1/exports/{id}/link"),
        Some(&read_only),
        &json!({"ttl": 60}),
    );
    assert_eq!(link.status, 200, "{}", link.text());
    assert_forbidden(
        &daemon.post("/v1/exports", Some(&read_only), &people()),
        &["read-only", "list, show, download and link"],
    );
    assert_forbidden(
        &daemon.delete(&format!("/v1/exports/{id}"), Some(&read_only)),
        &["read-only"],
    );
    assert_eq!(
        daemon.get(&format!("/v1/exports/{id}"), Some(&full)).status,
        200
    );

    // Loaders and formats, by bare name or plugin/name.
    let csv_to_json =
        json!({"loader": "csv", "format": "json", "selector": {"path": "people.csv"}});
    daemon.create_and_wait(&csv_only, &csv_to_json);
    let addressed =
        json!({"loader": "csv/csv", "format": "json/json", "selector": {"path": "people.csv"}});
    daemon.create_and_wait(&csv_only, &addressed);
    assert_forbidden(
        &daemon.post("/v1/exports", Some(&csv_only), &people()),
        &["format \"csv\"", "only the formats json"],
    );
    let jsonl = json!({"loader": "jsonl", "format": "json", "selector": {"path": "people.jsonl"}});
    assert_forbidden(
        &daemon.post("/v1/exports", Some(&csv_only), &jsonl),
        &["loader \"jsonl\"", "only the loaders csv/csv"],
    );
    daemon.create_and_wait(&jsonl_only, &jsonl);
    assert_forbidden(
        &daemon.post("/v1/exports", Some(&jsonl_only), &people()),
        &["loader \"csv\"", "only the loaders jsonl"],
    );
    // Queries: a selector without one, or with another, is refused.
    assert_forbidden(
        &daemon.post("/v1/exports", Some(&queries), &people()),
        &[
            "without a `query`",
            "only the queries conversations, traces",
        ],
    );
    let other_query = json!({"loader": "csv", "format": "csv", "selector": {"path": "people.csv", "query": "analytics"}});
    assert_forbidden(
        &daemon.post("/v1/exports", Some(&queries), &other_query),
        &["query \"analytics\"", "conversations, traces"],
    );
    // A scoped token may still delete (only read-only forbids it).
    assert_eq!(
        daemon
            .delete(&format!("/v1/exports/{id}"), Some(&csv_only))
            .status,
        204
    );

    // `token list` shows each scope.
    let listed = String::from_utf8(common::succeeded(&daemon.cli(&["token", "list"]))).unwrap();
    assert!(listed.contains("SCOPE"), "{listed}");
    assert!(listed.contains("\tfull\t"), "{listed}");
    assert!(listed.contains("\tread-only\t"), "{listed}");
    assert!(listed.contains("loaders=csv/csv; formats=json"), "{listed}");
    assert!(listed.contains("queries=conversations,traces"), "{listed}");
    let json: Value = serde_json::from_slice(&common::succeeded(
        &daemon.cli(&["token", "list", "--json"]),
    ))
    .unwrap();
    let scopes: Vec<&Value> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["scope"])
        .collect();
    assert!(scopes.contains(&&json!({})), "{json}");
    assert!(scopes.contains(&&json!({"read_only": true})), "{json}");
    assert!(scopes.contains(&&json!({"loaders": ["jsonl"]})), "{json}");

    // Bad scope names are refused with what to do.
    let out = daemon.cli(&["token", "create", "--user", "alice", "--loaders", "a b"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a name"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn scoped_tokens_on_sqlite() {
    scoped_tokens_are_held_to_their_scope(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_tokens_on_postgres() {
    records_common::with_scratch_postgres_url(|url| {
        scoped_tokens_are_held_to_their_scope(&[("EXPORT_HOST_DATABASE_URL", url.as_str())])
    })
    .await;
}

/// The path and query of a link URL under `base`.
fn path_of(url: &str, base: &str) -> String {
    url.strip_prefix(base)
        .unwrap_or_else(|| panic!("{url} does not start with {base}"))
        .to_owned()
}

#[test]
fn links_need_json_come_from_public_url_and_survive_a_key_rotation() {
    let old_key = "old-signing-key-0123456789abcdef0123456789";
    let new_key = "new-signing-key-0123456789abcdef0123456789";
    let public = "https://exports.example.test/api";
    let mut daemon = Daemon::start(
        sandbox(),
        &[
            ("EXPORT_HOST_SIGNING_KEY", old_key),
            ("EXPORT_HOST_PUBLIC_URL", public),
        ],
    );
    let token = daemon.token("alice", false);
    let id = daemon.create_and_wait(&token, &people())["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let link_path = format!("/v1/exports/{id}/link");
    let auth = format!("Bearer {token}");

    // A body that is not declared JSON: 415, not the default lifetime.
    let answer = daemon.send_raw(
        "POST",
        &link_path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        b"ttl=60",
    );
    assert_eq!(answer.status, 415, "{}", answer.text());
    assert_eq!(answer.error_code(), "unsupported_media_type");
    let answer = daemon.send_raw(
        "POST",
        &link_path,
        &[("Authorization", &auth)],
        br#"{"ttl": 60}"#,
    );
    assert_eq!(answer.status, 415, "{}", answer.text());
    // No body: the default lifetime; a JSON body: its ttl.
    let answer = daemon.send_raw("POST", &link_path, &[("Authorization", &auth)], b"");
    assert_eq!(answer.status, 200, "{}", answer.text());
    let default = answer.json();
    let expires = chrono::DateTime::parse_from_rfc3339(default["expires_at"].as_str().unwrap())
        .unwrap()
        .timestamp();
    assert!((expires - now() - 3600).abs() < 30, "{default}");
    let answer = daemon.send_raw(
        "POST",
        &link_path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        br#"{"ttl": 600}"#,
    );
    assert_eq!(answer.status, 200, "{}", answer.text());

    // The URL comes from PUBLIC_URL, whatever Host the client sent.
    let answer = daemon.send_raw(
        "POST",
        &link_path,
        &[("Authorization", &auth), ("Host", "evil.example.test")],
        b"",
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let url = answer.json()["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("{public}/v1/exports/{id}/download?")),
        "{url}"
    );
    assert!(!url.contains("evil"), "{url}");
    let old_link = path_of(&url, public);
    assert_eq!(daemon.get(&old_link, None).status, 200);

    // Rotation: the new key signs, the old one still verifies.
    daemon.stop_with("TERM", Duration::from_secs(30));
    daemon.set_env("EXPORT_HOST_SIGNING_KEY", Some(new_key));
    daemon.set_env("EXPORT_HOST_SIGNING_KEY_PREVIOUS", Some(old_key));
    daemon.set_env("EXPORT_HOST_PUBLIC_URL", None);
    daemon.restart();
    let old = daemon.get(&old_link, None);
    assert_eq!(old.status, 200, "{}", old.text());
    assert_eq!(old.body, b"id,name\n1,ann\n2,bo\n");
    // Without PUBLIC_URL, links name the listen address.
    let answer = daemon.post(&link_path, Some(&token), &json!({}));
    assert_eq!(answer.status, 200, "{}", answer.text());
    let url = answer.json()["url"].as_str().unwrap().to_owned();
    let new_link = path_of(&url, &daemon.base);
    assert_ne!(new_link, old_link);
    assert_eq!(daemon.get(&new_link, None).status, 200);

    // Once the previous key is dropped, its links stop working.
    daemon.stop_with("TERM", Duration::from_secs(30));
    daemon.set_env("EXPORT_HOST_SIGNING_KEY_PREVIOUS", None);
    daemon.restart();
    let old = daemon.get(&old_link, None);
    assert_eq!(old.status, 403, "{}", old.text());
    assert_eq!(daemon.get(&new_link, None).status, 200);
}
