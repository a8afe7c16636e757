//! Settings of one processor (a projection version's consumer).

use std::time::Duration;

use crate::emit::Delivery;

#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    pub brokers: String,
    /// The topic of user events.
    pub topic: String,
    /// Most events taken into one batch.
    pub batch_max: usize,
    /// Longest wait to fill a batch once its first event arrived.
    pub batch_wait: Duration,
    /// Consumer-group session timeout: how long a silent instance keeps its partitions.
    pub session_timeout: Duration,
    /// Longest gap between polls before the group moves this instance's partitions away (also
    /// the rebalance timeout: how long a rebalance waits for members to rejoin).
    pub max_poll_interval: Duration,
    /// Longest the broker may hold a fetch that has less than `fetch_min_bytes`
    /// (`fetch.wait.max.ms`): the most a quiet partition's next event waits to be fetched, and
    /// so part of read-your-writes.
    pub fetch_wait: Duration,
    /// Data the broker gathers for a fetch before it answers, unless `fetch_wait` passes first
    /// (`fetch.min.bytes`). Every projection is a consumer of the whole topic: answered at the
    /// first byte, each fetches again for every few events, and under load those fetches
    /// crowd the broker the write path waits on.
    pub fetch_min_bytes: u32,
    /// Most fetched events a consumer holds ahead of its batches (`queued.min.messages`, which
    /// librdkafka applies to the consumer's one queue). Each projection's consumer prefetches on
    /// its own, and a queued event costs about 500 bytes (its op and its share of the fetch's
    /// buffer) against 100 of payload, so librdkafka's byte cap (`queued.max.messages.kbytes`)
    /// never binds: at librdkafka's 100,000 nine consumers held about 800 MB during a catch-up.
    pub prefetch_messages: u32,
    /// Backoff between retries of a batch after a transient failure: doubles from min to max.
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// How long a partition's batch may keep failing transiently before the partition is marked
    /// stalled and set aside (paused, retried later from its stored position) so the
    /// processor's other partitions keep flowing.
    pub stall_after: Duration,
    /// How derivers emit their events: Kafka transactions, idempotent appends, or whichever
    /// the broker supports.
    pub derived_delivery: Delivery,
}

/// The defaults, written once: [`ProcessorConfig::new`] and `surge process`'s settings
/// (`SURGE_PROCESS_*`) both read them.
pub mod defaults {
    pub const BATCH_MAX: usize = 1000;
    pub const BATCH_WAIT_MS: u64 = 20;
    pub const SESSION_TIMEOUT_MS: u64 = 10_000;
    pub const MAX_POLL_INTERVAL_MS: u64 = 300_000;
    pub const FETCH_WAIT_MS: u64 = 20;
    pub const FETCH_MIN_BYTES: u32 = 65_536;
    pub const PREFETCH_MESSAGES: u32 = 10_000;
    pub const STALL_AFTER_MS: u64 = 30_000;
}

impl ProcessorConfig {
    pub fn new(brokers: impl Into<String>, topic: impl Into<String>) -> Self {
        ProcessorConfig {
            brokers: brokers.into(),
            topic: topic.into(),
            batch_max: defaults::BATCH_MAX,
            batch_wait: Duration::from_millis(defaults::BATCH_WAIT_MS),
            session_timeout: Duration::from_millis(defaults::SESSION_TIMEOUT_MS),
            max_poll_interval: Duration::from_millis(defaults::MAX_POLL_INTERVAL_MS),
            fetch_wait: Duration::from_millis(defaults::FETCH_WAIT_MS),
            fetch_min_bytes: defaults::FETCH_MIN_BYTES,
            prefetch_messages: defaults::PREFETCH_MESSAGES,
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(10),
            stall_after: Duration::from_millis(defaults::STALL_AFTER_MS),
            derived_delivery: Delivery::Auto,
        }
    }

    /// One consumer group per projection version, named after the topic it reads.
    pub fn group_id(&self, sink_id: &str) -> String {
        surge_projections::naming::consumer_group(&self.topic, sink_id)
    }
}
