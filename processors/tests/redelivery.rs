//! Re-delivery changes nothing: the runtime's sinks against real PostgreSQL and Redis. A batch
//! delivered again (Kafka re-delivers after a crash or a seek backwards), or overlapping what was
//! applied, leaves every store exactly as one clean pass does; an owner whose generation was
//! superseded is refused, and so is one that applied further than the store holds (the store
//! lost writes).

use std::collections::BTreeMap;

use sqlx::{PgPool, Row};
use surge_processors::projectors::feed::Feed;
use surge_processors::projectors::leaderboard::Leaderboard;
use surge_processors::projectors::profiles::Profiles;
use surge_processors::projectors::wallets::Wallets;
use surge_processors::runtime::{
    Claim, PgSink, Record, RedisProjection, RedisSink, Sink, SinkError,
};
use surge_redis::Redis;
use surge_schemas::{DailyCheckedIn, Envelope, Event, Payload, SessionStarted, TapsSubmitted};
use uuid::Uuid;

const TOPIC: &str = "redelivery.events";
const DAY_MS: i64 = 86_400_000;
const T0: i64 = 1_764_000_000_000;
/// Partitions of the topic (the records are on partition 0).
const PARTITIONS: i32 = 1;

/// A partition's worth of events from three users: sessions, taps, check-ins on several days.
fn records() -> Vec<Record> {
    let mut out = Vec::new();
    for offset in 0..30_i64 {
        let user_id = 1 + offset % 3;
        let occurred_at = T0 + offset * DAY_MS / 5;
        let payload: Payload = match offset % 5 {
            0 => SessionStarted {
                first_name: format!("user {user_id}"),
                last_name: None,
                username: None,
                language_code: None,
                is_premium: false,
                photo_url: None,
                allows_write_to_pm: false,
                start_param: None,
                platform: None,
            }
            .into(),
            1 | 2 => TapsSubmitted {
                count: (offset + 1) as i32,
            }
            .into(),
            _ => DailyCheckedIn {
                day: (occurred_at / DAY_MS) as i32,
            }
            .into(),
        };
        let envelope = Envelope {
            event_id: Uuid::now_v7(),
            user_id,
            occurred_at,
            recorded_at: occurred_at,
        };
        out.push(Record {
            partition: 0,
            offset,
            event: Event { envelope, payload },
        });
    }
    out
}

fn next(records: &[Record]) -> i64 {
    records.last().unwrap().offset + 1
}

/// Every row of the given tables, as text, so two stores can be compared whole.
async fn pg_dump(pool: &PgPool, tables: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for table in tables {
        let rows = sqlx::query(&format!(
            "SELECT row_to_json(t)::text AS r FROM {table} t ORDER BY 1"
        ))
        .fetch_all(pool)
        .await
        .unwrap();
        let mut rows: Vec<String> = rows.iter().map(|r| r.get("r")).collect();
        rows.sort();
        out.insert(table.to_string(), rows);
    }
    out
}

/// Applies `records` once, cleanly, and returns the resulting tables.
async fn pg_clean_pass<S: Sink>(
    sink: S,
    records: &[Record],
    pool: &PgPool,
    tables: &[&str],
) -> BTreeMap<String, Vec<String>> {
    sink.migrate().await.unwrap();
    let claim = sink.claim(TOPIC, &[0]).await.unwrap().remove(0);
    sink.apply(TOPIC, claim, records, next(records))
        .await
        .unwrap();
    pg_dump(pool, tables).await
}

