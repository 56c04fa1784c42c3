//! `GET /v1/exports/{id}/download` and `POST /v1/exports/{id}/link`.
//!
//! Downloads stream the stored file as the body (memory stays flat whatever
//! the size) with `Content-Type` (the formatter's MIME type; a compressed
//! file is served as what it is, with no `Content-Encoding`),
//! `Content-Disposition` (the sanitised name), `ETag` (`"<sha256>"`),
//! `Accept-Ranges`. `If-None-Match` answers 304; one `Range` (`bytes=a-b`,
//! `bytes=a-`, `bytes=-n`) answers 206 read from that offset
//! ([`Storage::open_range`](crate::storage::Storage::open_range)); several
//! satisfiable ranges are answered with the whole file (RFC 9110 allows it);
//! ranges none of which overlaps the file answer 416. `If-Range` with
//! another ETag sends the whole file. Every 200 and 206 counts a download.
//!
//! With `DOWNLOAD_REDIRECT=on` (S3 storage only) a download of a completed
//! export answers `302 Found` with a presigned storage URL
//! ([`Storage::download_url`](crate::storage::Storage::download_url), valid
//! [`REDIRECT_TTL`]) instead of the bytes: the client fetches the file from
//! the bucket, sending its `Range` there, and the bucket answers with the
//! same `Content-Disposition` and `Content-Type`. The redirect counts the
//! download.

use super::export_id;
use crate::records::{ExportId, ExportRecord, Scope, Status};
use crate::server::auth::{authenticate, Caller, LinkCheck};
use crate::server::error::ApiError;
use crate::server::AppState;
use crate::storage::{DownloadHeaders, StorageError, StorageKey};
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, TimeDelta, Utc};
use headers::{ETag, HeaderMapExt, IfNoneMatch, IfRange};
use http_range_header::RangeUnsatisfiableError;
use serde::Deserialize;
use std::sync::Arc;

/// The longest link lifetime (7 days).
pub const MAX_LINK_TTL: u64 = 7 * 86_400;
/// The link lifetime when the body gives none (1 hour).
pub const DEFAULT_LINK_TTL: u64 = 3600;
/// How long a presigned storage URL of a redirected download stays valid:
/// long enough to follow the redirect, short enough that a leaked one is
/// soon useless.
pub const REDIRECT_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// The signed-link part of a download URL.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkQuery {
    /// Signed links: the expiry, Unix seconds.
    expires: Option<i64>,
    /// Signed links: HMAC-SHA256 (hex) of `<id>|<expires>`.
    sig: Option<String>,
}

/// Who may read the export: the signed link, else the bearer token.
async fn download_scope(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    link: &LinkQuery,
) -> Result<Scope, ApiError> {
    match (&link.sig, link.expires) {
        (Some(sig), Some(expires)) => {
            match state.signer.verify(id, expires, sig, state.service.now()) {
                LinkCheck::Valid => Ok(Scope::Admin),
                LinkCheck::Expired => Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "link_expired",
                    "this download link has expired; ask for a new one",
                )),
                LinkCheck::Forged => Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "link_invalid",
                    "this download link is not valid",
                )),
            }
        }
        (Some(_), None) | (None, Some(_)) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "link_invalid",
            "a download link needs both `expires` and `sig`",
        )),
        (None, None) => Ok(authenticate(state, headers).await?.scope()),
    }
}

/// A byte range to send: offset and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeAsk {
    /// No usable Range: the whole file.
    Whole,
    /// One satisfiable range.
    Part { offset: u64, len: u64 },
    /// A range past the end (416).
    Unsatisfiable,
}

