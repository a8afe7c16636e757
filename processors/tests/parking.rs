//! Per-user parking in the Redis sink, against a real Redis (`SURGE_REDIS_URL`, default
//! `redis://127.0.0.1:6379`): a dead-lettered event parks its user's later events in the same
//! script as the batch, nobody else's; a release applies or drops them in order, exactly once,
//! and keeps an event the projection rejects again first, with the new reason.
//!
//! The batches are handed to the sink as the runtime's applier hands them after a dead letter
//! (the poisoned event out of the records, into the parked heads).

use surge_processors::projectors::leaderboard::Leaderboard;
use surge_processors::runtime::{Parked, Record, RedisSink, Release, Released, Sink};
use surge_projections::naming;
use surge_redis::Redis;
use surge_schemas::{Envelope, Event, TapsSubmitted};
use uuid::Uuid;

const TOPIC: &str = "surge.events";
const NOW_MS: i64 = 1_764_000_000_000;
/// Partitions of the topic; the records are on partition 0, and listing the parked events
/// reads every partition's.
const PARTITIONS: i32 = 2;

fn taps(offset: i64, user_id: i64, occurred_at: i64, count: i32) -> Record {
    Record {
        partition: 0,
        offset,
        event: Event {
            envelope: Envelope {
                event_id: Uuid::now_v7(),
                user_id,
                occurred_at,
                recorded_at: NOW_MS,
            },
            payload: TapsSubmitted { count }.into(),
        },
    }
}

async fn score(conn: &mut Redis, prefix: &str, user: i64) -> Option<i64> {
    redis::cmd("ZSCORE")
        // The records are on partition 0: its shard.
        .arg(naming::partition_keys_base(&naming::keys_base(prefix, "leaderboard", 1), 0) + ":all")
        .arg(user)
        .query_async(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_dead_letter_parks_its_users_later_events_until_released_in_order_exactly_once() {
    let mut conn = surge_testkit::redis().await;
    let prefix = surge_testkit::unique_id("surge_parking_");
    let sink = RedisSink::new(Leaderboard, conn.clone(), &prefix, 1, PARTITIONS);
    let claim = sink.claim(TOPIC, &[0]).await.unwrap().remove(0);

    // Offset 1 is user 7's event the leaderboard rejects (no day holds that instant).
    let poisoned = taps(1, 7, i64::MAX, 1000);
    let dead = [Parked::of(&poisoned, Some("no period holds it".into()))];
    let batch = [
        taps(0, 7, NOW_MS, 1),
        taps(2, 8, NOW_MS, 2),
        taps(3, 7, NOW_MS, 3),
    ];
    let applied = sink
        .apply_parking(TOPIC, claim, &batch, &dead, 4)
        .await
        .unwrap();
    assert_eq!((applied.events, applied.parked), (2, 2));
    // A later batch: the user is still parked, the other user flows.
    let later = [taps(4, 7, NOW_MS, 4), taps(5, 8, NOW_MS, 5)];
    sink.apply(TOPIC, claim, &later, 6).await.unwrap();
    assert_eq!(score(&mut conn, &prefix, 7).await, Some(1));
    assert_eq!(score(&mut conn, &prefix, 8).await, Some(7));

    let parked = sink.parked().await.unwrap();
    let offsets: Vec<i64> = parked.iter().map(|p| p.offset).collect();
    assert_eq!(
        offsets,
        [1, 3, 4],
        "the dead letter first, then the rest in order"
    );
    assert_eq!(parked[0].reason.as_deref(), Some("no period holds it"));
    assert!(parked[1..].iter().all(|p| p.reason.is_none()));

    // Retried while the projection still rejects it: it stays first, with the new reason.
    let again = sink.release(TOPIC, 7, Release::Retry).await.unwrap();
    assert_eq!(again.applied, 0);
    assert_eq!(again.still_parked, 3);
    assert!(
        again
            .rejected
            .as_deref()
            .unwrap()
            .contains("outside the calendar"),
        "{again:?}"
    );
    assert_eq!(sink.parked().await.unwrap().len(), 3);
    assert_eq!(score(&mut conn, &prefix, 7).await, Some(1));

    // Skipped: the dead letter goes, the rest applies in order, and the user flows again.
    let skipped = sink.release(TOPIC, 7, Release::Skip).await.unwrap();
    let expected = Released {
        applied: 2,
        skipped: 1,
        ..Released::default()
    };
    assert_eq!(skipped, expected);
    assert!(sink.parked().await.unwrap().is_empty());
    assert_eq!(score(&mut conn, &prefix, 7).await, Some(1 + 3 + 4));
    sink.apply(TOPIC, claim, &[taps(6, 7, NOW_MS, 10)], 7)
        .await
        .unwrap();
    assert_eq!(score(&mut conn, &prefix, 7).await, Some(18));

    // Exactly once: nothing is left to release, and nothing is applied twice.
    let nothing = sink.release(TOPIC, 7, Release::Retry).await.unwrap();
    assert_eq!(nothing, Released::default());
    assert_eq!(score(&mut conn, &prefix, 7).await, Some(18));
    surge_testkit::delete_keys(&mut conn, &prefix)
        .await
        .unwrap();
}
