//! Who is asking: bearer tokens ([`Caller`]) and signed download links
//! ([`Signer`]).
//!
//! Every `/v1` route takes a [`Caller`]: the `Authorization: Bearer <token>`
//! header verified against the `tokens` table; no header, a malformed one or
//! an unknown or revoked token answers 401. A caller sees its own exports
//! ([`Scope::User`]), an admin token everyone's ([`Scope::Admin`]).
//!
//! A signed link carries `expires` (Unix seconds) and `sig`, the HMAC-SHA256
//! (hex) of `<export id>|<expires>` under `SIGNING_KEY`, checked in constant
//! time ([`Mac::verify_slice`]). The key comes from the setting, else from
//! `DATA_DIR/signing.key`, generated (32 random bytes, hex, mode 0600) on
//! first start.

use super::error::ApiError;
use super::AppState;
use crate::config::HostSettings;
use crate::records::{Principal, Scope};
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
        self.0.scope()
    }
}

/// Verifies the bearer token of a request.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "no token: send `Authorization: Bearer <token>`; an operator creates tokens with \
             `export-host token create --user USER`",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
        })?;
    let now = state.service.now();
    match state.service.records().verify_token(token, now).await? {
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
        })
    }

    /// The signer of these settings: `SIGNING_KEY`, else the key in
    /// `DATA_DIR/signing.key`, generated on first start.
    pub fn from_settings(settings: &HostSettings) -> Result<Signer, SigningKeyError> {
        let path = settings.signing_key_file();
        let key = match &settings.signing_key {
            Some(key) => key.expose().to_owned(),
            None => load_or_generate(&path)?,
        };
        Signer::new(key.as_bytes()).map_err(|err| SigningKeyError {
            what: "use",
            path: path.display().to_string(),
            source: std::io::Error::other(err.to_string()),
        })
    }

    fn mac(&self, id: &str, expires: i64) -> HmacSha256 {
        let mut mac = self.keyed.clone();
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
        if self.mac(id, expires).verify_slice(&bytes).is_err() {
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
}
