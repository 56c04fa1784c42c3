//! JWT bearer tokens beside the host's own (`JWT_*` settings, README
//! "Settings").
//!
//! A bearer value that is not an `eht_` token is verified as a JWT when a
//! key is configured: `JWT_SECRET` (HS256) and/or `JWT_JWKS` (the public
//! keys of an auth server: RS256, ES256, EdDSA and the other asymmetric
//! algorithms jsonwebtoken verifies). The algorithm comes from the key,
//! never from the token alone: a token whose `alg` is not the one of a
//! configured key is refused before any signature check, so an HS256 token
//! "signed" with a published RSA key never meets that key as a secret. An
//! unsigned token (`alg: none`) is refused by name.
//!
//! After the signature: `exp` is required and, like `nbf`, checked with
//! [`LEEWAY`]; `iss` and `aud` must match `JWT_ISSUER` and `JWT_AUDIENCE`
//! when those are set. The user is the `JWT_USER_CLAIM` claim (`sub` by
//! default), the same string a token of that user maps to, so both see the
//! same exports. `JWT_ADMIN` (`claim=value`) makes the caller an admin.
//!
//! A JWKS URL is fetched at start and again when a token names a key id the
//! set lacks (the auth server rotated its keys), at most once per
//! `JWKS_REFRESH_SECONDS` (60 by default): tokens with made-up key ids cannot make the daemon
//! hammer the auth server.

use crate::config::{JwksSource, JwtSettings};
use crate::records::{Principal, TokenScope};
use base64::Engine;
use export_plugin_api::Credential;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY: u64 = 60;
/// How long one JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest JWKS read (real ones are a few KiB).
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Why the JWT settings cannot be used (stops the daemon at start).
#[derive(Debug, thiserror::Error)]
pub enum JwtSetupError {
    #[error("cannot read the JWKS file {path} (JWT_JWKS): {source}; check the path and the daemon's permissions")]
    ReadJwks {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the JWKS {source_name} (JWT_JWKS) cannot be used: {reason}")]
    BadJwks { source_name: String, reason: String },
    #[error("cannot use JWT_SECRET: {0}")]
    Secret(String),
    #[error("cannot build the HTTP client for JWT_JWKS: {0}")]
    Client(String),
}

/// Why a JWT was refused: the message of the 401 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtRefusal(pub String);

impl fmt::Display for JwtRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn refuse(message: impl Into<String>) -> JwtRefusal {
    JwtRefusal(message.into())
}

/// One verification key of the JWKS.
#[derive(Clone)]
struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// The JWKS and, for a URL, how to fetch it again.
struct Jwks {
    source: JwksSource,
    keys: RwLock<Arc<Vec<Key>>>,
    client: Option<reqwest::Client>,
    /// When the URL was last fetched; held across a fetch so concurrent
    /// requests with an unknown key id fetch once.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    floor: Duration,
}

/// Verifies JWT bearer tokens against the configured keys and claims.
pub struct JwtVerifier {
    settings: JwtSettings,
    secret: Option<DecodingKey>,
    jwks: Option<Jwks>,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("jwks", &self.jwks.as_ref().map(|j| j.source.to_string()))
            .field("issuer", &self.settings.issuer)
            .field("audience", &self.settings.audience)
            .finish()
    }
}

/// The parts of a JWT header read before verification.
#[derive(serde::Deserialize)]
struct RawHeader {
    alg: Option<String>,
    kid: Option<String>,
}

const NEITHER: &str = "the bearer value is neither an API token (eht_...) nor a JWT";

/// Whether a bearer value has the shape of a JWT (three base64url parts).
pub fn looks_like_jwt(value: &str) -> bool {
    let parts: Vec<&str> = value.split('.').collect();
    parts.len() == 3
        && !parts[0].is_empty()
        && !parts[1].is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
}

