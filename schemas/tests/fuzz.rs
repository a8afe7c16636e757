//! Property-based fuzzing of what this crate reads from outside: consistency tokens from clients,
//! and event bytes from the topic (Avro bodies, and whole Confluent wire-format records through
//! the codec and a real schema registry). Arbitrary input never panics: it is accepted or a clean
//! error. `PROPTEST_CASES=100000 cargo test -p surge-schemas --test fuzz` runs longer (the
//! default is proptest's 256 cases per property); the codec property needs PostgreSQL
//! (`SURGE_TEST_DATABASE_URL`, default the local `surge_test`).

use std::str::FromStr;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use surge_schemas::{Codec, Envelope, Event, EventType, Position};
use uuid::Uuid;

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..256)
}

proptest! {
    /// Generic on purpose: the token format may change (signed tokens), the property does not.
    #[test]
    fn arbitrary_tokens_are_a_position_or_a_clean_error(
        token in prop_oneof![
            any::<String>(),
            "v1\\.[A-Za-z0-9_-]{0,80}",
            any::<String>().prop_map(|s| format!("v1.{s}")),
        ],
    ) {
        if let Ok(position) = Position::from_str(&token) {
            prop_assert!(position.partition >= 0 && position.offset >= 0);
        }
    }

    #[test]
    fn arbitrary_avro_bodies_are_an_event_or_a_clean_error(body in bytes()) {
        for event_type in EventType::ALL {
            let reader = apache_avro::reader::datum::GenericDatumReader::builder(event_type.schema())
                .build()
                .expect("the schema resolves");
            if let Ok(value) = reader.read_value(&mut &body[..]) {
                let _ = surge_schemas::avro::from_value(*event_type, value);
            }
        }
    }
}

/// One event of every type, with its sample payload.
fn samples() -> Vec<Event> {
    EventType::ALL
        .iter()
        .map(|event_type| Event {
            envelope: Envelope {
                event_id: Uuid::now_v7(),
                user_id: 7_342_037_359,
                occurred_at: 1_800_000_000_000,
                recorded_at: 1_800_000_000_001,
            },
            payload: event_type.sample(),
        })
        .collect()
}

/// A codec on the embedded registry, stored in a throwaway PostgreSQL schema.
async fn codec(schema: &str) -> (Codec, surge_schema_registry::EmbeddedRegistry) {
    let pool = surge_testkit::pg_pool(schema).await;
    let registry = surge_schema_registry::Registry::open(pool).await.unwrap();
    let served = surge_schema_registry::serve(registry, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let codec = Codec::new(&served.url, "fuzz.events", Duration::from_secs(5)).unwrap();
    codec.register_all().await.unwrap();
    (codec, served)
}

#[test]
fn arbitrary_records_decode_to_an_event_or_a_clean_error() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let schema = surge_testkit::unique_id("fuzz_");
    let (codec, _served) = runtime.block_on(codec(&schema));
    let samples = samples();
    let encoded: Vec<Vec<u8>> = samples
        .iter()
        .map(|event| runtime.block_on(codec.encode(event)).unwrap())
        .collect();
    // Real records with bytes flipped, cut or appended; real headers on arbitrary bodies; and
    // arbitrary bytes.
    let records = prop_oneof![
        bytes(),
        (0..encoded.len(), bytes()).prop_map({
            let encoded = encoded.clone();
            move |(i, body)| [&encoded[i][..5], &body[..]].concat()
        }),
        (
            0..encoded.len(),
            proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
            any::<usize>()
        )
            .prop_map({
                let encoded = encoded.clone();
                move |(i, flips, cut)| {
                    let mut record = encoded[i].clone();
                    for (at, byte) in flips {
                        let at = at % record.len();
                        record[at] ^= byte;
                    }
                    record.truncate(cut % (record.len() + 1));
                    record
                }
            }),
    ];
    // Cases from PROPTEST_CASES like the others; a manual runner has no source file to persist
    // failures next to, so a failure prints its minimal input instead.
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&records, |record| {
        let _ = runtime.block_on(codec.decode(&record));
        Ok(())
    });
    for (event, record) in samples.iter().zip(&encoded) {
        let back = runtime.block_on(codec.decode(record)).unwrap();
        assert_eq!(back.payload, event.payload, "the real records still decode");
    }
    runtime
        .block_on(surge_testkit::drop_schema(&schema))
        .unwrap();
    result.unwrap();
}