/// Reads a `Range` header against a file of `size` bytes, by RFC 9110's
/// rules as http-range-header applies them: a header it cannot read (another
/// unit, bad syntax, a reversed range) is ignored, and so are several
/// satisfiable ranges (no multipart answers), both answered with the whole
/// file; ranges of which none overlaps the file are unsatisfiable. Of
/// several ranges where only one overlaps the file, that one is sent.
pub(crate) fn parse_range(value: &str, size: u64) -> RangeAsk {
    let Ok(parsed) = http_range_header::parse_range_header(value.trim()) else {
        return RangeAsk::Whole;
    };
    match parsed.validate(size) {
        Ok(ranges) => match ranges.as_slice() {
            [one] => RangeAsk::Part {
                offset: *one.start(),
                len: one.end() - one.start() + 1,
            },
            // Several ranges, or a suffix of an empty file (nothing to cut).
            _ => RangeAsk::Whole,
        },
        Err(RangeUnsatisfiableError::Unsatisfiable) => RangeAsk::Unsatisfiable,
        // Invalid, or rejected as abusive (too many, overlapping).
        Err(_) => RangeAsk::Whole,
    }
}

/// Whether the client's copy is current: its `If-None-Match` is `*` or names
/// `etag`, weakly compared (`W/"x"` matches `"x"`), on any of its lines.
fn client_has(headers: &HeaderMap, etag: &ETag) -> bool {
    headers
        .typed_get::<IfNoneMatch>()
        .is_some_and(|condition| !condition.precondition_passes(etag))
}

/// Whether a `Range` may be honoured: no `If-Range`, or one naming `etag`
/// by strong comparison. A date, which downloads give nothing to compare
/// with (no `Last-Modified`), or an unreadable value sends the whole file.
fn range_allowed(headers: &HeaderMap, etag: Option<&ETag>) -> bool {
    match headers.typed_try_get::<IfRange>() {
        Ok(None) => true,
        Ok(Some(condition)) => !condition.is_modified(etag, None),
        Err(_) => false,
    }
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn insert(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// `GET /v1/exports/{id}/download`.
#[utoipa::path(get, path = "/v1/exports/{id}/download", tag = "downloads", operation_id = "downloadExport",
    params(("id" = String, Path, description = "Export id"), LinkQuery,
        ("Range" = Option<String>, Header, description = "One range: bytes=a-b, bytes=a- or bytes=-n"),
        ("If-None-Match" = Option<String>, Header, description = "ETags the client has"),
        ("If-Range" = Option<String>, Header, description = "Send the range only if the ETag matches")),
    responses(
        (status = 200, description = "The file, streamed", content_type = "application/octet-stream"),
        (status = 206, description = "One range of the file (Content-Range)", content_type = "application/octet-stream"),
        (status = 302, description = "DOWNLOAD_REDIRECT=on: fetch the file from the presigned storage URL in Location"),
        (status = 304, description = "The client's copy is current"),
        (status = 401, description = "No valid token (and no signed link)", body = crate::server::error::ErrorBody),
        (status = 403, description = "A forged or expired signed link", body = crate::server::error::ErrorBody),
        (status = 404, description = "No such export, or not the caller's", body = crate::server::error::ErrorBody),
        (status = 409, description = "Not completed (yet), or expired", body = crate::server::error::ErrorBody),
        (status = 416, description = "The range lies past the end", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = []), ()))]
