//! The deriver's transactional emit mode, on the real Kafka broker (`SURGE_TEST_KAFKA_BROKERS`)
//! and, for injected request errors, on librdkafka's mock cluster (which speaks the transaction
//! protocol but keeps little of its meaning: it serves aborted records to read_committed readers
//! and does not fence). On Kafka: a transaction a killed processor left open is aborted by the
//! next owner and never seen; a crash after the Kafka commit emits nothing again; a paused
//! zombie's producer is fenced and cannot commit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::{IntCounterVec, Opts};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::producer::Producer;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{Offset, TopicPartitionList};
use surge_kafka::{EventLog, ProducerSettings, TraceMeta};
use surge_processors::emit::{
    Delivery, Derived, Emitter, EmitterSettings, broker_supports_transactions,
};
use surge_schema_registry::{EmbeddedRegistry, Registry};
use surge_schemas::Codec;

use super::*;

const PARTITIONS: i32 = 2;

struct Setup {
    /// Present on the mock cluster, for fault injection.
    cluster: Option<MockCluster<'static, DefaultProducerContext>>,
    brokers: String,
    topic: String,
    codec: Arc<Codec>,
    _registry: EmbeddedRegistry,
    _db: TestDb,
}

impl Setup {
    /// On librdkafka's mock cluster.
    async fn new() -> Self {
        let db = TestDb::new().await;
        let topic = format!("{}.events", db.schema);
        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic(&topic, PARTITIONS, 1).unwrap();
        let brokers = cluster.bootstrap_servers();
        Self::with(db, Some(cluster), brokers, topic).await
    }

    /// On the real broker process.
    async fn on_kafka() -> Self {
        let db = TestDb::new().await;
        let topic = format!("{}.events", db.schema);
        let brokers = surge_testkit::kafka_brokers();
        surge_kafka::admin::ensure_topic(&brokers, &topic, PARTITIONS, 1)
            .await
            .unwrap();
        Self::with(db, None, brokers, topic).await
    }

