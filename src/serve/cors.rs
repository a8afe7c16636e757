//! Cross-origin access for the public APIs: a Mini App is served from its own origin (a CDN,
//! GitHub Pages, `surge dev`'s demo) and calls the write and query APIs from the browser, so
//! they must answer CORS preflights for exactly the origins configured, and let the page read the
//! headers it needs (the consistency token, Retry-After, the ETag).

use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// `router` answering cross-origin requests from `origins` (none: the router unchanged, and
/// browsers refuse cross-origin reads as they do by default).
pub fn allow_origins(router: Router, origins: &[String]) -> anyhow::Result<Router> {
    if origins.is_empty() {
        return Ok(router);
    }
    let origins = origins
        .iter()
        .map(|origin| {
            HeaderValue::from_str(origin.trim_end_matches('/'))
                .with_context(|| format!("SURGE_CORS_ORIGINS: {origin:?} is not a valid origin"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let layer = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PATCH])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-consistency-token"),
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("traceparent"),
        ])
        .expose_headers([
            header::ETAG,
            header::RETRY_AFTER,
            HeaderName::from_static("x-consistency-token"),
            HeaderName::from_static("idempotent-replayed"),
        ])
        .max_age(Duration::from_secs(600));
    Ok(router.layer(layer))
}
