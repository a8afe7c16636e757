//! Prometheus metrics of the processors, per projection and partition, updated once per batch.

use prometheus::core::Collector;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// `metric`, registered in `registry` (once: names are unique per process).
pub fn registered<M: Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

#[derive(Clone)]
pub struct ProcessorMetrics {
    pub events_applied: IntCounterVec,
    /// Events parked behind their user's dead-lettered event, the dead letters included.
    pub events_parked: IntCounterVec,
    pub applied_offset: IntGaugeVec,
    pub consumer_lag: IntGaugeVec,
    /// 1 while a partition cannot advance (see `stalls`).
    pub partition_stalled: IntGaugeVec,
    pub batch_size: HistogramVec,
    pub apply_seconds: HistogramVec,
    pub dead_letters: IntCounterVec,
    pub retries: IntCounterVec,
    pub fenced: IntCounterVec,
    /// What derivers decided per event (e.g. credited, self_referral, unknown_referrer).
    pub derived_outcomes: IntCounterVec,
    pub derived_transactions: IntCounterVec,
}

impl ProcessorMetrics {
    pub fn new(registry: &Registry) -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            registered(
                registry,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let gauge = |name: &str, help: &str| {
            registered(
                registry,
                IntGaugeVec::new(Opts::new(name, help), &["projection", "partition"])
                    .expect("valid metric"),
            )
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            registered(
                registry,
                HistogramVec::new(
                    HistogramOpts::new(name, help).buckets(buckets),
                    &["projection"],
                )
                .expect("valid metric"),
            )
        };
        ProcessorMetrics {
            events_applied: counter(
                "processor_events_applied_total",
                "Events whose effects were written, per partition.",
                &["projection", "partition"],
            ),
            events_parked: counter(
                "processor_events_parked_total",
                "Events parked, per partition: dead-lettered events and the later events of their users, waiting for `surge dlq`.",
                &["projection", "partition"],
            ),
            applied_offset: gauge(
                "processor_applied_offset",
                "Next offset to apply, per partition (the stored position).",
            ),
            consumer_lag: gauge(
                "processor_consumer_lag",
                "Messages behind the partition's high watermark.",
            ),
            partition_stalled: gauge(
                "processor_partition_stalled",
                "1 while the partition cannot advance: its stored position is outside the topic, or its batch kept failing past the stall bound.",
            ),
            batch_size: histogram(
                "processor_batch_size",
                "Events per transaction applied: one partition's batch, or a poll's batches applied together.",
                vec![1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0],
            ),
            apply_seconds: histogram(
                "processor_apply_seconds",
                "Time to apply one transaction's batches atomically.",
                vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            dead_letters: counter(
                "processor_dead_letters_total",
                "Events sent to the dead-letter topic, by reason.",
                &["projection", "reason"],
            ),
            retries: counter(
                "processor_retries_total",
                "Batch retries after transient failures.",
                &["projection"],
            ),
            derived_outcomes: counter(
                "processor_derived_outcomes_total",
                "Decisions of derivers, by outcome.",
                &["processor", "outcome"],
            ),
            derived_transactions: counter(
                "processor_derived_transactions_total",
                "Kafka transactions of derivers in transactional mode, by outcome.",
                &["processor", "outcome"],
            ),
            fenced: counter(
                "processor_fenced_total",
                "Batches refused because another processor owns the partition.",
                &["projection"],
            ),
        }
    }
}
