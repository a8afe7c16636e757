//! The event contract at deploy time: a binary whose schema is incompatible with what the
//! registry holds refuses to start, naming the reason; a compatible restart reuses the ids.

use serde_json::json;
use surge_schemas::EventType;

use crate::helpers::{Options, pg_pool, spawn_app, start, unique_id};

#[tokio::test]
async fn an_incompatible_schema_change_is_refused_at_start() {
    let id = unique_id();
    let registry = surge_schema_registry::Registry::open(pg_pool(&id).await)
        .await
        .unwrap();
    let served = surge_schema_registry::serve(registry, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    // Yesterday's TapsSubmitted had `count` as a string: today's int schema cannot read that data.
    let yesterday = json!({
        "type": "record", "name": "TapsSubmitted", "namespace": "app.surge.events",
        "fields": [{ "name": "count", "type": "string" }]
    });
    let subject = format!("{id}.events-{}", EventType::TapsSubmitted.full_name());
    let registered = reqwest::Client::new()
        .post(format!("{}/subjects/{subject}/versions", served.url))
        .json(&json!({ "schema": yesterday.to_string() }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 200);

    let logs = match start(&id, Options::default()) {
        Ok(_) => panic!("surge started with an incompatible schema"),
        Err(logs) => logs,
    };
    assert!(
        logs.contains("Failed to register the event schemas"),
        "{logs}"
    );
    assert!(logs.contains("TapsSubmitted"), "{logs}");
}

#[tokio::test]
async fn a_restart_reuses_the_registered_schema_ids() {
    let app = spawn_app().await;
    let subject = format!("{}-{}", app.topic, EventType::SessionStarted.full_name());
    let (_, served) = app.codec().await;
    let versions_url = format!("{}/subjects/{subject}/versions", served.url);
    assert_eq!(versions(&versions_url).await, vec![1]);
    let again = start(&app.id, Options::default()).expect("second instance starts");
    drop(again);
    assert_eq!(
        versions(&versions_url).await,
        vec![1],
        "no new version for the same schema"
    );
}

async fn versions(url: &str) -> Vec<i64> {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}
