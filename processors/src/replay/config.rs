//! Settings of one rebuild.

use std::time::Duration;

/// How a rebuild reads, batches, switches and hands over.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    pub brokers: String,
    /// The events topic.
    pub topic: String,
    /// Most events per partition batch while far behind the serving version (bulk load: large
    /// multi-row statements, commits that do not wait for the WAL flush).
    pub bulk_batch: usize,
    /// Most events per partition batch near the serving version's position and after the
    /// switch, as the serving processors batch.
    pub batch_max: usize,
    /// Longest wait to fill a normal batch once its first event arrived.
    pub batch_wait: Duration,
    /// Longest the broker may hold an empty fetch (`fetch.wait.max.ms`).
    pub fetch_wait: Duration,
    /// The serving version is frozen for the switch once the rebuild is at most this many
    /// events behind it (over all partitions); the rest is applied while it is frozen.
    pub switch_lag: i64,
    /// Events per second over all partitions; `None` for as fast as the stores take them.
    pub max_rate: Option<u32>,
    /// How long the old version keeps its tables or keys after the switch, so reads that started
    /// on it finish and every query API has moved to the new one (they poll every 500 ms).
    pub drop_grace: Duration,
    /// How long after the switch the rebuild keeps the new version up to date itself, until the
    /// serving processors (`surge process`) take its partitions over.
    pub handover_timeout: Duration,
    /// How often the serving version's positions are read while the rebuild waits on them.
    pub serving_poll: Duration,
    /// Backoff between retries of a batch after a transient failure: doubles from min to max.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl ReplayConfig {
    pub fn new(brokers: impl Into<String>, topic: impl Into<String>) -> Self {
        ReplayConfig {
            brokers: brokers.into(),
            topic: topic.into(),
            bulk_batch: 20_000,
            batch_max: 1000,
            batch_wait: Duration::from_millis(20),
            fetch_wait: Duration::from_millis(100),
            switch_lag: 1000,
            max_rate: None,
            drop_grace: Duration::from_secs(5),
            handover_timeout: Duration::from_secs(60),
            serving_poll: Duration::from_millis(100),
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(10),
        }
    }
}
