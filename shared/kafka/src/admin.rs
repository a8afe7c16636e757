//! Topics are created explicitly at start-up: managed clusters often disable auto-creation, and
//! auto-created topics would get the broker's default partition count rather than ours.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot create admin client: {0}")]
    Client(KafkaError),
    #[error("creating topic {topic} failed: {reason}")]
    Create { topic: String, reason: String },
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// Creates `topic` unless it exists, keeping its records forever: the topics are the source of
/// truth every projection is rebuilt from (`surge replay`), so a broker's default retention
/// (7 days on Kafka) must not delete them. An existing topic is left as it is, whatever its
/// partitions and retention.
pub async fn ensure_topic(
    brokers: &str,
    topic: &str,
    partitions: i32,
    replication: i32,
) -> Result<(), AdminError> {
    // Look before creating: librdkafka's mock cluster never answers CreateTopics, and on a
    // managed cluster the deploying identity may lack the right to create.
    if topic_exists(brokers, topic).await? {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = crate::client_config(brokers)
        .create()
        .map_err(AdminError::Client)?;
    let options = AdminOptions::new()
        .operation_timeout(Some(TIMEOUT))
        .request_timeout(Some(TIMEOUT));
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication))
        .set("retention.ms", "-1")
        .set("retention.bytes", "-1");
    let results = admin
        .create_topics([&new_topic], &options)
        .await
        .map_err(|e| AdminError::Create {
            topic: topic.to_owned(),
            reason: e.to_string(),
        })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(AdminError::Create {
                    topic: name,
                    reason: code.to_string(),
                });
            }
        }
    }
    Ok(())
}

async fn topic_exists(brokers: &str, topic: &str) -> Result<bool, AdminError> {
    let consumer: BaseConsumer = crate::client_config(brokers)
        .create()
        .map_err(AdminError::Client)?;
    let topic = topic.to_owned();
    let metadata =
        tokio::task::spawn_blocking(move || consumer.fetch_metadata(Some(&topic), TIMEOUT))
            .await
            .map_err(|_| AdminError::Client(KafkaError::Canceled))?
            .map_err(AdminError::Client)?;
    Ok(metadata
        .topics()
        .iter()
        .any(|t| t.error().is_none() && !t.partitions().is_empty()))
}
