//! Several registry instances on one database allocate ids and versions safely.

use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::common::{TestDb, get, post, record};

/// Schema `i` adds its own optional field, so any registration order is compatible.
fn schema(i: usize) -> String {
    let fields: Vec<String> = (0..=i)
        .map(|j| format!(r#"{{"name":"f{j}","type":"string","default":""}}"#))
        .collect();
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    record("R", &fields)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_registrations_across_instances_get_unique_ids_and_gapless_versions() {
    let db = TestDb::new().await;
    let apps: [Router; 2] = [db.app().await, db.app().await];
    let subjects = ["left-R", "right-R"];

    // 16 registrations: 8 schemas x 2 subjects, alternating instances, all at once.
    let mut tasks = JoinSet::new();
    for i in 0..8 {
        for (k, subject) in subjects.into_iter().enumerate() {
            let app = apps[(i + k) % 2].clone();
            tasks.spawn(async move {
                let url = format!("/subjects/{subject}/versions");
                let (status, body) = post(&app, &url, json!({ "schema": schema(i) })).await;
                assert_eq!(status, 200, "{subject} schema {i}: {body}");
                (subject, i, body["id"].as_u64().unwrap())
            });
        }
    }
    let mut ids: BTreeMap<(&str, usize), u64> = BTreeMap::new();
    while let Some(result) = tasks.join_next().await {
        let (subject, i, id) = result.unwrap();
        ids.insert((subject, i), id);
    }
    assert_eq!(ids.len(), 16);

    // One id per distinct schema, shared by both subjects.
    let distinct: BTreeSet<u64> = ids.values().copied().collect();
    assert_eq!(distinct.len(), 8, "{ids:?}");
    for i in 0..8 {
        assert_eq!(ids[&("left-R", i)], ids[&("right-R", i)], "schema {i}");
    }

    // Versions 1..=8 in each subject, each pointing at a distinct id.
    for subject in subjects {
        let (_, versions) = get(&apps[0], &format!("/subjects/{subject}/versions")).await;
        assert_eq!(versions, json!((1..=8).collect::<Vec<_>>()), "{subject}");
        let mut seen = BTreeSet::new();
        for version in 1..=8 {
            let (_, body) = get(&apps[1], &format!("/subjects/{subject}/versions/{version}")).await;
            let id = body["id"].as_u64().unwrap();
            assert!(seen.insert(id), "{subject} reuses id {id}");
            let i = (0..8).find(|&i| ids[&(subject, i)] == id).unwrap();
            assert_eq!(body["schema"], Value::String(schema(i)));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_registrations_of_one_schema_make_one_version() {
    let db = TestDb::new().await;
    let apps: [Router; 2] = [db.app().await, db.app().await];
    let mut tasks = JoinSet::new();
    for n in 0..16 {
        let app = apps[n % 2].clone();
        tasks.spawn(async move {
            let (status, body) =
                post(&app, "/subjects/s/versions", json!({ "schema": schema(0) })).await;
            assert_eq!(status, 200, "{body}");
            body["id"].as_u64().unwrap()
        });
    }
    let ids: BTreeSet<u64> = tasks.join_all().await.into_iter().collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let (_, versions) = get(&apps[0], "/subjects/s/versions").await;
    assert_eq!(versions, json!([1]));
}
