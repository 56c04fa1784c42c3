//! Who asked for an export (since plugin-api 1.2).
//!
//! The host verifies the credential of every request (an API token, or a
//! JWT its auth server signed) and hands the loader the result as a
//! [`Caller`]. A loader that serves per-user data filters by it: the sql
//! plugin binds query parameters to [`Caller::user`], the file loaders read
//! from a folder of the caller's own. The caller never comes from the
//! request's selector: only the host sets it.
//!
//! A loader sees `Option<&Caller>`. `None` means the host did not say: a
//! host older than 1.2, or a test that passed none. Treat it as "nobody",
//! never as "everybody": refuse what needs an identity.
//!
//! ```
//! use export_plugin_api::{Caller, Credential};
//! let caller = Caller::user("u_ada");
//! assert!(!caller.admin);
//! assert_eq!(caller.credential, Credential::Operator);
//! let admin = Caller::operator();
//! assert!(admin.admin);
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The verified identity a loader runs for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Caller {
    /// The user id: the same for a token and a JWT naming the same user.
    pub user: String,
    /// Whether the caller may act for every user (an admin token, a JWT
    /// with the configured admin claim, or an operator at the CLI).
    pub admin: bool,
    /// How the caller proved who they are.
    pub credential: Credential,
}

/// The credential behind a [`Caller`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credential {
    /// An API token created with `export-host token create`.
    Token {
        /// The token's id (`tok_...`), never the token itself.
        id: String,
    },
    /// A JWT bearer token, verified by the host (signature, `exp`, `nbf`,
    /// issuer and audience when configured).
    Jwt {
        /// The `iss` claim, when the token has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        issuer: Option<String>,
        /// The `sub` claim, when the token has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        /// Every verified claim, as the token carried them.
        claims: Map<String, Value>,
    },
    /// Someone on the machine running the CLI (`export-host export`).
    Operator,
}

impl Caller {
    /// An operator at the CLI acting as an admin.
    pub fn operator() -> Caller {
        Caller {
            user: "operator".to_owned(),
            admin: true,
            credential: Credential::Operator,
        }
    }

    /// An operator at the CLI acting as one user (`export --user U`).
    pub fn user(user: &str) -> Caller {
        Caller {
            user: user.to_owned(),
            admin: false,
            credential: Credential::Operator,
        }
    }

    /// The verified JWT claims, when the caller came with a JWT.
    pub fn claims(&self) -> Option<&Map<String, Value>> {
        match &self.credential {
            Credential::Jwt { claims, .. } => Some(claims),
            _ => None,
        }
    }

    /// The claims a database policy sees for this caller: the JWT's own,
    /// or for other credentials `{"sub": user, "role": ...}` built from the
    /// identity (`role` is `"admin"` for an admin, else `"user"`).
    pub fn claims_json(&self) -> Value {
        match self.claims() {
            Some(claims) => Value::Object(claims.clone()),
            None => serde_json::json!({
                "sub": self.user,
                "role": if self.admin { "admin" } else { "user" },
            }),
        }
    }
}
