//! Where Surge's Kafka clients get their configuration from: the settings every client shares are
//! set here once, and each caller adds those of its own role to the [`ClientConfig`] it gets.

use rdkafka::ClientConfig;

/// The configuration every Surge Kafka client starts from: the brokers to bootstrap from.
pub fn client_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    config
}

/// A producer whose acknowledged records are durable and never duplicated by its own retries:
/// idempotent, `acks=all`.
pub fn idempotent_producer_config(brokers: &str) -> ClientConfig {
    let mut config = client_config(brokers);
    config.set("enable.idempotence", "true").set("acks", "all");
    config
}

/// A consumer in `group` that commits nothing by itself: it commits its positions explicitly,
/// elsewhere (a sink, a transaction) or never.
pub fn manual_commit_consumer_config(brokers: &str, group: &str) -> ClientConfig {
    let mut config = client_config(brokers);
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    config
}
