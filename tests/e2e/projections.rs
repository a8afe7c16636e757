//! `surge projections`: every projection's versions, positions and lag, read from the stores and
//! the broker as an operator would, before and after the processors catch up.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use surge_projections::{ProjectionId, naming};

use crate::helpers::{Options, TestApp, pg_pool, spawn_app, started};

/// `surge projections --json` for the app's topic, schema and Redis prefix.
pub fn projections(app: &TestApp) -> Vec<Value> {
    let output = app
        .cli("projections")
        .arg("--json")
        .output()
        .expect("run surge projections");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice::<Value>(&output.stdout)
        .expect("JSON")
        .as_array()
        .unwrap()
        .clone()
}

fn row<'a>(rows: &'a [Value], name: &str, version: u64) -> &'a Value {
    rows.iter()
        .find(|r| r["projection"] == name && r["version"] == version)
        .unwrap_or_else(|| panic!("no {name} v{version} in {rows:?}"))
}

#[tokio::test]
async fn positions_and_lag_follow_the_processors_and_other_versions_show_as_inactive() {
    let app = spawn_app().await;
    for user in 1..=5_i64 {
        // One record per produce request, so every broker's watermark is exact.
        let response = app
            .write("POST", "/v1/taps", user, json!({ "count": 2 }))
            .await;
        assert_eq!(response.status(), 202);
    }
    let names: Vec<&str> = ProjectionId::ALL.iter().map(|p| p.name()).collect();

    let before = projections(&app);
    assert_eq!(before.len(), names.len(), "{before:?}");
    for &name in &names {
        let r = row(&before, name, 1);
        assert_eq!(r["active"], true);
        assert_eq!(
            (r["applied"].as_i64(), r["head"].as_i64(), r["lag"].as_i64()),
            (Some(0), Some(5), Some(5)),
            "{r}"
        );
        assert_eq!(r["partitions_started"], 0);
    }

    let _processor = started(
        &app.id,
        Options {
            role: Some("process"),
            env: vec![("SURGE_PROCESS_BATCH_WAIT_MS", "5".into())],
            ..Options::default()
        },
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        let rows = projections(&app);
        if rows.iter().all(|r| r["lag"] == 0) {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "the processors never caught up: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for &name in &names {
        let r = row(&after, name, 1);
        assert_eq!(r["applied"], 5, "{r}");
        let partitions = r["partitions"].as_array().unwrap();
        let with_events = partitions.iter().filter(|p| p["head"].as_i64() > Some(0));
        assert!(with_events.clone().count() > 0);
        for p in with_events {
            assert_eq!(p["next_offset"], p["head"], "{r}");
        }
    }

    // Versions this build does not run, left in both stores, are listed as inactive.
    let pool = pg_pool(&app.id).await;
    sqlx::query(
        "INSERT INTO projection_positions (projection, version, topic, partition, next_offset) \
         VALUES ('profiles', 2, $1, 0, 1)",
    )
    .bind(&app.topic)
    .execute(&pool)
    .await
    .unwrap();
    let client = redis::Client::open(surge_testkit::redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let version = naming::keys_base(&app.id, "feed", 7);
    let key = naming::positions_key(&naming::partition_keys_base(&version, 0));
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg(naming::position_field(&app.topic, 0))
        .arg(1)
        .query_async(&mut redis)
        .await
        .unwrap();
    let listed = projections(&app);
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    for (name, version) in [("profiles", 2), ("feed", 7)] {
        let r = row(&listed, name, version);
        assert_eq!(r["active"], false, "{r}");
        assert_eq!(r["partitions_started"], 1);
        assert_eq!(r["applied"], 1);
    }
}
