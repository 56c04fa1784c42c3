//! API tokens (README.md, "Run the daemon"): the `tokens` table.
//!
//! A token is `eht_` and 64 lowercase hex digits (32 bytes from a CSPRNG).
//! Only its SHA-256 (hex) is stored, so a leaked database holds no usable
//! token; the plaintext is returned once, by [`Records::create_token`].
//! [`Records::verify_token`] hashes what a client sends and looks the hash up
//! (an indexed equality on the digest: the lookup time says nothing about
//! how much of a token was right). Revoked tokens never verify.
//!
//! The table is a maintenance path: every call runs in the admin scope (on
//! PostgreSQL the table has no row-level security).

use chrono::{DateTime, TimeDelta, Utc};
use export_plugin_api::{Caller, Credential};
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::LazyLock;

use super::row::Ts;
use super::{finish, postgres, sqlite, typed, Backend, Mode, RecordError, Records, Scope};

/// The prefix of every token.
pub const TOKEN_PREFIX: &str = "eht_";

/// `last_used_at` is refreshed at most this often per token, so verifying a
/// token is a read almost every time.
const LAST_USED_GRANULARITY: TimeDelta = TimeDelta::seconds(60);

/// Who a verified credential (an API token or a JWT) speaks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The user: the same id string whether it came from a token or a JWT,
    /// so both see the same exports, quota and storage folder.
    pub user: String,
    /// Whether the caller sees every user's exports.
    pub admin: bool,
    /// How the caller proved who they are (the token's id, or the JWT's
    /// issuer, subject and claims).
    pub credential: Credential,
    /// What the credential may do; a JWT has its user's full rights.
    pub scope: TokenScope,
}

impl Principal {
    /// The records scope of this principal: its own exports, or everyone's
    /// for an admin.
    pub fn records_scope(&self) -> Scope {
        if self.admin {
            Scope::Admin
        } else {
            Scope::User(self.user.clone())
        }
    }

    /// The caller handed to loaders and kept in export metadata.
    pub fn caller(&self) -> Caller {
        Caller {
            user: self.user.clone(),
            admin: self.admin,
            credential: self.credential.clone(),
        }
    }

    /// The token's id (`tok_...`) for a token, `None` for a JWT.
    pub fn token_id(&self) -> Option<&str> {
        match &self.credential {
            Credential::Token { id } => Some(id),
            _ => None,
        }
    }
}

/// What a token may do. The default (every field unset) is its user's full
/// rights; each set field narrows them. Stored as JSON in `tokens.scope`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenScope {
    /// List, show, download and link only: no create, no delete.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// The loaders it may use (`name` or `plugin/name`); `None` is any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaders: Option<Vec<String>>,
    /// The selector `query` values it may ask for; `None` is any. When set,
    /// a selector without a `query` is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queries: Option<Vec<String>>,
    /// The formats it may use (`name` or `plugin/name`); `None` is any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formats: Option<Vec<String>>,
}

impl TokenScope {
    /// Whether this is the user's full rights.
    pub fn is_full(&self) -> bool {
        *self == TokenScope::default()
    }

    /// Checks the names: non-empty, no spaces or commas.
    pub fn validate(&self) -> Result<(), RecordError> {
        let lists = [
            ("loaders", &self.loaders),
            ("queries", &self.queries),
            ("formats", &self.formats),
        ];
        for (field, list) in lists {
            let Some(list) = list else { continue };
            if list.is_empty() {
                return Err(RecordError::InvalidInput {
                    field,
                    reason: "the list is empty; name at least one, or leave it out for any"
                        .to_owned(),
                });
            }
            if let Some(bad) = list.iter().find(|name| {
                name.is_empty()
                    || name
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || c == ',')
            }) {
                return Err(RecordError::InvalidInput {
                    field,
                    reason: format!(
                        "{bad:?} is not a name: use names such as csv or csv/csv, comma-separated"
                    ),
                });
            }
        }
        Ok(())
    }

    /// A short description for `token list`: `full`, or e.g.
    /// `read-only; loaders=csv,sql; formats=csv`.
    pub fn describe(&self) -> String {
        if self.is_full() {
            return "full".to_owned();
        }
        let mut parts = Vec::new();
        if self.read_only {
            parts.push("read-only".to_owned());
        }
        for (name, list) in [
            ("loaders", &self.loaders),
            ("queries", &self.queries),
            ("formats", &self.formats),
        ] {
            if let Some(list) = list {
                parts.push(format!("{name}={}", list.join(",")));
            }
        }
        parts.join("; ")
    }

    /// The stored form: `None` (SQL NULL) for full rights.
    fn to_column(&self) -> Option<String> {
        if self.is_full() {
            return None;
        }
        serde_json::to_string(self).ok()
    }

    fn from_column(id: &str, text: Option<&str>) -> Result<TokenScope, RecordError> {
        match text {
            None => Ok(TokenScope::default()),
            // Never read as "full rights": the token stops working until
            // an operator replaces it.
            Some(text) => serde_json::from_str(text).map_err(|err| RecordError::Corrupt {
                id: id.to_owned(),
                reason: format!(
                    "the token's scope {text:?} cannot be read ({err}); revoke it and create a new one"
                ),
            }),
        }
    }
}