impl JwtVerifier {
    /// The verifier of these settings; `None` when JWTs are off. A JWKS
    /// file is read now; a URL is fetched now, and a failed fetch only
    /// warns (it is tried again when a token needs it).
    pub async fn from_settings(
        settings: &JwtSettings,
    ) -> Result<Option<JwtVerifier>, JwtSetupError> {
        if !settings.enabled() {
            return Ok(None);
        }
        let secret = match &settings.secret {
            Some(secret) => Some(
                DecodingKey::from_secret(secret.expose().as_bytes())
                    .map_err(|err| JwtSetupError::Secret(err.to_string()))?,
            ),
            None => None,
        };
        let jwks = match &settings.jwks {
            None => None,
            Some(source @ JwksSource::File(path)) => {
                let text = std::fs::read(path).map_err(|source| JwtSetupError::ReadJwks {
                    path: path.display().to_string(),
                    source,
                })?;
                let keys = parse_jwks(&text).map_err(|reason| JwtSetupError::BadJwks {
                    source_name: source.to_string(),
                    reason,
                })?;
                tracing::info!(jwks = %source, keys = keys.len(), "JWT keys read");
                Some(Jwks {
                    source: source.clone(),
                    keys: RwLock::new(Arc::new(keys)),
                    client: None,
                    last_fetch: tokio::sync::Mutex::new(None),
                    floor: settings.jwks_refresh,
                })
            }
            Some(source @ JwksSource::Url(_)) => {
                let client = reqwest::Client::builder()
                    .timeout(FETCH_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::limited(3))
                    .build()
                    .map_err(|err| JwtSetupError::Client(err.to_string()))?;
                let jwks = Jwks {
                    source: source.clone(),
                    keys: RwLock::new(Arc::new(Vec::new())),
                    client: Some(client),
                    last_fetch: tokio::sync::Mutex::new(None),
                    floor: settings.jwks_refresh,
                };
                jwks.refresh().await;
                Some(jwks)
            }
        };
        Ok(Some(JwtVerifier {
            settings: settings.clone(),
            secret,
            jwks,
        }))
    }

    /// The algorithms a token may be signed with, for messages.
    async fn accepted(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.secret.is_some() {
            out.push("HS256 (JWT_SECRET)".to_owned());
        }
        if let Some(jwks) = &self.jwks {
            let mut algs: Vec<String> = jwks
                .current()
                .iter()
                .map(|k| format!("{:?}", k.alg))
                .collect();
            algs.sort();
            algs.dedup();
            if algs.is_empty() {
                out.push("the keys of JWT_JWKS (none loaded yet)".to_owned());
            } else {
                out.push(format!("{} (JWT_JWKS)", algs.join(", ")));
            }
        }
        out
    }

