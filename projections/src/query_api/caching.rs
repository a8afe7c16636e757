//! Cache validators and lifetimes, so the Telegram WebView revalidates instead of refetching: an
//! ETag over the body with If-None-Match → 304, and Cache-Control per endpoint.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Private data that changes with every write: always revalidate (cheap with the ETag).
pub(crate) const PRIVATE_REVALIDATE: &str = "private, no-cache";
/// The leaderboard's top as anyone sees it: shared caches may keep it a few seconds.
pub(crate) const PUBLIC_BRIEF: &str = "public, max-age=5, stale-while-revalidate=10";
/// The leaderboard with the caller's own rank: the same lifetime, but only for that caller.
pub(crate) const PRIVATE_BRIEF: &str = "private, max-age=5";
/// Someone's public card: changes rarely.
pub(crate) const PRIVATE_CARD: &str = "private, max-age=30";

/// A JSON body with its ETag and Cache-Control; 304 without a body when the request's
/// If-None-Match already names this ETag.
pub(crate) fn cached_json(
    request: &HeaderMap,
    body: String,
    cache_control: &'static str,
) -> Response {
    let etag = etag_of(body.as_bytes());
    tagged_json(request, body, &etag, cache_control)
}

/// [`cached_json`] for a body whose ETag ([`etag_of`]) is already known.
pub(crate) fn tagged_json(
    request: &HeaderMap,
    body: String,
    etag: &str,
    cache_control: &'static str,
) -> Response {
    let headers = [
        (
            ETAG,
            HeaderValue::from_str(etag).expect("hex ETag is a valid header"),
        ),
        (CACHE_CONTROL, HeaderValue::from_static(cache_control)),
        (
            VARY,
            HeaderValue::from_static("Authorization, Accept-Encoding"),
        ),
    ];
    if matches_etag(request, etag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let mut response = (headers, body).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A strong ETag: the body's 128-bit XXH3, quoted. Not a security boundary (a client can only
/// fool its own cache), so a fast hash is the right one.
pub(crate) fn etag_of(body: &[u8]) -> String {
    format!("\"{:032x}\"", xxhash_rust::xxh3::xxh3_128(body))
}

/// If-None-Match uses weak comparison (RFC 9110 §13.1.2): `W/` prefixes are ignored, `*`
/// matches anything, and the header may list several tags.
fn matches_etag(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_if_none_match(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_etag_names_the_body() {
        assert_eq!(etag_of(b"{}"), etag_of(b"{}"));
        assert_ne!(etag_of(b"{\"a\":1}"), etag_of(b"{\"a\":2}"));
        assert!(etag_of(b"").starts_with('"') && etag_of(b"").len() == 34);
    }

    #[test]
    fn a_matching_if_none_match_gives_304_without_a_body() {
        let body = "{\"balance\":5}".to_owned();
        let etag = etag_of(body.as_bytes());
        for header in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"x\", {etag}"),
            "*".into(),
        ] {
            let response = cached_json(
                &with_if_none_match(&header),
                body.clone(),
                PRIVATE_REVALIDATE,
            );
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{header}");
            assert_eq!(response.headers()[ETAG], etag.as_str());
        }
        let response = cached_json(&with_if_none_match("\"other\""), body, PRIVATE_REVALIDATE);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CACHE_CONTROL], PRIVATE_REVALIDATE);
    }
}
