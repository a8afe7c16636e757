//! The deriver's transactional emit mode on librdkafka's mock cluster. The mock speaks the
//! transaction protocol but keeps little of its meaning: it serves aborted records to
//! read_committed readers, keeps no transactional offsets, and gives every InitProducerId a new
//! producer id, so a second producer with the same transactional id does not fence the first.
//! These tests check what it can show: transactions commit, a commit the coordinator refuses is
//! aborted and retried with a new producer, and auto mode picks the right mode per broker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::{IntCounterVec, Opts};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use surge_processors::derivers::emit::{
    Delivery, Derived, Emitter, EmitterSettings, broker_supports_transactions,
};
use surge_producers::kafka::ProducerSettings;
use surge_schema_registry::{EmbeddedRegistry, Registry};
use surge_schemas::Codec;

use super::*;

const PARTITIONS: i32 = 2;

struct Setup {
    cluster: MockCluster<'static, DefaultProducerContext>,
    topic: String,
    codec: Arc<Codec>,
    _registry: EmbeddedRegistry,
    _db: TestDb,
}

impl Setup {
    async fn new() -> Self {
        let db = TestDb::new().await;
        let topic = format!("{}.events", db.schema);
        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic(&topic, PARTITIONS, 1).unwrap();
        let registry = Registry::open(db.pool.clone()).await.unwrap();
        let served = surge_schema_registry::serve(registry, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let codec = Codec::new(&served.url, &topic, Duration::from_secs(5)).unwrap();
        Setup {
            cluster,
            topic,
            codec: Arc::new(codec),
            _registry: served,
            _db: db,
        }
    }

    fn producer_settings(&self) -> ProducerSettings {
        ProducerSettings::new(self.cluster.bootstrap_servers(), &self.topic)
    }

    /// A transactional emitter, as one processor instance builds it.
    fn instance(&self, transactions: &IntCounterVec) -> Emitter {
        let settings = EmitterSettings {
            producer: self.producer_settings(),
            deriver_id: "referrals.v1".into(),
        };
        Emitter::new(
            Delivery::Transactional,
            settings,
            self.codec.clone(),
            transactions.clone(),
        )
    }

    /// Decoded `(source event id, referred user)` of every ReferralCredited in the topic.
    async fn credits(&self, expected: usize) -> Vec<(Uuid, i64)> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.cluster.bootstrap_servers())
            .set("group.id", format!("{}.reader", self.topic))
            .set("isolation.level", "read_committed")
            .create()
            .unwrap();
        let mut assignment = TopicPartitionList::new();
        for partition in 0..PARTITIONS {
            assignment
                .add_partition_offset(&self.topic, partition, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&assignment).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut credits = Vec::new();
        while credits.len() < expected && Instant::now() < deadline {
            let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let event = self.codec.decode(message.payload().unwrap()).await.unwrap();
            if let Payload::ReferralCredited(credit) = event.payload {
                credits.push((credit.source_event_id, credit.referred_user_id));
            }
        }
        credits.sort();
        credits
    }
}

fn transactions_metric() -> IntCounterVec {
    IntCounterVec::new(Opts::new("transactions", "test"), &["processor", "outcome"]).unwrap()
}

/// A credit for `referred`, derived from a source event at `source_offset`.
fn credit_from(source_offset: i64, referred: i64) -> Derived {
    let source = batch(source_offset, vec![(referred, session("x", None))]).remove(0);
    Derived {
        source_offset,
        event: Event {
            envelope: Envelope {
                event_id: Uuid::now_v7(),
                user_id: ALICE,
                occurred_at: T0,
                recorded_at: T0,
            },
            payload: ReferralCredited {
                referred_user_id: referred,
                source_event_id: source.event.envelope.event_id,
            }
            .into(),
        },
    }
}

#[tokio::test]
async fn the_mock_cluster_completes_transactions_so_auto_mode_picks_them() {
    let setup = Setup::new().await;
    let supported = broker_supports_transactions(
        &setup.producer_settings(),
        &format!("{}.probe", setup.topic),
    )
    .await
    .unwrap();
    assert!(supported);
}

#[tokio::test]
async fn a_probe_against_no_broker_is_an_error_not_a_silent_downgrade() {
    let setup = Setup::new().await;
    let settings = ProducerSettings::new("127.0.0.1:1", &setup.topic);
    let outcome = broker_supports_transactions(&settings, "nobody.probe").await;
    assert!(outcome.is_err(), "{outcome:?}");
}

#[tokio::test]
async fn a_commit_the_broker_refuses_is_aborted_and_the_retry_starts_a_new_producer() {
    let setup = Setup::new().await;
    let transactions = transactions_metric();
    let count = |outcome: &str| {
        transactions
            .with_label_values(&["referrals.v1", outcome])
            .get()
    };
    let emitter = setup.instance(&transactions);
    emitter.emit(0, vec![credit_from(3, 101)], 4).await.unwrap();
    assert_eq!(count("committed"), 1);

    // The coordinator refuses the end of the next transaction as it refuses a fenced producer.
    setup.cluster.request_errors(
        RDKafkaApiKey::EndTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH],
    );
    let refused = emitter.emit(0, vec![credit_from(5, 102)], 6).await;
    assert!(
        matches!(&refused, Err(ApplyError::Transient(reason)) if reason.contains("partition 0")),
        "{refused:?}"
    );
    assert_eq!(count("aborted"), 1);

    // The runtime retries the batch: a fresh producer (new epoch) commits it.
    emitter.emit(0, vec![credit_from(5, 102)], 6).await.unwrap();
    assert_eq!((count("committed"), count("aborted")), (2, 1));
    let referred: Vec<i64> = setup.credits(2).await.iter().map(|(_, u)| *u).collect();
    assert!(
        referred.contains(&101) && referred.contains(&102),
        "{referred:?}"
    );
}

/// tansu 0.6 answers the end of a transaction as unsupported: auto mode falls back to the
/// idempotent emit, the one mode that broker can keep.
#[tokio::test]
async fn the_real_broker_process_lacks_transactions_so_auto_mode_picks_idempotent() {
    let brokers = std::env::var("SURGE_TEST_KAFKA_BROKERS")
        .expect("SURGE_TEST_KAFKA_BROKERS names the broker process (scripts/test.sh starts it)");
    let db = TestDb::new().await;
    let topic = format!("{}.events", db.schema);
    surge_producers::kafka::admin::ensure_topic(&brokers, &topic, 1, 1)
        .await
        .unwrap();
    let settings = ProducerSettings::new(&brokers, &topic);
    let supported = broker_supports_transactions(&settings, &format!("{topic}.probe"))
        .await
        .unwrap();
    assert!(!supported);
}

/// A broker that is down when auto mode must choose fails the emit as a transient error, which
/// the runtime retries; the choice is made again on the next attempt.
#[tokio::test]
async fn auto_mode_with_the_broker_down_fails_the_emit_transiently() {
    let setup = Setup::new().await;
    let settings = EmitterSettings {
        producer: ProducerSettings::new("127.0.0.1:1", &setup.topic),
        deriver_id: "referrals.v1".into(),
    };
    let emitter = Emitter::new(
        Delivery::Auto,
        settings,
        setup.codec.clone(),
        transactions_metric(),
    );
    let outcome = emitter.emit(0, vec![credit_from(3, 101)], 4).await;
    assert!(
        matches!(&outcome, Err(ApplyError::Transient(reason)) if reason.contains("choosing how to emit")),
        "{outcome:?}"
    );
}
