//! A write through the real HTTP server becomes exactly one Avro event on the real broker.

use rdkafka::Message;
use serde_json::json;
use surge_schemas::{Payload, Position, TapsSubmitted, headers};

use crate::helpers::{PARTITIONS, header, java_murmur2, java_partition, json, spawn_app};

#[test]
fn java_murmur2_matches_kafkas_published_vectors() {
    // Kafka's UtilsTest.testMurmur2.
    let cases: [(&[u8], i32); 6] = [
        (b"21", -973_932_308),
        (b"foobar", -790_332_482),
        (b"a-little-bit-long-string", -985_981_536),
        (b"a-little-bit-longer-string", -1_486_304_829),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58_897_971,
        ),
        (b"abc", 479_470_107),
    ];
    for (input, expected) in cases {
        assert_eq!(
            java_murmur2(input),
            expected,
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[tokio::test]
async fn a_tap_becomes_one_avro_event_on_the_java_partition_of_its_user() {
    let app = spawn_app().await;
    let user_id = 5_123_456_789_i64; // beyond 32 bits, as Telegram ids are
    let response = app
        .request("POST", "/v1/taps")
        .header(
            "authorization",
            format!("tma {}", crate::helpers::init_data(user_id)),
        )
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .json(&json!({ "count": 7 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body = json(response).await;
    let position: Position = surge_schemas::TokenKeys::new(None, crate::helpers::BOT_TOKEN)
        .verify(body["position"].as_str().unwrap())
        .expect("a token signed by this deployment");
    let event_id = body["event_id"].as_str().unwrap().to_owned();

    assert_eq!(app.record_count(), 1, "exactly one record in the topic");
    let record = app.read_records(1).remove(0);
    let key = std::str::from_utf8(record.key().unwrap()).unwrap();
    assert_eq!(key, user_id.to_string());
    assert_eq!(record.partition(), java_partition(key, PARTITIONS));
    assert_eq!(
        (position.topic.as_str(), position.partition),
        (app.topic.as_str(), record.partition())
    );
    assert_eq!(position.offset, record.offset());

    assert_eq!(record.payload().unwrap()[0], 0, "Confluent magic byte");
    let (codec, _registry) = app.codec().await;
    let event = codec.decode(record.payload().unwrap()).await.unwrap();
    assert_eq!(event.envelope.event_id.to_string(), event_id);
    assert_eq!(event.envelope.event_id.get_version_num(), 7, "UUIDv7");
    assert_eq!(event.envelope.user_id, user_id);
    assert_eq!(
        event.payload,
        Payload::TapsSubmitted(TapsSubmitted { count: 7 })
    );

    assert_eq!(
        header(&record, headers::EVENT_TYPE),
        Some("app.surge.events.TapsSubmitted")
    );
    let traceparent = header(&record, headers::TRACEPARENT).unwrap();
    assert!(
        traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{traceparent}"
    );
}

#[tokio::test]
async fn every_endpoint_appends_its_event_in_order() {
    let app = spawn_app().await;
    let user = 42;
    let with_ref = crate::helpers::init_data_with(user, Some("ref_7"));
    let session = app
        .request("POST", "/v1/sessions")
        .header("authorization", format!("tma {with_ref}"))
        .json(&json!({ "platform": "android" }))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), 202);
    for (method, path, body) in [
        ("POST", "/v1/taps", json!({ "count": 3 })),
        ("POST", "/v1/checkins", json!({})),
        ("PATCH", "/v1/profile", json!({ "display_name": "Captain" })),
    ] {
        assert_eq!(
            app.write(method, path, user, body).await.status(),
            202,
            "{method} {path}"
        );
    }
    let batch = app
        .write(
            "POST",
            "/v1/batch",
            user,
            json!({ "actions": [
                { "type": "taps", "count": 10 },
                { "type": "taps", "count": 20 },
                { "type": "checkin" },
            ]}),
        )
        .await;
    assert_eq!(batch.status(), 202);
    let batch = json(batch).await;
    assert_eq!(batch["event_ids"].as_array().unwrap().len(), 3);

    let (codec, _registry) = app.codec().await;
    let mut events = Vec::new();
    for record in app.read_records(7) {
        events.push((
            record.offset(),
            codec.decode(record.payload().unwrap()).await.unwrap(),
        ));
    }
    events.sort_by_key(|(offset, _)| *offset);
    let names: Vec<_> = events.iter().map(|(_, e)| e.event_type().name()).collect();
    assert_eq!(
        names,
        [
            "SessionStarted",
            "TapsSubmitted",
            "DailyCheckedIn",
            "ProfileUpdated",
            "TapsSubmitted",
            "TapsSubmitted",
            "DailyCheckedIn"
        ]
    );
    let Payload::SessionStarted(session) = &events[0].1.payload else {
        panic!("first is the session")
    };
    assert_eq!(session.first_name, "Тест");
    assert_eq!(session.start_param.as_deref(), Some("ref_7"));
    assert_eq!(session.platform.as_deref(), Some("android"));
    let batch_ids: Vec<String> = events[4..]
        .iter()
        .map(|(_, e)| e.envelope.event_id.to_string())
        .collect();
    let answered: Vec<String> = batch["event_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(batch_ids, answered, "batch appended in request order");
}

/// Refusals by the router itself keep the JSON error shape: 405 (with `Allow`) and 404.
#[tokio::test]
async fn a_wrong_method_or_path_gets_the_json_error_shape() {
    let app = crate::helpers::spawn_app().await;
    let wrong_method = app.request("GET", "/v1/taps").send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);
    let allow = wrong_method.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("POST"), "{allow}");
    assert_eq!(
        crate::helpers::json(wrong_method).await["error"]["code"],
        "method_not_allowed"
    );
    let no_route = app.request("GET", "/v2/nothing").send().await.unwrap();
    assert_eq!(no_route.status(), 404);
    assert_eq!(
        crate::helpers::json(no_route).await["error"]["code"],
        "not_found"
    );
}
