//! Prometheus metrics of the write API, in a registry per app instance (tests run many apps in
//! one process). Counters are updated once per request, not per event, on the hot path.

use std::sync::Arc;

use prometheus::{Encoder, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};
use surge_http::RouteMetrics;

pub struct Metrics {
    registry: Registry,
    /// Requests and latency per route (`write_api_requests_total`,
    /// `write_api_request_duration_seconds`).
    pub routes: Arc<RouteMetrics>,
    pub events_produced: IntCounterVec,
    pub producer_queue_depth: IntGauge,
    /// Write requests being worked on now (the load-shedding bound applies to these).
    pub writes_in_flight: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let routes = Arc::new(
            RouteMetrics::register(&registry, "write_api").expect("route metrics register once"),
        );
        let events_produced = IntCounterVec::new(
            Opts::new(
                "write_api_events_produced_total",
                "Events acknowledged by the broker, by type.",
            ),
            &["event_type"],
        )
        .expect("valid metric");
        let producer_queue_depth = IntGauge::new(
            "write_api_producer_queue_depth",
            "Events queued or in flight to the broker.",
        )
        .expect("valid metric");
        let writes_in_flight = IntGauge::new(
            "write_api_requests_in_flight",
            "Write requests being processed now.",
        )
        .expect("valid metric");
        for collector in [
            Box::new(events_produced.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(producer_queue_depth.clone()),
            Box::new(writes_in_flight.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric registered once");
        }
        Metrics {
            registry,
            routes,
            events_produced,
            producer_queue_depth,
            writes_in_flight,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
