//! Who is asking: bearer tokens and JWTs ([`Caller`]), what a token may do
//! ([`Caller::may_create`], [`Caller::may_delete`]) and signed download
//! links ([`Signer`]).
//!
//! Every `/v1` route takes a [`Caller`]: the `Authorization: Bearer <value>`
//! header (the scheme in any case, RFC 9110). An `eht_` value is looked up
//! in the `tokens` table; any other value is verified as a JWT when
//! `JWT_SECRET` or `JWT_JWKS` is set ([`super::jwt`]). No header, a
//! malformed one, an unknown or revoked token or a refused JWT answers 401
//! saying which. A caller sees its own exports ([`Scope::User`]), an admin
//! everyone's ([`Scope::Admin`]); a token user and a JWT user with the same
//! id are one user.
//!
//! A token may be narrowed ([`TokenScope`](crate::records::TokenScope)): read-only (list, show,
//! download, link), or to some loaders, selector queries and formats. A
//! request outside it answers 403 naming what the token allows.
//!
//! A signed link carries `expires` (Unix seconds) and `sig`, the HMAC-SHA256
//! (hex) of `<export id>|<expires>` under `SIGNING_KEY`, checked in constant
//! time ([`Mac::verify_slice`]). The key comes from the setting, else from
//! `DATA_DIR/signing.key`, generated (32 random bytes, hex, mode 0600) on
//! first start. During a key rotation `SIGNING_KEY_PREVIOUS` still verifies
//! the links it signed; new links are signed with the current key only.

use super::error::ApiError;
use super::AppState;
use crate::config::HostSettings;
use crate::pipeline::ExportRequest;
use crate::records::{Principal, Scope, TOKEN_PREFIX};
use crate::service::PluginAddresses;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// The verified caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    /// The records scope the caller works in.
    pub fn scope(&self) -> Scope {
        self.0.records_scope()
    }

    /// Whether the caller may create `request`: 403 naming what the token
    /// allows when it is read-only, or the loader, the selector's `query`
    /// or the format is outside its scope. Addresses are compared resolved
    /// through `addresses`, so `csv` and `csv/csv` are the same loader.
    pub fn may_create(
        &self,
        addresses: &PluginAddresses,
        request: &ExportRequest,
    ) -> Result<(), ApiError> {
        let scope = &self.0.scope;
        if scope.read_only {
            return Err(read_only("create exports"));
        }
        if let Some(allowed) = &scope.loaders {
            let asked = addresses.loader(&request.loader);
            let resolve = |entry: &str| addresses.loader(entry);
            if !in_scope(asked.as_deref(), allowed, resolve) {
                return Err(outside("loader", &request.loader, "loaders", allowed));
            }
        }
        if let Some(allowed) = &scope.formats {
            let asked = addresses.formatter(&request.format);
            let resolve = |entry: &str| addresses.formatter(entry);
            if !in_scope(asked.as_deref(), allowed, resolve) {
                return Err(outside("format", &request.format, "formats", allowed));
            }
        }
        if let Some(allowed) = &scope.queries {
            let query = request.selector.get("query").and_then(|q| q.as_str());
            if !query.is_some_and(|query| allowed.iter().any(|a| a == query)) {
                let asked = query.map_or_else(
                    || "a selector without a `query`".to_owned(),
                    |q| format!("query {q:?}"),
                );
                return Err(ApiError::forbidden(format!(
                    "this token may not run {asked}: it may run only the queries {} (selector.query)",
                    allowed.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Whether the caller may cancel or delete exports: 403 for a
    /// read-only token.
    pub fn may_delete(&self) -> Result<(), ApiError> {
        if self.0.scope.read_only {
            return Err(read_only("cancel or delete exports"));
        }
        Ok(())
    }
}

fn read_only(what: &str) -> ApiError {
    ApiError::forbidden(format!(
        "this token is read-only: it may list, show, download and link exports, not {what}; \
         ask an operator for a token without --read-only"
    ))
}

fn outside(kind: &str, asked: &str, plural: &str, allowed: &[String]) -> ApiError {
    ApiError::forbidden(format!(
        "this token may not use the {kind} {asked:?}: it may use only the {plural} {}",
        allowed.join(", ")
    ))
}

/// Whether the resolved address `asked` is one of `allowed`: an entry
/// matches when it is that address (`plugin/name`), or a bare name that
/// resolves to it now. An address that does not resolve matches nothing
/// (the request would fail anyway).
fn in_scope(
    asked: Option<&str>,
    allowed: &[String],
    resolve: impl Fn(&str) -> Option<String>,
) -> bool {
    let Some(asked) = asked else {
        return false;
    };
    allowed.iter().any(|entry| {
        entry == asked || (!entry.contains('/') && resolve(entry).as_deref() == Some(asked))
    })
}

/// The credentials of an `Authorization` value: `Bearer <value>`, the
/// scheme compared case-insensitively (RFC 9110).
fn bearer(value: &str) -> Option<&str> {
    let value = value.trim();
    let (scheme, rest) = value.split_once([' ', '\t'])?;
    let credentials = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credentials.is_empty()).then_some(credentials)
}

/// Verifies the bearer token or JWT of a request.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "no token: send `Authorization: Bearer <token>`; an operator creates tokens with \
             `export-host token create --user USER`",
        ));
    };
    let token = value.to_str().ok().and_then(bearer).ok_or_else(|| {
        ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
    })?;
    if !token.starts_with(TOKEN_PREFIX) {
        if let Some(jwt) = &state.jwt {
            return match jwt.verify(token).await {
                Ok(principal) => Ok(Caller(principal)),
                Err(refusal) => {
                    tracing::info!(reason = %refusal, "JWT refused");
                    Err(ApiError::unauthorized(refusal.0))
                }
            };
        }
        if super::jwt::looks_like_jwt(token) {
            return Err(ApiError::unauthorized(
                "this host does not accept JWTs (neither JWT_SECRET nor JWT_JWKS is set); \
                 send an API token (eht_...)",
            ));
        }
    }
    match state.service.verify_token(token).await? {
        Some(principal) => Ok(Caller(principal)),
        None => Err(ApiError::unauthorized(
            "the token is unknown or revoked; ask an operator for a new one",
        )),
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        authenticate(state, &parts.headers).await
    }
}

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks download links.
#[derive(Clone)]
pub struct Signer {
    keyed: HmacSha256,
    /// `SIGNING_KEY_PREVIOUS`: verifies, never signs.
    previous: Option<HmacSha256>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

/// Why the signing key could not be had.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what} the signing key file {path}: {source}; set SIGNING_KEY, or make DATA_DIR writable by the daemon")]
pub struct SigningKeyError {
    what: &'static str,
    path: String,
    #[source]
    source: std::io::Error,
}

impl Signer {
    /// A signer with this key material (HMAC takes a key of any length;
    /// the error cannot happen with SHA-256 but is typed all the same).
    pub fn new(key: &[u8]) -> Result<Signer, hmac::digest::InvalidLength> {
        Ok(Signer {
            keyed: HmacSha256::new_from_slice(key)?,
            previous: None,
        })
    }

