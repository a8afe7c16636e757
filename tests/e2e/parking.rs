//! Per-user parking end to end: an event the store refuses for a constraint (SQLSTATE 23514) is
//! dead-lettered with the store's reason and parks its user's later events for that projection,
//! in order, while everyone else (the same partition included) flows; `surge dlq retry` applies
//! them once the fix is deployed, in order and exactly once, while the processor keeps running.

use serde_json::Value;
use sqlx::Row;
use surge_projections::naming;

use crate::fold::fold_topic;
use crate::helpers::{PARTITIONS, TestApp, header, java_partition, pg_pool, spawn_app};
use crate::poison::{dlq, parked, photo_of, produce_photo};
use crate::processing::{processor, read_topic, traffic};
use crate::projected::{assert_projections_equal_fold, wait_caught_up};

async fn sessions_of(app: &TestApp, user: i64) -> i32 {
    let pool = pg_pool(&app.id).await;
    sqlx::query("SELECT sessions_count FROM profiles_v1_users WHERE user_id = $1")
        .bind(user)
        .fetch_one(&pool)
        .await
        .unwrap()
        .get::<i64, _>("sessions_count") as i32
}

#[tokio::test]
async fn a_check_violation_parks_the_users_later_events_until_the_fix_and_a_retry() {
    let writer = spawn_app().await;
    let processor = processor(&writer);
    traffic(&writer, 1..5, 0).await;
    wait_caught_up(&writer, &[&processor]).await;

    // An operator's rule, deployed as a constraint: profile photos are served over https only.
    let pool = pg_pool(&writer.id).await;
    let constraint = "photo_is_https";
    sqlx::query(&format!(
        "ALTER TABLE profiles_v1_users ADD CONSTRAINT {constraint} \
         CHECK (photo_url IS NULL OR photo_url LIKE 'https://%')"
    ))
    .execute(&pool)
    .await
    .unwrap();

    let user = 2;
    let partition = java_partition(&user.to_string(), PARTITIONS);
    let neighbour = (1000..)
        .find(|u: &i64| java_partition(&u.to_string(), PARTITIONS) == partition)
        .unwrap();
    let refused = produce_photo(&writer, partition, user, "http://t.me/i/2.jpg").await;
    let neighbours_url = "https://t.me/i/neighbour.jpg";
    produce_photo(&writer, partition, neighbour, neighbours_url).await;
    traffic(&writer, 1..5, 1).await;
    let last_url = "https://t.me/i/2-later.jpg";
    let last = produce_photo(&writer, partition, user, last_url).await;
    wait_caught_up(&writer, &[&processor]).await;

    // Dead-lettered with PostgreSQL's reason; the same partition's other user and every other
    // user were applied.
    let dead = read_topic(&writer, &naming::dead_letter_topic(&writer.topic), 1);
    let reason = header(&dead[0], "surge-dlq-reason").unwrap();
    assert!(
        reason.contains("violates check constraint") && reason.contains(constraint),
        "the reason names the constraint: {reason}"
    );
    assert_eq!(
        photo_of(&writer, neighbour).await.as_deref(),
        Some(neighbours_url)
    );
    for other in [1, 3, 4] {
        assert_eq!(sessions_of(&writer, other).await, 2, "user {other} flows");
    }

    // The user's later events wait, in order, behind the refused one.
    let held = parked(&writer, "profiles.v1");
    assert_eq!(held[0]["event_id"], refused.to_string());
    assert!(held[0]["reason"].as_str().unwrap().contains(constraint));
    assert_eq!(held.last().unwrap()["event_id"], last.to_string());
    assert!(held.iter().all(|p| p["user_id"] == user), "{held:?}");
    assert!(held[1..].iter().all(|p| p["reason"] == Value::Null));
    assert_eq!(
        sessions_of(&writer, user).await,
        1,
        "the round-1 session waits"
    );
    assert_eq!(photo_of(&writer, user).await, None);

    // Retried before the fix: refused again, nothing moves, and the command says so.
    let (ok, out) = dlq(&writer, &["retry", "profiles"]);
    assert!(!ok, "a retry that applies nothing fails: {out}");
    assert!(
        out.contains("rejected again") && out.contains(constraint),
        "{out}"
    );
    assert_eq!(parked(&writer, "profiles.v1").len(), held.len());

    // The fix is deployed (the rule goes), and the retry applies everything, in order.
    sqlx::query(&format!(
        "ALTER TABLE profiles_v1_users DROP CONSTRAINT {constraint}"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let (ok, out) = dlq(&writer, &["retry", "profiles"]);
    assert!(ok, "{out}");
    let applied = format!("profiles.v1 user {user}: {} applied, 0 skipped", held.len());
    assert!(out.contains(&applied), "{out}");
    assert!(parked(&writer, "profiles.v1").is_empty());
    assert_eq!(photo_of(&writer, user).await.as_deref(), Some(last_url));
    assert_eq!(sessions_of(&writer, user).await, 2);

    // Exactly once: nothing is left to apply, and every projection equals the fold.
    let (ok, out) = dlq(&writer, &["retry", "profiles", "--user", &user.to_string()]);
    assert!(ok && out.contains("nothing was parked"), "{out}");
    let expected = fold_topic(&writer, writer.record_count() as usize).await;
    assert_projections_equal_fold(&writer, &expected).await;
    drop(processor);
}