pub async fn download(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    link: Result<Query<LinkQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(link) = link?;
    let scope = download_scope(&state, &headers, &id, &link).await?;
    let id = export_id(&id)?;
    let record: ExportRecord = state.service.get(&scope, &id).await?;

    let etag = record
        .sha256
        .as_deref()
        .filter(|_| record.status == Status::Completed)
        .map(|sha| format!("\"{sha}\""));
    let entity_tag = etag.as_deref().and_then(|tag| tag.parse::<ETag>().ok());
    if let (Some(etag), Some(tag)) = (&etag, &entity_tag) {
        if client_has(&headers, tag) {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            insert(response.headers_mut(), header::ETAG, etag);
            return Ok(response);
        }
    }

    if record.status == Status::Completed && state.service.redirects_downloads() {
        return redirect(&state, &scope, &id).await;
    }

    let size = record
        .size_bytes
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0);
    let ask = match header_text(&headers, header::RANGE) {
        Some(value)
            if record.status == Status::Completed
                && range_allowed(&headers, entity_tag.as_ref()) =>
        {
            parse_range(value, size)
        }
        _ => RangeAsk::Whole,
    };
    let range = match ask {
        RangeAsk::Whole => None,
        RangeAsk::Part { offset, len } => Some((offset, len)),
        RangeAsk::Unsatisfiable => {
            let mut response = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the file has {size} bytes"),
            )
            .into_response();
            insert(
                response.headers_mut(),
                header::CONTENT_RANGE,
                &format!("bytes */{size}"),
            );
            return Ok(response);
        }
    };

    let opened = state
        .service
        .record_download_range(&scope, &id, range)
        .await?;
    state.metrics.download();
    let length = opened.download.size;
    let mut response = Response::new(Body::from_stream(opened.download.stream));
    let out = response.headers_mut();
    insert(out, header::CONTENT_TYPE, &opened.mime_type);
    insert(
        out,
        header::CONTENT_DISPOSITION,
        &opened.content_disposition,
    );
    insert(out, header::CONTENT_LENGTH, &length.to_string());
    insert(out, header::ACCEPT_RANGES, "bytes");
    insert(out, header::CACHE_CONTROL, "private, no-cache");
    if let Some(etag) = &etag {
        insert(out, header::ETAG, etag);
    }
    if let Some((offset, len)) = range {
        let end = offset + len.saturating_sub(1);
        insert(
            out,
            header::CONTENT_RANGE,
            &format!("bytes {offset}-{end}/{size}"),
        );
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    tracing::info!(export_id = %id, bytes = length, partial = range.is_some(), "download");
    Ok(response)
}

/// A download handed off to the storage: `302 Found` to a presigned URL.
async fn redirect(state: &AppState, scope: &Scope, id: &ExportId) -> Result<Response, ApiError> {
    // An empty range checks that the file is there (one HEAD) and counts the
    // download through the same path as a streamed one.
    let opened = state
        .service
        .record_download_range(scope, id, Some((0, 0)))
        .await?;
    state.metrics.download();
    let key = opened
        .record
        .storage_key
        .as_deref()
        .ok_or_else(|| ApiError::internal("a completed export has no stored file"))?;
    let key = StorageKey::parse(key).map_err(StorageError::from)?;
    let headers = DownloadHeaders {
        content_disposition: opened.content_disposition.clone(),
        content_type: opened.mime_type.clone(),
    };
    let url = state
        .service
        .presign_download(&key, REDIRECT_TTL, &headers)
        .await?
        .ok_or_else(|| ApiError::internal("the storage does not hand out download URLs"))?;
    let mut response = StatusCode::FOUND.into_response();
    let out = response.headers_mut();
    insert(out, header::LOCATION, &url);
    insert(out, header::CACHE_CONTROL, "private, no-store");
    tracing::info!(export_id = %id, "download redirected to storage");
    Ok(response)
}

/// `POST /v1/exports/{id}/link` body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// Seconds the link stays valid.
    ttl: Option<u64>,
}