    /// This signer, also accepting links signed with `key` (a rotation's
    /// former key).
    pub fn with_previous(mut self, key: &[u8]) -> Result<Signer, hmac::digest::InvalidLength> {
        self.previous = Some(HmacSha256::new_from_slice(key)?);
        Ok(self)
    }

    /// The signer of these settings: `SIGNING_KEY`, else the key in
    /// `DATA_DIR/signing.key`, generated on first start.
    pub fn from_settings(settings: &HostSettings) -> Result<Signer, SigningKeyError> {
        let path = settings.signing_key_file();
        let key = match &settings.signing_key {
            Some(key) => key.expose().to_owned(),
            None => load_or_generate(&path)?,
        };
        let unusable = |err: hmac::digest::InvalidLength| SigningKeyError {
            what: "use",
            path: path.display().to_string(),
            source: std::io::Error::other(err.to_string()),
        };
        let signer = Signer::new(key.as_bytes()).map_err(unusable)?;
        match &settings.signing_key_previous {
            Some(previous) => signer
                .with_previous(previous.expose().as_bytes())
                .map_err(unusable),
            None => Ok(signer),
        }
    }

    fn mac(&self, id: &str, expires: i64) -> HmacSha256 {
        Self::mac_with(&self.keyed, id, expires)
    }