/// A stored token, as listed (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub user_id: String,
    pub admin: bool,
    /// What it may do (`{}` for its user's full rights).
    pub scope: TokenScope,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A token just created: the plaintext is here and nowhere else.
pub struct NewToken {
    /// The stored record.
    pub info: TokenInfo,
    /// The token to hand to the client (shown once).
    pub token: String,
}

impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewToken")
            .field("info", &self.info)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// SHA-256 (hex) of a token, as stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_hex(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes * 2);
    while out.len() < bytes * 2 {
        out.push_str(&format!("{:032x}", rand::random::<u128>()));
    }
    out.truncate(bytes * 2);
    out
}

/// Whether `token` has the shape of a host token (checked before hashing,
/// so garbage never reaches the database).
fn is_well_formed(token: &str) -> bool {
    token.strip_prefix(TOKEN_PREFIX).is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

#[derive(sqlx::FromRow)]
struct RawToken {
    id: String,
    user_id: String,
    admin: bool,
    scope: Option<String>,
    created_at: Ts,
    revoked_at: Option<Ts>,
    last_used_at: Option<Ts>,
}

impl RawToken {
    /// A row of `SELECT {TOKEN_COLUMNS}` read directly from SQLite.
    fn from_sqlite_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawToken> {
        Ok(RawToken {
            id: row.get("id")?,
            user_id: row.get("user_id")?,
            admin: row.get("admin")?,
            scope: row.get("scope")?,
            created_at: row.get("created_at")?,
            revoked_at: row.get("revoked_at")?,
            last_used_at: row.get("last_used_at")?,
        })
    }
}

impl TryFrom<RawToken> for TokenInfo {
    type Error = RecordError;

    fn try_from(raw: RawToken) -> Result<Self, RecordError> {
        let scope = TokenScope::from_column(&raw.id, raw.scope.as_deref())?;
        Ok(TokenInfo {
            id: raw.id,
            user_id: raw.user_id,
            admin: raw.admin,
            scope,
            created_at: raw.created_at.0,
            revoked_at: raw.revoked_at.map(|t| t.0),
            last_used_at: raw.last_used_at.map(|t| t.0),
        })
    }
}

const TOKEN_COLUMNS: &str = "id, user_id, admin, scope, created_at, revoked_at, last_used_at";

/// The lookup of every authenticated request, built once.
static VERIFY_SQL: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE token_hash = $1 AND revoked_at IS NULL")
});

