//! The real Rust client, `schema_registry_converter`, against `serve`: the
//! proof that producers and consumers written for Confluent work with us.

use apache_avro::Schema;
use apache_avro::types::Value;
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use surge_schema_registry::serve;

use crate::common::TestDb;

const V1: &str = r#"{"type":"record","name":"Heartbeat","namespace":"surge.test","fields":[
    {"name":"beat","type":"long"}]}"#;
const V2: &str = r#"{"type":"record","name":"Heartbeat","namespace":"surge.test","fields":[
    {"name":"beat","type":"long"},
    {"name":"source","type":"string","default":"unknown"}]}"#;
const BREAKING: &str = r#"{"type":"record","name":"Heartbeat","namespace":"surge.test","fields":[
    {"name":"beat","type":"long"},
    {"name":"required","type":"string"}]}"#;

fn strategy(topic: &str, schema: &str) -> SubjectNameStrategy {
    SubjectNameStrategy::TopicRecordNameStrategyWithSchema(
        topic.to_owned(),
        SuppliedSchema::new(
            Some("surge.test.Heartbeat".to_owned()),
            SchemaType::Avro,
            schema.to_owned(),
        ),
    )
}

fn settings(url: &str) -> SrSettings {
    SrSettings::new_builder(url.to_owned())
        .no_proxy()
        .build()
        .unwrap()
}

/// Splits the Confluent wire format: magic byte 0, big-endian id, Avro body.
fn wire(bytes: &[u8]) -> (u32, &[u8]) {
    assert!(bytes.len() >= 5, "{bytes:?}");
    assert_eq!(bytes[0], 0, "magic byte");
    let id = u32::from_be_bytes(bytes[1..5].try_into().unwrap());
    (id, &bytes[5..])
}

#[tokio::test]
async fn avro_encoder_registers_and_avro_decoder_decodes() {
    let db = TestDb::new().await;
    let embedded = serve(db.registry().await, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let encoder = AvroEncoder::new(settings(&embedded.url));

    let v1_bytes = encoder
        .encode(vec![("beat", Value::Long(7))], strategy("heartbeats", V1))
        .await
        .unwrap();
    let (v1_id, body) = wire(&v1_bytes);
    // The body is plain Avro binary of the registered schema.
    let v1_schema = Schema::parse_str(V1).unwrap();
    let datum = apache_avro::reader::datum::GenericDatumReader::builder(&v1_schema)
        .build()
        .unwrap()
        .read_value(&mut &body[..])
        .unwrap();
    assert_eq!(
        datum,
        Value::Record(vec![("beat".to_owned(), Value::Long(7))])
    );

    // The subject is topic-record, as TopicRecordNameStrategy names it.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let latest: serde_json::Value = client
        .get(format!(
            "{}/subjects/heartbeats-surge.test.Heartbeat/versions/latest",
            embedded.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(latest["id"], serde_json::json!(v1_id));
    assert_eq!(latest["version"], serde_json::json!(1));

    // An evolved schema (a new producer: encoders cache per subject) gets a new
    // id; an incompatible one is refused.
    let v2_bytes = AvroEncoder::new(settings(&embedded.url))
        .encode(
            vec![
                ("beat", Value::Long(8)),
                ("source", Value::String("bot".into())),
            ],
            strategy("heartbeats", V2),
        )
        .await
        .unwrap();
    let (v2_id, _) = wire(&v2_bytes);
    assert_ne!(v1_id, v2_id);
    let refused = AvroEncoder::new(settings(&embedded.url))
        .encode(
            vec![
                ("beat", Value::Long(9)),
                ("required", Value::String("x".into())),
            ],
            strategy("heartbeats", BREAKING),
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");

    // The same schema under another topic shares the id.
    let other_bytes = encoder
        .encode(vec![("beat", Value::Long(7))], strategy("other-topic", V1))
        .await
        .unwrap();
    assert_eq!(wire(&other_bytes).0, v1_id);

    // A fresh decoder (no cache) fetches the writer schemas by id.
    let decoder = AvroDecoder::new(settings(&embedded.url));
    let decoded = decoder.decode(Some(&v1_bytes)).await.unwrap();
    assert_eq!(
        decoded.value,
        Value::Record(vec![("beat".to_owned(), Value::Long(7))])
    );
    assert_eq!(
        decoded.name.map(|n| n.fullname(None)),
        Some("surge.test.Heartbeat".to_owned())
    );
    let decoded = decoder.decode(Some(&v2_bytes)).await.unwrap();
    assert_eq!(
        decoded.value,
        Value::Record(vec![
            ("beat".to_owned(), Value::Long(8)),
            ("source".to_owned(), Value::String("bot".to_owned())),
        ])
    );

    // After a restart on the same database, old bytes still decode.
    embedded.shutdown().await.unwrap();
    let restarted = serve(db.registry().await, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let decoder = AvroDecoder::new(settings(&restarted.url));
    let decoded = decoder.decode(Some(&v1_bytes)).await.unwrap();
    assert_eq!(
        decoded.value,
        Value::Record(vec![("beat".to_owned(), Value::Long(7))])
    );
    restarted.shutdown().await.unwrap();
}