    fn mac_with(keyed: &HmacSha256, id: &str, expires: i64) -> HmacSha256 {
        let mut mac = keyed.clone();
        mac.update(id.as_bytes());
        mac.update(b"|");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// The signature (hex) of a link to `id` valid until `expires`.
    pub fn sign(&self, id: &str, expires: i64) -> String {
        hex::encode(self.mac(id, expires).finalize().into_bytes())
    }

    /// Whether `sig` signs `id` until `expires` and `now` is before then.
    /// The comparison is constant-time.
    pub fn verify(&self, id: &str, expires: i64, sig: &str, now: DateTime<Utc>) -> LinkCheck {
        let Ok(bytes) = hex::decode(sig) else {
            return LinkCheck::Forged;
        };
        let current = self.mac(id, expires).verify_slice(&bytes).is_ok();
        let previous = !current
            && self.previous.as_ref().is_some_and(|keyed| {
                Self::mac_with(keyed, id, expires)
                    .verify_slice(&bytes)
                    .is_ok()
            });
        if !current && !previous {
            return LinkCheck::Forged;
        }
        if now.timestamp() >= expires {
            return LinkCheck::Expired;
        }
        LinkCheck::Valid
    }
}

/// What a signed link check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkCheck {
    Valid,
    Expired,
    Forged,
}

fn load_or_generate(path: &Path) -> Result<String, SigningKeyError> {
    let error = |what, source| SigningKeyError {
        what,
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => {
            return Err(error(
                "use",
                std::io::Error::other("it is empty; delete it to have a new key generated"),
            ))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(error("read", err)),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| error("create the directory of", e))?;
    }
    let key = format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(key.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| error("write", e))?;
            tracing::info!(path = %path.display(), "generated a signing key for download links");
            Ok(key)
        }
        // Another daemon on the same DATA_DIR made it first: use theirs.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read_to_string(path)
                .map(|text| text.trim().to_owned())
                .map_err(|e| error("read", e))
        }
        Err(err) => Err(error("create", err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_verify_only_unchanged_and_unexpired() {
        let signer = Signer::new(b"secret").unwrap();
        let now = Utc::now();
        let expires = now.timestamp() + 60;
        let sig = signer.sign("exp_1", expires);
        assert_eq!(signer.verify("exp_1", expires, &sig, now), LinkCheck::Valid);
        assert_eq!(
            signer.verify("exp_2", expires, &sig, now),
            LinkCheck::Forged
        );
        assert_eq!(
            signer.verify("exp_1", expires + 1, &sig, now),
            LinkCheck::Forged
        );
        assert_eq!(
            signer.verify("exp_1", expires, "zz", now),
            LinkCheck::Forged
        );
        assert_eq!(
            Signer::new(b"other")
                .unwrap()
                .verify("exp_1", expires, &sig, now),
            LinkCheck::Forged
        );
        let later = now + chrono::TimeDelta::seconds(61);
        assert_eq!(
            signer.verify("exp_1", expires, &sig, later),
            LinkCheck::Expired
        );
    }

    #[test]
    fn the_previous_key_verifies_but_never_signs() {
        let now = Utc::now();
        let expires = now.timestamp() + 60;
        let old = Signer::new(b"old key").unwrap();
        let old_sig = old.sign("exp_1", expires);
        let rotated = Signer::new(b"new key")
            .unwrap()
            .with_previous(b"old key")
            .unwrap();
        assert_eq!(
            rotated.verify("exp_1", expires, &old_sig, now),
            LinkCheck::Valid
        );
        assert_ne!(rotated.sign("exp_1", expires), old_sig);
        assert_eq!(
            Signer::new(b"new key")
                .unwrap()
                .verify("exp_1", expires, &old_sig, now),
            LinkCheck::Forged
        );
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("BEARER abc"), Some("abc"));
        assert_eq!(bearer("bEaReR   abc "), Some("abc"));
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearerabc"), None);
    }

    #[test]
    fn scope_entries_match_resolved_addresses() {
        let resolve = |entry: &str| match entry {
            "csv" => Some("csv/csv".to_owned()),
            _ => None,
        };
        let allowed = vec!["csv".to_owned()];
        assert!(in_scope(Some("csv/csv"), &allowed, resolve));
        assert!(!in_scope(Some("jsonl/jsonl"), &allowed, resolve));
        assert!(!in_scope(None, &allowed, resolve));
        let allowed = vec!["csv/csv".to_owned()];
        assert!(in_scope(Some("csv/csv"), &allowed, |_| None));
        // A bare entry naming another plugin's loader does not match.
        let allowed = vec!["other".to_owned()];
        assert!(!in_scope(Some("csv/csv"), &allowed, resolve));
    }
}