    /// Verifies `token` and returns who it speaks for, or why not.
    pub async fn verify(&self, token: &str) -> Result<Principal, JwtRefusal> {
        if !looks_like_jwt(token) {
            return Err(refuse(NEITHER));
        }
        let header = read_header(token)?;
        let alg_name = header.alg.unwrap_or_default();
        if alg_name.is_empty() || alg_name.eq_ignore_ascii_case("none") {
            return Err(refuse(
                "the JWT is unsigned (alg: none); only signed tokens are accepted",
            ));
        }
        let Ok(alg) = alg_name.parse::<Algorithm>() else {
            return Err(refuse(format!(
                "the JWT's algorithm {alg_name:?} is not supported; this host accepts {}",
                self.accepted().await.join(" and ")
            )));
        };
        let keys = self.keys_for(alg, header.kid.as_deref()).await?;
        let validation = self.validation(alg);
        let mut last = None;
        for key in &keys {
            match jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation) {
                Ok(data) => return self.principal(data.claims),
                // Without a key id, the next key of that algorithm may be it.
                Err(err) if *err.kind() == jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    last = Some(err)
                }
                Err(err) => return Err(self.explain(&err)),
            }
        }
        Err(last.map_or_else(
            || refuse("the JWT's signature does not verify with the configured keys"),
            |err| self.explain(&err),
        ))
    }

    /// The keys that may have signed a token with `alg` and `kid`.
    async fn keys_for(
        &self,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<Vec<DecodingKey>, JwtRefusal> {
        if alg.family() == AlgorithmFamily::Hmac {
            return match (&self.secret, alg) {
                (Some(secret), Algorithm::HS256) => Ok(vec![secret.clone()]),
                _ => Err(self.wrong_algorithm(alg).await),
            };
        }
        let Some(jwks) = &self.jwks else {
            return Err(self.wrong_algorithm(alg).await);
        };
        let mut keys = jwks.current();
        if let Some(kid) = kid {
            if !keys.iter().any(|k| k.kid.as_deref() == Some(kid)) && jwks.refresh().await {
                keys = jwks.current();
            }
            return match keys.iter().find(|k| k.kid.as_deref() == Some(kid)) {
                Some(key) if key.alg == alg => Ok(vec![key.key.clone()]),
                Some(key) => Err(refuse(format!(
                    "the JWT says algorithm {alg:?}, but its key {kid:?} in JWT_JWKS is for {:?}",
                    key.alg
                ))),
                None => Err(refuse(format!(
                    "the JWT's key id (kid) {kid:?} is not in JWT_JWKS {}; the token is not from the configured auth server, or its keys changed",
                    jwks.source
                ))),
            };
        }
        let matching: Vec<DecodingKey> = keys
            .iter()
            .filter(|k| k.alg == alg)
            .map(|k| k.key.clone())
            .collect();
        if matching.is_empty() {
            return Err(self.wrong_algorithm(alg).await);
        }
        Ok(matching)
    }

    async fn wrong_algorithm(&self, alg: Algorithm) -> JwtRefusal {
        refuse(format!(
            "the JWT's algorithm {alg:?} is not the algorithm of a configured key; this host accepts {}",
            self.accepted().await.join(" and ")
        ))
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(issuer) = &self.settings.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        if self.settings.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.settings.audience);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    /// The 401 message of a jsonwebtoken error.
    fn explain(&self, err: &jsonwebtoken::errors::Error) -> JwtRefusal {
        use jsonwebtoken::errors::ErrorKind as K;
        match err.kind() {
            K::ExpiredSignature => refuse(format!(
                "the JWT has expired (exp is past, beyond {LEEWAY} s of leeway); get a new token from your auth server"
            )),
            K::ImmatureSignature => refuse(format!(
                "the JWT is not valid yet (nbf is more than {LEEWAY} s ahead); check the clocks of the auth server and this host"
            )),
            K::InvalidSignature => {
                refuse("the JWT's signature does not verify with the configured key")
            }
            K::InvalidIssuer => refuse(format!(
                "the JWT's issuer (iss) is not {:?} (JWT_ISSUER)",
                self.settings.issuer.as_deref().unwrap_or_default()
            )),
            K::InvalidAudience => refuse(format!(
                "the JWT's audience (aud) names none of {} (JWT_AUDIENCE)",
                self.settings.audience.join(", ")
            )),
            K::MissingRequiredClaim(claim) => match claim.as_str() {
                "iss" => refuse(format!(
                    "the JWT has no issuer (iss); JWT_ISSUER requires {:?}",
                    self.settings.issuer.as_deref().unwrap_or_default()
                )),
                "aud" => refuse(format!(
                    "the JWT has no audience (aud); JWT_AUDIENCE requires one of {}",
                    self.settings.audience.join(", ")
                )),
                other => refuse(format!(
                    "the JWT has no `{other}` claim; tokens without an expiry are refused"
                )),
            },
            K::InvalidClaimFormat(claim) => {
                refuse(format!("the JWT's `{claim}` claim has the wrong type"))
            }
            K::InvalidAlgorithm => refuse("the JWT's algorithm does not match the configured key"),
            _ => refuse(format!("the JWT is malformed: {err}")),
        }
    }

    /// The principal of verified claims.
    fn principal(&self, claims: Map<String, Value>) -> Result<Principal, JwtRefusal> {
        let claim = &self.settings.user_claim;
        let user = match claims.get(claim) {
            Some(Value::String(user)) if !user.trim().is_empty() => user.clone(),
            Some(Value::Number(number)) => number.to_string(),
            _ => {
                return Err(refuse(format!(
                    "the JWT has no `{claim}` claim naming the user (JWT_USER_CLAIM); ask your auth server for tokens that carry it"
                )))
            }
        };
        let admin = self
            .settings
            .admin
            .as_ref()
            .is_some_and(|(name, value)| claim_has(claims.get(name), value));
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        Ok(Principal {
            user,
            admin,
            credential: Credential::Jwt {
                issuer: text("iss"),
                subject: text("sub"),
                claims,
            },
            scope: TokenScope::default(),
        })
    }
}

/// Whether a claim is `value`, or an array holding it (Keycloak's roles).
fn claim_has(claim: Option<&Value>, value: &str) -> bool {
    match claim {
        Some(Value::String(text)) => text == value,
        Some(Value::Bool(flag)) => flag.to_string() == value,
        Some(Value::Number(number)) => number.to_string() == value,
        Some(Value::Array(items)) => items.iter().any(|item| claim_has(Some(item), value)),
        _ => false,
    }
}

