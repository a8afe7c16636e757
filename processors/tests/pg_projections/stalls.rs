//! A partition whose batches keep failing transiently is marked stalled, set aside and retried
//! later, while the processor's other partitions keep flowing; once its store answers again it
//! resumes from its stored position, skipping nothing and applying nothing twice. A sink that
//! fails one partition on demand stands in for that partition's store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};
use surge_processors::runtime::{
    Applied, Claim, ProcessorConfig, ProcessorMetrics, Sink, SinkError, spawn,
};
use surge_schema_registry::Registry;
use surge_schemas::Codec;

use super::*;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Positions and applied offsets in memory; partition `failing` fails while `outage` is set.
#[derive(Clone, Default)]
struct FlakySink {
    positions: Arc<Mutex<HashMap<i32, i64>>>,
    applied: Arc<Mutex<HashMap<i32, Vec<i64>>>>,
    outage: Arc<AtomicBool>,
}

const FAILING: i32 = 0;

impl Sink for FlakySink {
    fn name(&self) -> &'static str {
        "flaky"
    }

    fn version(&self) -> u32 {
        1
    }

    async fn migrate(&self) -> Result<(), SinkError> {
        Ok(())
    }

    async fn claim(&self, _topic: &str, partitions: &[i32]) -> Result<Vec<Claim>, SinkError> {
        let positions = self.positions.lock().unwrap();
        Ok(partitions
            .iter()
            .map(|&partition| Claim {
                partition,
                next_offset: positions.get(&partition).copied().unwrap_or(0),
                generation: 1,
            })
            .collect())
    }

    async fn stored_positions(&self, _topic: &str) -> Result<HashMap<i32, i64>, SinkError> {
        Ok(self.positions.lock().unwrap().clone())
    }

    async fn apply(
        &self,
        _topic: &str,
        claim: Claim,
        records: &[Record],
        next_offset: i64,
    ) -> Result<Applied, SinkError> {
        if claim.partition == FAILING && self.outage.load(Ordering::Relaxed) {
            return Err(SinkError::Transient(
                "injected outage of partition 0".into(),
            ));
        }
        let mut positions = self.positions.lock().unwrap();
        let stored = positions.entry(claim.partition).or_insert(0);
        let fresh: Vec<i64> = (records.iter())
            .map(|r| r.offset)
            .filter(|o| *o >= *stored)
            .collect();
        *stored = next_offset.max(*stored);
        let mut applied = self.applied.lock().unwrap();
        applied.entry(claim.partition).or_default().extend(&fresh);
        Ok(Applied {
            events: fresh.len(),
            ..Applied::default()
        })
    }
}

impl FlakySink {
    fn position(&self, partition: i32) -> i64 {
        self.positions
            .lock()
            .unwrap()
            .get(&partition)
            .copied()
            .unwrap_or(0)
    }
}

async fn produce(codec: &Codec, brokers: &str, topic: &str, partition: i32, count: i64) {
    let producer: FutureProducer = surge_kafka::client_config(brokers).create().unwrap();
    for i in 0..count {
        let event = Event {
            envelope: Envelope {
                event_id: Uuid::now_v7(),
                user_id: 1 + i64::from(partition),
                occurred_at: 1_764_000_000_000 + i,
                recorded_at: 1_764_000_000_000 + i,
            },
            payload: TapsSubmitted { count: 1 }.into(),
        };
        let bytes = codec.encode(&event).await.unwrap();
        producer
            .send(
                FutureRecord::to(topic)
                    .partition(partition)
                    .key("k")
                    .payload(&bytes),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn stalled_gauge(registry: &prometheus::Registry, partition: i32) -> Option<f64> {
    registry
        .gather()
        .iter()
        .find(|f| f.name() == "processor_partition_stalled")?
        .get_metric()
        .iter()
        .find(|m| {
            m.get_label()
                .iter()
                .any(|l| l.name() == "partition" && l.value() == partition.to_string())
        })
        .map(|m| m.get_gauge().get_value())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_failing_past_the_bound_stalls_alone_and_resumes_where_it_stood() {
    let db = TestDb::new().await;
    let topic = format!("{}.events", db.schema);
    let brokers = surge_testkit::kafka_brokers();
    surge_kafka::admin::ensure_topic(&brokers, &topic, 2, 1)
        .await
        .unwrap();
    let registry = Registry::open(db.pool.clone()).await.unwrap();
    let served = surge_schema_registry::serve(registry, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let codec = Arc::new(Codec::new(&served.url, &topic, Duration::from_secs(5)).unwrap());

    let sink = FlakySink::default();
    sink.outage.store(true, Ordering::Relaxed);
    produce(&codec, &brokers, &topic, 0, 20).await;
    produce(&codec, &brokers, &topic, 1, 20).await;
    let metrics_registry = prometheus::Registry::new();
    let config = ProcessorConfig {
        batch_max: 5,
        retry_min: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
        stall_after: Duration::from_millis(500),
        session_timeout: Duration::from_secs(6),
        ..ProcessorConfig::new(&brokers, &topic)
    };
    let handle = spawn(
        sink.clone(),
        codec.clone(),
        config,
        ProcessorMetrics::new(&metrics_registry),
        None,
    )
    .unwrap();

    // Partition 0 stalls, named with its cause, and partition 1 is applied all the same,
    // including events produced after the stall.
    wait_until("partition 0 is marked stalled", || {
        handle.stalled().contains_key(&FAILING)
    })
    .await;
    let reason = handle.stalled()[&FAILING].clone();
    assert!(reason.contains("injected outage"), "{reason}");
    assert_eq!(stalled_gauge(&metrics_registry, FAILING), Some(1.0));
    produce(&codec, &brokers, &topic, 1, 10).await;
    wait_until("partition 1 is applied while 0 is stalled", || {
        sink.position(1) == 30
    })
    .await;
    assert_eq!(
        sink.position(FAILING),
        0,
        "nothing of partition 0 was applied"
    );
    assert!(
        handle.stalled().contains_key(&FAILING),
        "still stalled while failing"
    );

    // The store answers again: partition 0 resumes from its stored position and the stall clears.
    sink.outage.store(false, Ordering::Relaxed);
    wait_until("partition 0 catches up", || sink.position(FAILING) == 20).await;
    wait_until("the stall is cleared", || handle.stalled().is_empty()).await;
    assert_eq!(stalled_gauge(&metrics_registry, FAILING), Some(0.0));
    let applied = sink.applied.lock().unwrap().clone();
    assert_eq!(
        applied[&0],
        (0..20).collect::<Vec<_>>(),
        "each offset once, in order"
    );
    assert_eq!(
        applied[&1],
        (0..30).collect::<Vec<_>>(),
        "each offset once, in order"
    );
    handle.stop();
}
