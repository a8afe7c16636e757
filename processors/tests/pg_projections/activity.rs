//! The activity projection: per-minute counts and active users equal a fold over the events,
//! across batches and days; retention drops whole day partitions; too-old events are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use surge_processors::projectors::activity::Activity;
use surge_projections::activity::{ActivityStore, Layout, MS_PER_DAY, day_of, partition_name};

use super::*;

const CENTURY: Duration = Duration::from_secs(100 * 365 * 86_400);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Records at the given recorded_at instants, one partition, ascending offsets.
fn at_times(events: Vec<(i64, i64, Payload)>) -> Vec<Record> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, (at, user_id, payload))| Record {
            partition: 0,
            offset: i as i64,
            event: Event {
                envelope: Envelope {
                    event_id: Uuid::now_v7(),
                    user_id,
                    occurred_at: at,
                    recorded_at: at,
                },
                payload,
            },
        })
        .collect()
}

fn store() -> ActivityStore {
    ActivityStore::new(&Activity::new(1, CENTURY).table_prefix())
}

async fn partitions(db: &TestDb) -> BTreeSet<String> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind = 'r'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    names.into_iter().collect()
}

#[tokio::test]
async fn counts_and_active_users_equal_a_fold_over_the_events_across_batches_and_days() {
    let db = TestDb::new().await;
    db.migrate::<Activity>().await;
    let activity = Activity::new(1, CENTURY);
    // Three users over two days, minute boundaries included, in two batches.
    let day = day_of(T0);
    let midnight = i64::from(day + 1) * MS_PER_DAY;
    let events = vec![
        (midnight - 61_000, ALICE, session("Alice", None)),
        (midnight - 60_001, ALICE, taps(3)),
        (midnight - 60_000, BOB, taps(1)),
        (midnight - 1, ALICE, taps(2)),
        (midnight, ALICE, taps(2)),
        (midnight + 5, CAROL, checkin(day + 1)),
        (midnight + 59_999, CAROL, taps(9)),
        (midnight + 60_000, BOB, credit(CAROL)),
    ];
    let records = at_times(events);
    let (first, second) = records.split_at(3);
    db.apply(&activity, first).await.unwrap();
    db.apply(&activity, second).await.unwrap();

    let mut expected_minutes: BTreeMap<(i64, String), i64> = BTreeMap::new();
    let mut expected_active: BTreeMap<i32, BTreeSet<i64>> = BTreeMap::new();
    for r in &records {
        let at = r.event.envelope.recorded_at;
        let name = r.event.payload.event_type().name().to_owned();
        *expected_minutes
            .entry((at.div_euclid(60_000) * 60, name))
            .or_default() += 1;
        expected_active
            .entry(day_of(at))
            .or_default()
            .insert(r.event.envelope.user_id);
    }

    let store = store();
    let from = i64::from(day) * 86_400;
    let minutes = store
        .per_minute(&db.pool, from, from + 2 * 86_400)
        .await
        .unwrap();
    let got: BTreeMap<(i64, String), i64> = minutes
        .into_iter()
        .map(|m| ((m.minute, m.event_type), m.events))
        .collect();
    assert_eq!(got, expected_minutes);

    let daily = store
        .daily_active(&db.pool, day - 5, day + 5)
        .await
        .unwrap();
    let expected_daily: Vec<(i32, i64)> = expected_active
        .iter()
        .map(|(d, users)| (*d, users.len() as i64))
        .collect();
    assert_eq!(daily, expected_daily);
    assert_eq!(daily, vec![(day, 2), (day + 1, 3)]);
    assert_eq!(
        store.distinct_active(&db.pool, day, day + 2).await.unwrap(),
        3
    );
    assert_eq!(
        store.distinct_active(&db.pool, day, day + 1).await.unwrap(),
        2
    );

    let mut conn = db.pool.acquire().await.unwrap();
    assert_eq!(store.layout(&mut conn).await.unwrap(), Layout::Partitioned);
    let names = partitions(&db).await;
    for table in ["activity_v1_per_minute", "activity_v1_daily_users"] {
        for d in [day, day + 1] {
            assert!(
                names.contains(&partition_name(table, d).unwrap()),
                "{names:?}"
            );
        }
    }
}

#[tokio::test]
async fn retention_drops_whole_old_days_and_keeps_recent_ones() {
    let db = TestDb::new().await;
    db.migrate::<Activity>().await;
    let now = now_ms();
    let old = now - 10 * MS_PER_DAY;
    db.apply(
        &Activity::new(1, CENTURY),
        &at_times(vec![(old, ALICE, taps(1)), (now, BOB, taps(1))]),
    )
    .await
    .unwrap();
    assert_eq!(partitions(&db).await.len(), 4);

    Activity::new(1, Duration::from_secs(5 * 86_400))
        .maintain(&db.pool)
        .await
        .unwrap();

    let names = partitions(&db).await;
    assert_eq!(
        names,
        ["activity_v1_per_minute", "activity_v1_daily_users"]
            .iter()
            .map(|t| partition_name(t, day_of(now)).unwrap())
            .collect::<BTreeSet<_>>()
    );
    let store = store();
    let daily = store
        .daily_active(&db.pool, day_of(old) - 1, day_of(now) + 1)
        .await
        .unwrap();
    assert_eq!(daily, vec![(day_of(now), 1)]);
    // The projector goes on writing after a drop, recreating a day it needs.
    db.apply(
        &Activity::new(1, CENTURY),
        &at_times(vec![(now, ALICE, taps(1))]),
    )
    .await
    .unwrap();
    let daily = store
        .daily_active(&db.pool, day_of(now), day_of(now) + 1)
        .await
        .unwrap();
    assert_eq!(daily, vec![(day_of(now), 2)]);
}

#[tokio::test]
async fn events_older_than_retention_are_not_recorded() {
    let db = TestDb::new().await;
    db.migrate::<Activity>().await;
    let now = now_ms();
    let activity = Activity::new(1, Duration::from_secs(2 * 86_400));
    db.apply(
        &activity,
        &at_times(vec![
            (now - 30 * MS_PER_DAY, ALICE, taps(1)),
            (now, BOB, taps(1)),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(
        partitions(&db).await.len(),
        2,
        "no partition for the old day"
    );
    let daily = store()
        .daily_active(&db.pool, day_of(now) - 40, day_of(now) + 1)
        .await
        .unwrap();
    assert_eq!(daily, vec![(day_of(now), 1)]);
}

#[tokio::test]
async fn two_processors_creating_the_same_day_at_once_both_commit() {
    let db = TestDb::new().await;
    db.migrate::<Activity>().await;
    let now = now_ms();
    // Separate projector instances, as in two processes: neither knows the day exists.
    let (one, two) = (Activity::new(1, CENTURY), Activity::new(1, CENTURY));
    let (alice, bob) = (
        at_times(vec![(now, ALICE, taps(1))]),
        at_times(vec![(now, BOB, taps(1))]),
    );
    let (first, second) = tokio::join!(db.apply(&one, &alice), db.apply(&two, &bob));
    first.unwrap();
    second.unwrap();
    let daily = store()
        .daily_active(&db.pool, day_of(now), day_of(now) + 1)
        .await
        .unwrap();
    assert_eq!(daily, vec![(day_of(now), 2)]);
}
