//! A consumer context for readers that ask for end-of-partition notices
//! (`enable.partition.eof`) and handle them: rebuilds, `surge tap`, the read baselines.

use rdkafka::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Logs every client error but the end-of-partition notices its reader asked for.
pub struct PartitionEndsExpected;

impl ClientContext for PartitionEndsExpected {
    fn error(&self, error: KafkaError, reason: &str) {
        let end_of_partition = matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        );
        if !end_of_partition {
            tracing::error!(%error, reason, "Kafka client error.");
        }
    }
}

impl ConsumerContext for PartitionEndsExpected {}