/// Applies a prefix, re-delivers it, re-claims, applies an overlapping rest, and checks a stale
/// owner is fenced.
async fn redeliver<S: Sink>(sink: &S, records: &[Record]) {
    sink.migrate().await.unwrap();
    let first = sink.claim(TOPIC, &[0]).await.unwrap().remove(0);
    assert_eq!(first.next_offset, 0);
    let head = &records[..12];
    sink.apply(TOPIC, first, head, next(head)).await.unwrap();
    let again = sink.apply(TOPIC, first, head, next(head)).await.unwrap();
    assert_eq!(again.events, 0, "a re-delivered batch applies nothing");

    let second = sink.claim(TOPIC, &[0]).await.unwrap().remove(0);
    assert_eq!(
        second.next_offset, 12,
        "a new owner resumes from the stored position"
    );
    assert!(second.generation > first.generation);
    let stale = sink
        .apply(TOPIC, first, &records[12..], next(records))
        .await;
    assert!(
        matches!(stale, Err(SinkError::Fenced)),
        "the old owner is fenced: {stale:?}"
    );
    // An owner that applied up to 20 finds the store at 12 (a failover lost its writes): it is
    // told where the store is, and nothing of its batch is written.
    let ahead = Claim {
        next_offset: 20,
        ..second
    };
    let behind = sink
        .apply(TOPIC, ahead, &records[20..], next(records))
        .await;
    assert!(
        matches!(
            behind,
            Err(SinkError::Behind {
                stored: 12,
                applied: 20
            })
        ),
        "an owner ahead of the store is sent back to it: {behind:?}"
    );
    // An owner whose claim the store lost (its generation went back below the claim's) is
    // told so, not fenced: nobody claimed since. Nothing of its batch is written.
    let unknown = Claim {
        generation: second.generation + 1,
        ..second
    };
    let lost = sink
        .apply(TOPIC, unknown, &records[12..], next(records))
        .await;
    assert!(
        matches!(lost, Err(SinkError::ClaimLost { stored, claimed })
            if stored == second.generation && claimed == unknown.generation),
        "an owner whose claim the store lost is told so: {lost:?}"
    );
    // Kafka seeks back and delivers from offset 5: only 12.. is new.
    let applied = sink
        .apply(TOPIC, second, &records[5..], next(records))
        .await
        .unwrap();
    assert_eq!(applied.events, records.len() - 12);
}

#[tokio::test]
async fn pg_projections_are_unchanged_by_redelivery() {
    let records = records();
    for (name, tables) in [
        (
            "wallets",
            vec![
                "wallets_v1_balances",
                "wallets_v1_ledger",
                "wallets_v1_streaks",
            ],
        ),
        ("profiles", vec!["profiles_v1_users"]),
    ] {
        let (clean, replayed) = (
            surge_testkit::unique_id("redeliv_clean_"),
            surge_testkit::unique_id("redeliv_replay_"),
        );
        let (clean_pool, replay_pool) = (
            surge_testkit::pg_pool_with(&clean, 2).await,
            surge_testkit::pg_pool_with(&replayed, 2).await,
        );
        let (expected, got) = if name == "wallets" {
            let expected = pg_clean_pass(
                PgSink::new(Wallets::at(1), clean_pool.clone()),
                &records,
                &clean_pool,
                &tables,
            )
            .await;
            redeliver(&PgSink::new(Wallets::at(1), replay_pool.clone()), &records).await;
            (expected, pg_dump(&replay_pool, &tables).await)
        } else {
            let expected = pg_clean_pass(
                PgSink::new(Profiles::at(1), clean_pool.clone()),
                &records,
                &clean_pool,
                &tables,
            )
            .await;
            redeliver(&PgSink::new(Profiles::at(1), replay_pool.clone()), &records).await;
            (expected, pg_dump(&replay_pool, &tables).await)
        };
        assert!(
            expected.values().any(|rows| !rows.is_empty()),
            "{name}: the clean pass wrote something"
        );
        assert_eq!(got, expected, "{name}");
        surge_testkit::drop_schema(&clean).await.unwrap();
        surge_testkit::drop_schema(&replayed).await.unwrap();
    }
}

/// `records` with copies of the events at `copied` (same event, same id) inserted after
/// `after` and at the end, renumbered so offsets stay contiguous: what a retried write or a
/// re-emitted derived event leaves in the topic.
fn with_copies(records: &[Record], copied: &[usize], after: usize) -> Vec<Record> {
    let mut out: Vec<Record> = records[..after].to_vec();
    out.extend(copied.iter().map(|&i| records[i].clone()));
    out.extend(records[after..].iter().cloned());
    out.push(records[copied[0]].clone());
    for (offset, record) in out.iter_mut().enumerate() {
        record.offset = offset as i64;
    }
    out
}

