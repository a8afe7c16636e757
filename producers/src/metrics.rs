//! Prometheus metrics of the write API, in a registry per app instance (tests run many apps in
//! one process). Counters are updated once per request, not per event, on the hot path.

use std::sync::Arc;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
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
    /// Telegram webhook updates by kind (`pre_checkout_query`, `successful_payment`,
    /// `refunded_payment`, `other`) and outcome (`ok`, `refused`, `duplicate`, `failed`,
    /// `unmatched`: a payment whose payload is not ours, to be looked at).
    pub telegram_updates: IntCounterVec,
    /// From a pre-checkout query's arrival to Telegram's acknowledgement of the answer, by
    /// verdict (Telegram cancels the payment past 10 s).
    pub pre_checkout_seconds: HistogramVec,
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
        let telegram_updates = IntCounterVec::new(
            Opts::new(
                "write_api_telegram_updates_total",
                "Telegram webhook updates, by kind and outcome.",
            ),
            &["kind", "outcome"],
        )
        .expect("valid metric");
        let pre_checkout_seconds = HistogramVec::new(
            HistogramOpts::new(
                "write_api_pre_checkout_answer_seconds",
                "From a pre-checkout query's arrival to the Bot API's acknowledgement of the answer.",
            )
            .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["verdict"],
        )
        .expect("valid metric");
        for collector in [
            Box::new(events_produced.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(telegram_updates.clone()),
            Box::new(pre_checkout_seconds.clone()),
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
            telegram_updates,
            pre_checkout_seconds,
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