impl Records {
    /// Creates a token for `user` (an admin token when `admin`) limited to
    /// `scope`; the plaintext is in the answer and is never stored.
    pub async fn create_token(
        &self,
        user: &str,
        admin: bool,
        scope: &TokenScope,
        now: DateTime<Utc>,
    ) -> Result<NewToken, RecordError> {
        if user.trim().is_empty() {
            return Err(RecordError::InvalidInput {
                field: "user",
                reason: "it is empty: a token maps to a user id".to_owned(),
            });
        }
        scope.validate()?;
        let scope_column = scope.to_column();
        let id = format!("tok_{}", random_hex(8));
        let token = format!("{TOKEN_PREFIX}{}", random_hex(32));
        let hash = token_hash(&token);
        let sql = format!(
            "INSERT INTO tokens (id, user_id, token_hash, admin, created_at, scope) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {TOKEN_COLUMNS}"
        );
        let info = in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            let raw: RawToken = sqlx::query_as(&sql)
                .bind(&id)
                .bind(user)
                .bind(&hash)
                .bind(admin)
                .bind(Ts::new(now))
                .bind(&scope_column)
                .fetch_one(&mut *tx)
                .await?;
            TokenInfo::try_from(raw)
        })?;
        tracing::info!(token_id = %info.id, user, admin, scope = %info.scope.describe(), "token created");
        Ok(NewToken { info, token })
    }

    /// The principal `token` speaks for; `None` for a malformed, unknown or
    /// revoked token. Notes the use (at most once a minute per token).
    pub async fn verify_token(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Principal>, RecordError> {
        if !is_well_formed(token) {
            return Ok(None);
        }
        let hash = token_hash(token);
        let sql = &*VERIFY_SQL;
        let found: Option<TokenInfo> = match &self.readers {
            Some(readers) => readers
                .read(|db| {
                    db.prepare_cached(sql)?
                        .query_row([&hash], RawToken::from_sqlite_row)
                        .optional()
                })?
                .map(TokenInfo::try_from)
                .transpose()?,
            None => in_tx!(self, &Scope::Admin, Mode::Read, |tx| {
                let raw: Option<RawToken> = sqlx::query_as(sql)
                    .bind(&hash)
                    .fetch_optional(&mut *tx)
                    .await?;
                raw.map(TokenInfo::try_from).transpose()
            })?,
        };
        let Some(info) = found else {
            return Ok(None);
        };
        let stale = info
            .last_used_at
            .is_none_or(|used| now - used >= LAST_USED_GRANULARITY);
        if stale {
            let touched = in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
                sqlx::query("UPDATE tokens SET last_used_at = $2 WHERE id = $1")
                    .bind(&info.id)
                    .bind(Ts::new(now))
                    .execute(&mut *tx)
                    .await?;
                Ok(())
            });
            if let Err(err) = touched {
                // Authentication does not depend on it.
                tracing::warn!(token_id = %info.id, error = %err, "cannot note a token's use");
            }
        }
        Ok(Some(Principal {
            user: info.user_id,
            admin: info.admin,
            credential: Credential::Token { id: info.id },
            scope: info.scope,
        }))
    }

    /// Every token (revoked ones too), oldest first; `user` narrows it.
    pub async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<TokenInfo>, RecordError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens \
             WHERE (CAST($1 AS TEXT) IS NULL OR user_id = $1) ORDER BY created_at, id"
        );
        in_tx!(self, &Scope::Admin, Mode::Read, |tx| {
            let rows: Vec<RawToken> = sqlx::query_as(&sql).bind(user).fetch_all(&mut *tx).await?;
            rows.into_iter().map(TokenInfo::try_from).collect()
        })
    }

    /// Revokes token `id` (its requests answer 401 from now on). Revoking a
    /// revoked token changes nothing; an unknown id is an error.
    pub async fn revoke_token(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<TokenInfo, RecordError> {
        let sql = format!(
            "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 \
             RETURNING {TOKEN_COLUMNS}"
        );
        let info = in_tx!(self, &Scope::Admin, Mode::Write, |tx| {
            let raw: Option<RawToken> = sqlx::query_as(&sql)
                .bind(id)
                .bind(Ts::new(now))
                .fetch_optional(&mut *tx)
                .await?;
            raw.map(TokenInfo::try_from)
                .transpose()?
                .ok_or_else(|| RecordError::InvalidInput {
                    field: "token id",
                    reason: format!("no token {id:?}; `export-host token list` shows them"),
                })
        })?;
        tracing::info!(token_id = %info.id, "token revoked");
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_documented_shape() {
        let token = format!("{TOKEN_PREFIX}{}", random_hex(32));
        assert!(is_well_formed(&token), "{token}");
        assert!(!is_well_formed("eht_xyz"));
        assert!(!is_well_formed(&token.replace("eht_", "ehx_")));
        assert_eq!(token_hash(&token).len(), 64);
        assert_ne!(random_hex(32), random_hex(32));
    }

    #[test]
    fn scopes_store_as_json_and_full_rights_as_null() {
        assert_eq!(TokenScope::default().to_column(), None);
        assert_eq!(TokenScope::default().describe(), "full");
        let scope = TokenScope {
            read_only: true,
            loaders: Some(vec!["csv".into(), "sql/sql".into()]),
            queries: None,
            formats: Some(vec!["json".into()]),
        };
        let text = scope.to_column().unwrap();
        assert_eq!(
            text,
            r#"{"read_only":true,"loaders":["csv","sql/sql"],"formats":["json"]}"#
        );
        assert_eq!(
            TokenScope::from_column("tok_1", Some(&text)).unwrap(),
            scope
        );
        assert_eq!(
            scope.describe(),
            "read-only; loaders=csv,sql/sql; formats=json"
        );
        assert!(TokenScope::from_column("tok_1", Some(r#"{"admin":true}"#)).is_err());
        let bad = TokenScope {
            loaders: Some(vec!["a b".into()]),
            ..TokenScope::default()
        };
        assert!(bad.validate().is_err());
        let empty = TokenScope {
            formats: Some(vec![]),
            ..TokenScope::default()
        };
        assert!(empty.validate().is_err());
    }
}