    async fn with(
        db: TestDb,
        cluster: Option<MockCluster<'static, DefaultProducerContext>>,
        brokers: String,
        topic: String,
    ) -> Self {
        let registry = Registry::open(db.pool.clone()).await.unwrap();
        let served = surge_schema_registry::serve(registry, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let codec = Codec::new(&served.url, &topic, Duration::from_secs(5)).unwrap();
        Setup {
            cluster,
            brokers,
            topic,
            codec: Arc::new(codec),
            _registry: served,
            _db: db,
        }
    }

    fn producer_settings(&self) -> ProducerSettings {
        ProducerSettings::new(&self.brokers, &self.topic)
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

    /// A read_committed consumer with every partition assigned from the start, reporting
    /// partition ends.
    fn committed_reader(&self) -> BaseConsumer {
        let consumer: BaseConsumer = surge_kafka::client_config(&self.brokers)
            .set("group.id", format!("{}.reader", self.topic))
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .create()
            .unwrap();
        let mut assignment = TopicPartitionList::new();
        for partition in 0..PARTITIONS {
            assignment
                .add_partition_offset(&self.topic, partition, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&assignment).unwrap();
        consumer
    }

    /// Decoded `(source event id, referred user)` of every ReferralCredited in the topic.
    async fn credits(&self, expected: usize) -> Vec<(Uuid, i64)> {
        let consumer = self.committed_reader();
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
        source_partition: 0,
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
    setup.cluster.as_ref().unwrap().request_errors(
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

/// Apache Kafka completes a probe transaction, so auto mode picks transactional emits there.
#[tokio::test]
async fn the_real_broker_process_has_transactions_so_auto_mode_picks_transactional() {
    let brokers = surge_testkit::kafka_brokers();
    let db = TestDb::new().await;
    let topic = format!("{}.events", db.schema);
    surge_kafka::admin::ensure_topic(&brokers, &topic, 1, 1)
        .await
        .unwrap();
    let settings = ProducerSettings::new(&brokers, &topic);
    let supported = broker_supports_transactions(&settings, &format!("{topic}.probe"))
        .await
        .unwrap();
    assert!(supported);
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

/// What a processor killed between appending a ReferralCredited and committing its transaction
/// leaves behind: an open transaction under the partition's transactional id holding the
/// record. Appended through the same producer code the emitter uses; `still_open` keeps it
/// alive (a paused zombie) or is dropped without a commit or abort (a kill).
async fn open_transaction_with(setup: &Setup, credit: &Derived) -> EventLog {
    let settings = ProducerSettings {
        transactional_id: Some(format!("{}.referrals.v1.p0", setup.topic)),
        ..setup.producer_settings()
    };
    let log = EventLog::new(settings, setup.codec.clone()).unwrap();
    let producer = log.producer().clone();
    tokio::task::spawn_blocking(move || {
        producer.init_transactions(Duration::from_secs(10))?;
        producer.begin_transaction()
    })
    .await
    .unwrap()
    .unwrap();
    log.append(std::slice::from_ref(&credit.event), &TraceMeta::default())
        .await
        .unwrap();
    log
}

/// `(event id, referred user)` of every ReferralCredited record a read_committed reader sees,
/// read to the end of the topic.
async fn committed_credits(setup: &Setup) -> Vec<(Uuid, i64)> {
    let consumer = setup.committed_reader();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut at_end = std::collections::HashSet::new();
    let mut credits = Vec::new();
    while at_end.len() < PARTITIONS as usize {
        assert!(
            Instant::now() < deadline,
            "could not read {} to its end",
            setup.topic
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let event = setup
                    .codec
                    .decode(message.payload().unwrap())
                    .await
                    .unwrap();
                if let Payload::ReferralCredited(credit) = event.payload {
                    credits.push((event.envelope.event_id, credit.referred_user_id));
                }
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            _ => {}
        }
    }
    credits
}

#[tokio::test]
async fn a_transaction_a_killed_processor_left_open_is_aborted_by_the_next_owner() {
    let setup = Setup::on_kafka().await;
    let credit = credit_from(3, 101);
    // The killed processor: its record is in the log, its transaction never ends.
    drop(open_transaction_with(&setup, &credit).await);
    // The next owner replays the batch (PostgreSQL rolled back with the crash) and emits again.
    let transactions = transactions_metric();
    let next_owner = setup.instance(&transactions);
    next_owner.emit(0, vec![credit.clone()], 4).await.unwrap();
    let credits = committed_credits(&setup).await;
    assert_eq!(
        credits,
        [(credit.event.envelope.event_id, 101)],
        "exactly one committed ReferralCredited"
    );
}

#[tokio::test]
async fn a_crash_after_the_kafka_commit_and_before_postgres_emits_nothing_again() {
    let setup = Setup::on_kafka().await;
    let transactions = transactions_metric();
    let credit = credit_from(3, 101);
    // The Kafka transaction commits; the process dies before PostgreSQL commits the batch.
    setup
        .instance(&transactions)
        .emit(0, vec![credit.clone()], 4)
        .await
        .unwrap();
    // A new process replays the batch from PostgreSQL's position: the emitted offset says the
    // source already has its credit.
    setup
        .instance(&transactions)
        .emit(0, vec![credit.clone()], 4)
        .await
        .unwrap();
    let credits = committed_credits(&setup).await;
    assert_eq!(
        credits,
        [(credit.event.envelope.event_id, 101)],
        "exactly one committed ReferralCredited"
    );
}

#[tokio::test]
async fn a_paused_zombie_is_fenced_and_nothing_it_appended_becomes_visible() {
    let setup = Setup::on_kafka().await;
    let zombie_credit = credit_from(3, 101);
    // Paused mid-transaction, past its session: the partition moved to another instance.
    let zombie = open_transaction_with(&setup, &zombie_credit).await;
    let transactions = transactions_metric();
    let owner_credit = credit_from(3, 101);
    setup
        .instance(&transactions)
        .emit(0, vec![owner_credit.clone()], 4)
        .await
        .unwrap();
    // Resumed, the zombie tries to finish its work.
    let producer = zombie.producer().clone();
    let commit =
        tokio::task::spawn_blocking(move || producer.commit_transaction(Duration::from_secs(10)))
            .await
            .unwrap();
    assert!(
        commit.is_err(),
        "the zombie's commit must be refused: {commit:?}"
    );
    let credits = committed_credits(&setup).await;
    assert_eq!(
        credits,
        [(owner_credit.event.envelope.event_id, 101)],
        "only the owner's ReferralCredited is visible"
    );
}

/// The runtime applies a poll's batches of several partitions together: each partition's derived
/// events are emitted in a transaction of its own, with that partition's end as its emitted
/// offset. Applied again (the batch's PostgreSQL transaction rolled back after the Kafka
/// commits), nothing is emitted twice.
#[tokio::test]
async fn a_batch_spanning_partitions_emits_a_transaction_per_partition_once() {
    let setup = Setup::new().await;
    let transactions = transactions_metric();
    let committed = || {
        transactions
            .with_label_values(&["referrals.v1", "committed"])
            .get()
    };
    let emitter = setup.instance(&transactions);
    let mut records = batch(
        3,
        vec![(BOB, session("b", None)), (CAROL, session("c", None))],
    );
    (records[0].partition, records[1].partition) = (0, 1);
    let derived = || -> Vec<Derived> {
        (records.iter())
            .map(|r| Derived::from(r, credit_from(r.offset, r.event.envelope.user_id).event))
            .collect()
    };
    emitter.emit_for(&records, derived()).await.unwrap();
    assert_eq!(committed(), 2, "a transaction for each partition");
    emitter.emit_for(&records, derived()).await.unwrap();
    assert_eq!(committed(), 2, "nothing emitted again");
    let referred: Vec<i64> = setup.credits(2).await.iter().map(|(_, u)| *u).collect();
    assert_eq!(referred.len(), 2, "{referred:?}");
    assert!(
        referred.contains(&BOB) && referred.contains(&CAROL),
        "{referred:?}"
    );
}
