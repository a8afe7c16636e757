//! Requests, refusals (by error code) and latency per matched route (the route template, never the raw path, so label
//! cardinality stays bounded).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use crate::ErrorCode;

/// Latency buckets from 0.25 ms: reads served from Redis take well under a millisecond.
const BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

pub struct RouteMetrics {
    requests: IntCounterVec,
    /// Error answers by route and code: how refusals are seen, since they are not logged one
    /// by one.
    refusals: IntCounterVec,
    latency: HistogramVec,
}

impl RouteMetrics {
    /// Registers `<namespace>_requests_total`, `<namespace>_refusals_total` and
    /// `<namespace>_request_duration_seconds`.
    pub fn register(registry: &Registry, namespace: &str) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                format!("{namespace}_requests_total"),
                "HTTP requests by route and status.",
            ),
            &["route", "status"],
        )?;
        let refusals = IntCounterVec::new(
            Opts::new(
                format!("{namespace}_refusals_total"),
                "Error answers by route and error code.",
            ),
            &["route", "code"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                format!("{namespace}_request_duration_seconds"),
                "Request latency by route.",
            )
            .buckets(BUCKETS.to_vec()),
            &["route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(refusals.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(RouteMetrics {
            requests,
            refusals,
            latency,
        })
    }
}

/// Middleware (`axum::middleware::from_fn_with_state`) recording every request.
pub async fn record_route_metrics(
    State(metrics): State<Arc<RouteMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .latency
        .with_label_values(&[&route])
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .with_label_values(&[&route, response.status().as_str()])
        .inc();
    if let Some(ErrorCode(code)) = response.extensions().get::<ErrorCode>() {
        metrics
            .refusals
            .with_label_values(&[route.as_str(), code])
            .inc();
    }
    response
}