/// What the wallets tables say, without the Kafka offsets (which differ when copies shift them).
async fn wallets_dump(pool: &PgPool) -> BTreeMap<String, Vec<String>> {
    let mut out = pg_dump(pool, &["wallets_v1_balances", "wallets_v1_streaks"]).await;
    let ledger = "SELECT concat_ws(' ', event_id, user_id, seq, kind, amount, balance_after) AS r \
                  FROM wallets_v1_ledger ORDER BY 1";
    out.insert("wallets_v1_ledger".into(), column_r(pool, ledger).await);
    out
}

/// Column `r` of every row `sql` returns, in its order.
async fn column_r(pool: &PgPool, sql: &str) -> Vec<String> {
    let rows = sqlx::query(sql).fetch_all(pool).await.unwrap();
    rows.iter().map(|r| r.get("r")).collect()
}

/// Applies `topic` in two batches split at `at` through `sink`.
async fn apply_in_two<S: Sink>(sink: S, topic: &[Record], at: usize) {
    sink.migrate().await.unwrap();
    let claim = sink.claim(TOPIC, &[0]).await.unwrap().remove(0);
    let (first, rest) = topic.split_at(at);
    sink.apply(TOPIC, claim, first, next(first)).await.unwrap();
    sink.apply(TOPIC, claim, rest, next(rest)).await.unwrap();
}

/// A copy of an event later in the partition (a retried write, a re-emitted derived event), in
/// the same batch or a later one, changes nothing: whether the runtime recorded its id (sessions,
/// check-ins) or the projection cannot be changed by it (taps in profiles; everything in
/// wallets, whose ledger is keyed by event id).
#[tokio::test]
async fn a_copy_of_an_event_later_in_the_partition_changes_nothing() {
    let records = records();
    // A session (0), taps (1, 6) and check-ins (3, 4), copied within the first batch and, for
    // the session, once more in the second.
    let topic = with_copies(&records, &[0, 1, 3, 4, 6], 10);
    for name in ["wallets", "profiles"] {
        let (clean, copied) = (
            surge_testkit::unique_id("copies_clean_"),
            surge_testkit::unique_id("copies_copied_"),
        );
        let (clean_pool, copied_pool) = (
            surge_testkit::pg_pool_with(&clean, 2).await,
            surge_testkit::pg_pool_with(&copied, 2).await,
        );
        let (expected, got) = if name == "wallets" {
            apply_in_two(
                PgSink::new(Wallets::at(1), clean_pool.clone()),
                &records,
                12,
            )
            .await;
            apply_in_two(PgSink::new(Wallets::at(1), copied_pool.clone()), &topic, 18).await;
            (
                wallets_dump(&clean_pool).await,
                wallets_dump(&copied_pool).await,
            )
        } else {
            apply_in_two(
                PgSink::new(Profiles::at(1), clean_pool.clone()),
                &records,
                12,
            )
            .await;
            apply_in_two(
                PgSink::new(Profiles::at(1), copied_pool.clone()),
                &topic,
                18,
            )
            .await;
            let tables = ["profiles_v1_users"];
            (
                pg_dump(&clean_pool, &tables).await,
                pg_dump(&copied_pool, &tables).await,
            )
        };
        assert!(
            expected.values().any(|rows| !rows.is_empty()),
            "{name}: the clean pass wrote something"
        );
        assert_eq!(got, expected, "{name}");
        surge_testkit::drop_schema(&clean).await.unwrap();
        surge_testkit::drop_schema(&copied).await.unwrap();
    }
}