/// `POST /v1/exports/{id}/link`: a signed download URL usable without a
/// token until it expires. No body means the default lifetime; a body must
/// be JSON (`Content-Type: application/json`, else 415), so a `ttl` sent
/// as a form is never silently ignored. The URL starts with `PUBLIC_URL`
/// (else `http://` and `LISTEN`), never with the request's `Host` header,
/// which the client chooses.
#[utoipa::path(post, path = "/v1/exports/{id}/link", tag = "downloads", operation_id = "createDownloadLink",
    params(("id" = String, Path, description = "Export id")),
    request_body(content = Option<LinkRequest>, description = "`ttl` in seconds, 1 to 604800 (default 3600)"),
    responses(
        (status = 200, description = "`{url, expires_at}`", body = LinkAnswer),
        (status = 400, description = "Bad ttl", body = crate::server::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::server::error::ErrorBody),
        (status = 404, description = "No such export, or not the caller's", body = crate::server::error::ErrorBody),
        (status = 415, description = "A body without `Content-Type: application/json`", body = crate::server::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn link(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = export_id(&id)?;
    // The export must be the caller's (404 otherwise, like a missing one).
    state.service.get(&caller.scope(), &id).await?;
    let request = link_request(&headers, &body)?;
    let ttl = request.ttl.unwrap_or(DEFAULT_LINK_TTL);
    if ttl == 0 || ttl > MAX_LINK_TTL {
        return Err(ApiError::bad_request(format!(
            "ttl={ttl}: expected seconds from 1 to {MAX_LINK_TTL} (7 days)"
        )));
    }
    let now = state.service.now();
    let expires_at: DateTime<Utc> = now
        .checked_add_signed(TimeDelta::seconds(i64::try_from(ttl).unwrap_or(i64::MAX)))
        .ok_or_else(|| ApiError::bad_request("ttl is too long"))?;
    let expires = expires_at.timestamp();
    let sig = state.signer.sign(id.as_str(), expires);
    let url = format!(
        "{}/v1/exports/{id}/download?expires={expires}&sig={sig}",
        state.public_url
    );
    let expires_at = DateTime::<Utc>::from_timestamp(expires, 0).unwrap_or(expires_at);
    Ok(Json(LinkAnswer { url, expires_at }).into_response())
}

/// The link request of a body: none (or only whitespace) is the default;
/// anything else must be declared JSON and parse as a [`LinkRequest`].
fn link_request(headers: &HeaderMap, body: &[u8]) -> Result<LinkRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(LinkRequest::default());
    }
    let json = header_text(headers, header::CONTENT_TYPE).is_some_and(is_json_type);
    if !json {
        return Err(ApiError::unsupported_media_type(
            "the link request has a body but no `Content-Type: application/json`; \
             send `{\"ttl\": SECONDS}` as JSON, or no body for the default lifetime",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|err| ApiError::bad_request(format!("the request body: {err}")))
}

/// `application/json` or `application/<something>+json`, any parameters.
fn is_json_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A signed download link.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LinkAnswer {
    /// The download URL; works without a token until `expires_at`.
    pub url: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            parse_range("bytes=0-9", 100),
            RangeAsk::Part { offset: 0, len: 10 }
        );
        assert_eq!(
            parse_range("bytes=90-", 100),
            RangeAsk::Part {
                offset: 90,
                len: 10
            }
        );
        assert_eq!(
            parse_range("bytes=-5", 100),
            RangeAsk::Part { offset: 95, len: 5 }
        );
        assert_eq!(
            parse_range("bytes=-500", 100),
            RangeAsk::Part {
                offset: 0,
                len: 100
            }
        );
        assert_eq!(
            parse_range("bytes=50-500", 100),
            RangeAsk::Part {
                offset: 50,
                len: 50
            }
        );
        assert_eq!(parse_range("bytes=100-", 100), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeAsk::Whole);
        assert_eq!(parse_range("bytes=9-1", 100), RangeAsk::Whole);
        assert_eq!(parse_range("items=0-1", 100), RangeAsk::Whole);
    }

    #[test]
    fn range_edge_cases_follow_rfc_9110() {
        let part = |offset, len| RangeAsk::Part { offset, len };
        // The unit is case-insensitive; whitespace around the value is not
        // part of it.
        assert_eq!(parse_range("Bytes=0-9", 100), part(0, 10));
        assert_eq!(parse_range(" bytes=0-9 ", 100), part(0, 10));
        // Only one of several ranges overlaps the file: that one is sent.
        assert_eq!(parse_range("bytes=500-600, 90-", 100), part(90, 10));
        // None of them does, or a suffix of nothing: 416.
        assert_eq!(
            parse_range("bytes=500-600,700-", 100),
            RangeAsk::Unsatisfiable
        );
        assert_eq!(parse_range("bytes=-0", 100), RangeAsk::Unsatisfiable);
        // Several that overlap it, overlapping or not: the whole file.
        assert_eq!(parse_range("bytes=0-9,-5", 100), RangeAsk::Whole);
        assert_eq!(parse_range("bytes=0-50,10-60,20-70", 100), RangeAsk::Whole);
        // An empty file: a start is unsatisfiable; a suffix takes all of
        // nothing, the whole (empty) file.
        assert_eq!(parse_range("bytes=0-", 0), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-0", 0), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range("bytes=-5", 0), RangeAsk::Whole);
        // Positions past u64 mean "to the end"; junk is ignored.
        assert_eq!(
            parse_range("bytes=10-99999999999999999999999", 100),
            part(10, 90)
        );
        for junk in [
            "bytes=",
            "bytes=abc",
            "bytes=1-2-3",
            "bytes=+1-2",
            "bytes=-1-2",
            "0-9",
        ] {
            assert_eq!(parse_range(junk, 100), RangeAsk::Whole, "{junk:?}");
        }
    }

    #[test]
    fn link_bodies_must_be_declared_json() {
        let mut headers = HeaderMap::new();
        assert_eq!(link_request(&headers, b"").unwrap().ttl, None);
        assert_eq!(link_request(&headers, b" \n").unwrap().ttl, None);
        let err = link_request(&headers, br#"{"ttl": 60}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let err = link_request(&headers, b"ttl=60").unwrap_err();
        assert_eq!(err.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert_eq!(
            link_request(&headers, br#"{"ttl": 60}"#).unwrap().ttl,
            Some(60)
        );
        let err = link_request(&headers, br#"{"ttl": "x"}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(is_json_type("application/vnd.api+json"));
        assert!(!is_json_type("text/json-ish"));
    }

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn if_none_match_compares_weakly_and_reads_lists() {
        let etag: ETag = "\"abc\"".parse().unwrap();
        let has = |value| client_has(&headers(&[(header::IF_NONE_MATCH, value)]), &etag);
        assert!(has("\"abc\""));
        assert!(has("W/\"abc\""), "weak comparison");
        assert!(has("\"x\", W/\"abc\""));
        assert!(has("\"x\",\"abc\""));
        assert!(has("*"));
        assert!(!has("\"abd\""));
        assert!(!has("abc"), "an unquoted tag is no tag");
        assert!(!has("w/\"abc\""), "the W/ is case-sensitive");
        assert!(!has(""));
        assert!(!client_has(&HeaderMap::new(), &etag));
        // A list split over several header lines.
        let two_lines = headers(&[
            (header::IF_NONE_MATCH, "\"x\""),
            (header::IF_NONE_MATCH, "\"abc\""),
        ]);
        assert!(client_has(&two_lines, &etag));
    }

    #[test]
    fn if_range_needs_the_same_strong_etag() {
        let etag: ETag = "\"abc\"".parse().unwrap();
        let allowed = |value| range_allowed(&headers(&[(header::IF_RANGE, value)]), Some(&etag));
        assert!(range_allowed(&HeaderMap::new(), Some(&etag)));
        assert!(range_allowed(&HeaderMap::new(), None));
        assert!(allowed("\"abc\""));
        assert!(!allowed("W/\"abc\""), "strong comparison");
        assert!(!allowed("\"abd\""));
        assert!(
            !allowed("Sat, 29 Oct 1994 19:43:31 GMT"),
            "no date to compare"
        );
        assert!(!allowed("not-a-tag"));
        let unfinished = headers(&[(header::IF_RANGE, "\"abc\"")]);
        assert!(!range_allowed(&unfinished, None));
    }
}