fn read_header(token: &str) -> Result<RawHeader, JwtRefusal> {
    let malformed = || refuse(NEITHER);
    let encoded = token.split('.').next().ok_or_else(malformed)?;
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine.decode(encoded).map_err(|_| malformed())?;
    serde_json::from_slice(&bytes).map_err(|_| refuse("the JWT's header is not a JSON object"))
}

impl Jwks {
    fn current(&self) -> Arc<Vec<Key>> {
        match self.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Fetches the URL again unless it was fetched within the floor;
    /// whether the keys were replaced. A file is never re-read.
    async fn refresh(&self) -> bool {
        let (Some(client), JwksSource::Url(url)) = (&self.client, &self.source) else {
            return false;
        };
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.floor) {
            return false;
        }
        *last = Some(Instant::now());
        match fetch(client, url)
            .await
            .and_then(|bytes| parse_jwks(&bytes))
        {
            Ok(keys) => {
                tracing::info!(jwks = %url, keys = keys.len(), "JWT keys fetched");
                let keys = Arc::new(keys);
                match self.keys.write() {
                    Ok(mut slot) => *slot = keys,
                    Err(poisoned) => *poisoned.into_inner() = keys,
                }
                true
            }
            Err(reason) => {
                tracing::warn!(jwks = %url, reason = %reason, "cannot fetch the JWT keys (JWT_JWKS); JWTs signed with keys not yet known are refused");
                false
            }
        }
    }
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let mut response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|err| err.to_string())?;
    if !response.status().is_success() {
        return Err(format!("the server answered {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|err| err.to_string())? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(format!("the JWKS is larger than {MAX_JWKS_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The signature keys of a JWKS document. Keys this host cannot use
/// (encryption keys, symmetric keys, unknown types) are skipped with a
/// warning; a set with none usable is an error.
fn parse_jwks(bytes: &[u8]) -> Result<Vec<Key>, String> {
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<Value>,
    }
    let set: Set = serde_json::from_slice(bytes)
        .map_err(|err| format!("it is not a JWKS (a JSON object with `keys`): {err}"))?;
    let mut out = Vec::new();
    for (index, value) in set.keys.into_iter().enumerate() {
        let kid = value.get("kid").and_then(Value::as_str).map(str::to_owned);
        match key_of(value) {
            Ok(key) => out.push(key),
            Err(reason) => {
                tracing::warn!(key = index, kid = ?kid, reason = %reason, "JWKS key skipped")
            }
        }
    }
    if out.is_empty() {
        return Err(
            "it holds no signature key this host can use (RSA, EC P-256/P-384 or Ed25519)"
                .to_owned(),
        );
    }
    Ok(out)
}

fn key_of(value: Value) -> Result<Key, String> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|err| err.to_string())?;
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return Err("not a signature key (use is not sig)".to_owned());
    }
    let inferred = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(params) => match params.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return Err(format!("unsupported curve {:?}", params.curve)),
        },
        AlgorithmParameters::OctetKeyPair(params) if params.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err("a symmetric key does not belong in a JWKS; set JWT_SECRET".to_owned())
        }
        _ => return Err("unsupported key type".to_owned()),
    };
    let alg = match jwk.common.key_algorithm {
        Some(named) => Algorithm::try_from(named).map_err(|err| err.to_string())?,
        None => inferred,
    };
    if alg.family() != inferred.family() {
        return Err(format!("its alg {alg:?} does not fit its key type"));
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|err| err.to_string())?;
    Ok(Key {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_shapes() {
        assert!(looks_like_jwt("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig"));
        assert!(!looks_like_jwt("eht_abc"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a b.c.d"));
    }

    #[test]
    fn admin_claims_match_values_and_arrays() {
        let claims =
            serde_json::json!({"role": "service_role", "roles": ["a", "admin"], "x": true});
        assert!(claim_has(claims.get("role"), "service_role"));
        assert!(!claim_has(claims.get("role"), "service"));
        assert!(claim_has(claims.get("roles"), "admin"));
        assert!(claim_has(claims.get("x"), "true"));
        assert!(!claim_has(claims.get("missing"), "true"));
    }

    #[test]
    fn jwks_keep_signature_keys_only() {
        let set = serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
        ]});
        let keys = parse_jwks(set.to_string().as_bytes()).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].alg, Algorithm::EdDSA);
        assert_eq!(keys[0].kid.as_deref(), Some("ed"));
        assert!(parse_jwks(br#"{"keys": []}"#).is_err());
        assert!(parse_jwks(b"[]").is_err());
    }
}
