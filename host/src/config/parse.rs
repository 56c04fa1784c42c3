//! Parsers of setting values: each takes the raw text and returns the
//! value, or `None` for text the setting does not accept.

use super::{JwksSource, SigningKey};
use std::path::PathBuf;
use std::time::Duration;

/// Hides the password of `scheme://user:password@host/...`.
pub(super) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

/// A whole number, allowing `_` between digits (`10_000_000`).
pub(super) fn whole_number(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty()
        || text.starts_with('_')
        || text.ends_with('_')
        || !text.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    text.replace('_', "").parse().ok()
}

pub(super) fn in_range(text: &str, min: u64, max: u64) -> Option<u64> {
    whole_number(text).filter(|n| (min..=max).contains(n))
}

pub(super) fn non_empty_path(text: &str) -> Option<PathBuf> {
    let text = text.trim();
    (!text.is_empty() && !text.contains('\0')).then(|| PathBuf::from(text))
}

pub(super) fn database_url(text: &str) -> Option<String> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let ok = (lower.starts_with("sqlite:") && text.len() > "sqlite:".len())
        || (lower.starts_with("postgres://") && text.len() > "postgres://".len())
        || (lower.starts_with("postgresql://") && text.len() > "postgresql://".len());
    (ok && !text.chars().any(char::is_control)).then(|| text.to_owned())
}

pub(super) fn on_off(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Some(true),
        "off" | "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

pub(super) fn duration(text: &str) -> Option<Duration> {
    humantime::parse_duration(text.trim())
        .ok()
        .filter(|d| *d >= Duration::from_secs(1) && *d <= Duration::from_secs(7 * 86_400))
}

/// A duration from `min` to one day: humantime text (`10s`, `5m`) or a
/// bare number of seconds.
pub(super) fn timeout(text: &str, min: Duration) -> Option<Duration> {
    let text = text.trim();
    whole_number(text)
        .map(Duration::from_secs)
        .or_else(|| humantime::parse_duration(text).ok())
        .filter(|d| *d >= min && *d <= Duration::from_secs(86_400))
}

/// `WEBHOOK_BACKOFF`: like [`timeout`] but from 10ms to an hour, so tests
/// can make retries quick.
pub(super) fn webhook_backoff(text: &str) -> Option<Duration> {
    let text = text.trim();
    whole_number(text)
        .map(Duration::from_secs)
        .or_else(|| humantime::parse_duration(text).ok())
        .filter(|d| *d >= Duration::from_millis(10) && *d <= Duration::from_secs(3600))
}

/// `http(s)://host[:port][/prefix]`, kept without a trailing slash.
pub(super) fn public_url(text: &str) -> Option<String> {
    let text = text.trim().trim_end_matches('/');
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))?;
    let host = rest.split('/').next().unwrap_or_default();
    let ok = !host.is_empty()
        && !host.contains('@')
        && !rest.contains(['?', '#'])
        && !rest.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then(|| text.to_owned())
}

/// Whether an http URL points at this machine (the only place a JWKS may be
/// fetched without TLS).
pub(super) fn is_loopback_url(rest: &str) -> bool {
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub(super) fn jwks_source(text: &str) -> Option<JwksSource> {
    let text = text.trim();
    if text.is_empty() || text.chars().any(char::is_control) {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return (text.len() > "https://".len()).then(|| JwksSource::Url(text.to_owned()));
    }
    if lower.starts_with("http://") {
        let rest = &text["http://".len()..];
        return is_loopback_url(rest).then(|| JwksSource::Url(text.to_owned()));
    }
    if lower.contains("://") {
        return None;
    }
    Some(JwksSource::File(PathBuf::from(text)))
}

pub(super) fn plain_text(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty() && !text.chars().any(char::is_control)).then(|| text.to_owned())
}

pub(super) fn claim_name(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '='))
    .then(|| text.to_owned())
}

pub(super) fn audiences(text: &str) -> Option<Vec<String>> {
    let list: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    (!list.is_empty() && !list.iter().any(|a| a.chars().any(char::is_control))).then_some(list)
}

pub(super) fn admin_claim(text: &str) -> Option<(String, String)> {
    let (claim, value) = text.split_once('=')?;
    let claim = claim_name(claim)?;
    let value = plain_text(value)?;
    Some((claim, value))
}

/// A secret whose rules the layer using it checks (`WEBHOOK_SECRET`):
/// any text without spaces or control characters.
pub(super) fn secret(text: &str) -> Option<SigningKey> {
    let text = text.trim();
    (!text.is_empty() && !text.chars().any(|c| c.is_whitespace() || c.is_control()))
        .then(|| SigningKey(text.to_owned()))
}

pub(super) fn signing_key(text: &str) -> Option<SigningKey> {
    let text = text.trim();
    (text.chars().count() >= 32 && !text.chars().any(|c| c.is_whitespace() || c.is_control()))
        .then(|| SigningKey(text.to_owned()))
}