/// Every projection key under `prefix` (not the runtime's bookkeeping), with its contents.
async fn redis_dump(conn: &mut Redis, prefix: &str) -> BTreeMap<String, String> {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(conn)
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for key in keys {
        let suffix = key.trim_start_matches(prefix).to_owned();
        if [":positions", ":generations"]
            .iter()
            .any(|s| suffix.ends_with(s))
            || suffix.contains(":seen:")
        {
            continue;
        }
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(conn)
            .await
            .unwrap();
        let value = match kind.as_str() {
            "zset" => format!(
                "{:?}",
                redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query_async::<Vec<String>>(conn)
                    .await
                    .unwrap()
            ),
            "list" => format!(
                "{:?}",
                redis::cmd("LRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .query_async::<Vec<String>>(conn)
                    .await
                    .unwrap()
            ),
            "hash" => format!(
                "{:?}",
                redis::cmd("HGETALL")
                    .arg(&key)
                    .query_async::<BTreeMap<String, String>>(conn)
                    .await
                    .unwrap()
            ),
            other => format!("<{other}>"),
        };
        out.insert(suffix, value);
    }
    out
}

#[tokio::test]
async fn redis_projections_are_unchanged_by_redelivery() {
    let records = records();
    let mut conn = surge_testkit::redis().await;
    for name in ["leaderboard", "feed"] {
        let clean = surge_testkit::unique_id("redeliv_clean_");
        let replayed = surge_testkit::unique_id("redeliv_replay_");
        if name == "leaderboard" {
            let sink = RedisSink::new(Leaderboard, conn.clone(), &clean, 1, PARTITIONS);
            let claim = sink.claim(TOPIC, &[0]).await.unwrap().remove(0);
            sink.apply(TOPIC, claim, &records, next(&records))
                .await
                .unwrap();
            redeliver(
                &RedisSink::new(Leaderboard, conn.clone(), &replayed, 1, PARTITIONS),
                &records,
            )
            .await;
        } else {
            let sink = RedisSink::new(Feed, conn.clone(), &clean, 1, PARTITIONS);
            let claim = sink.claim(TOPIC, &[0]).await.unwrap().remove(0);
            sink.apply(TOPIC, claim, &records, next(&records))
                .await
                .unwrap();
            redeliver(
                &RedisSink::new(Feed, conn.clone(), &replayed, 1, PARTITIONS),
                &records,
            )
            .await;
        }
        let expected = redis_dump(&mut conn, &clean).await;
        let got = redis_dump(&mut conn, &replayed).await;
        assert!(
            !expected.is_empty(),
            "{name}: the clean pass wrote something"
        );
        assert_eq!(got, expected, "{name}");
        surge_testkit::delete_keys(&mut conn, &clean).await.unwrap();
        surge_testkit::delete_keys(&mut conn, &replayed)
            .await
            .unwrap();
    }
}

/// A copy of an event later in the partition changes no Redis projection either: in the same
/// batch, in the next, or two days after the original (seen ids are filed in a set per partition
/// and day, `redis_seen.rs`). A batch three days later unlinks the original's set.
#[tokio::test]
async fn a_copy_of_an_event_within_two_days_changes_no_redis_projection() {
    let conn = surge_testkit::redis().await;
    copies_over_days(conn.clone(), Leaderboard, "leaderboard").await;
    copies_over_days(conn, Feed, "feed").await;
}

/// A batch larger than the runtime sends (it caps a Redis batch at 1,000 events) still checks and
/// files every id: the script takes them in slices, as Lua cannot unpack about 8,000 values at
/// once. Its copies, later in the partition, are all skipped.
#[tokio::test]
async fn a_batch_of_nine_thousand_events_files_every_id_and_its_copies_apply_nothing() {
    let mut conn = surge_testkit::redis().await;
    let prefix = surge_testkit::unique_id("big_batch_");
    let sink = RedisSink::new(Leaderboard, conn.clone(), &prefix, 1, PARTITIONS);
    let claim = sink.claim(TOPIC, &[0]).await.unwrap().remove(0);
    let records: Vec<Record> = (0..9_000_i64)
        .map(|offset| Record {
            partition: 0,
            offset,
            event: Event {
                envelope: Envelope {
                    event_id: Uuid::now_v7(),
                    user_id: 1 + offset % 300,
                    occurred_at: T0 + offset,
                    recorded_at: T0 + offset,
                },
                payload: TapsSubmitted { count: 1 }.into(),
            },
        })
        .collect();
    let applied = sink.apply(TOPIC, claim, &records, 9_000).await.unwrap();
    assert_eq!(applied.events, 9_000);
    let copies: Vec<Record> = (records.iter().cloned())
        .map(|mut r| {
            r.offset += 9_000;
            r
        })
        .collect();
    let applied = sink.apply(TOPIC, claim, &copies, 18_000).await.unwrap();
    assert_eq!(applied.events, 0, "every copy is skipped");
    let score: i64 = redis::cmd("ZSCORE")
        .arg(format!("{prefix}:leaderboard:v1:{{p0}}:all")) // partition 0's shard
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        score, 30,
        "user 1 tapped once in each of 30 events, counted once"
    );
    surge_testkit::delete_keys(&mut conn, &prefix)
        .await
        .unwrap();
}

/// The UTC day the first batches of `copies_over_days` are applied on: in the future, as the
/// sets expire by Redis's clock (`EXPIREAT`).
const DAY: i64 = 40_000;

async fn copies_over_days<P: RedisProjection + Copy>(mut conn: Redis, projection: P, name: &str) {
    let records = records();
    let topic = with_copies(&records, &[0, 1, 3, 4, 6], 10);
    let (clean, copied) = (
        surge_testkit::unique_id("copies_clean_"),
        surge_testkit::unique_id("copies_copied_"),
    );
    let redis = conn.clone();
    let on_day = |day: fn() -> i64| {
        RedisSink::new(projection, redis.clone(), &copied, 1, PARTITIONS).with_clock(day)
    };
    apply_in_two(
        RedisSink::new(projection, redis.clone(), &clean, 1, PARTITIONS).with_clock(|| DAY),
        &records,
        12,
    )
    .await;
    // The first batch holds the originals and the first copies; the last copy comes two days
    // later, through another owner.
    let (first, rest) = topic.split_at(18);
    let sink = on_day(|| DAY);
    let claim = sink.claim(TOPIC, &[0]).await.unwrap().remove(0);
    sink.apply(TOPIC, claim, first, next(first)).await.unwrap();
    let sink = on_day(|| DAY + 2);
    let claim = sink.claim(TOPIC, &[0]).await.unwrap().remove(0);
    let applied = sink.apply(TOPIC, claim, rest, next(rest)).await.unwrap();
    assert_eq!(
        applied.events,
        rest.len() - 1,
        "{name}: the late copy is skipped"
    );

    let expected = redis_dump(&mut conn, &clean).await;
    assert!(
        !expected.is_empty(),
        "{name}: the clean pass wrote something"
    );
    assert_eq!(redis_dump(&mut conn, &copied).await, expected, "{name}");

    let first_day_set = format!("{copied}:{name}:v1:{{p0}}:seen:{TOPIC}:0:{DAY}");
    assert!(
        key_exists(&mut conn, &first_day_set).await,
        "{name}: the first day's ids are kept"
    );
    let sink = on_day(|| DAY + 3);
    let claim = sink.claim(TOPIC, &[0]).await.unwrap().remove(0);
    sink.apply(TOPIC, claim, &[], next(&topic)).await.unwrap();
    assert!(
        !key_exists(&mut conn, &first_day_set).await,
        "{name}: the first day's set is unlinked on the third day after"
    );

    surge_testkit::delete_keys(&mut conn, &clean).await.unwrap();
    surge_testkit::delete_keys(&mut conn, &copied)
        .await
        .unwrap();
}

async fn key_exists(conn: &mut Redis, key: &str) -> bool {
    let n: i64 = redis::cmd("EXISTS")
        .arg(key)
        .query_async(conn)
        .await
        .unwrap();
    n == 1
}

#[path = "redelivery/together.rs"]
mod together;
