//! The Redis projections against a real Redis (`SURGE_REDIS_URL`, default
//! `redis://127.0.0.1:6379`): the folds' writes are executed as plain commands, then read back
//! through `surge_projections`' readers, so writer and reader must agree on every key.
//!
//! Each test gets its own deployment prefix and deletes its keys at the end, so tests run in
//! parallel without sharing state.

use std::collections::HashMap;
use std::future::Future;
use std::panic::{AssertUnwindSafe, resume_unwind};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use surge_processors::decisions::Activity;
use surge_processors::projectors::feed::Feed;
use surge_processors::projectors::leaderboard::Leaderboard;
use surge_processors::runtime::{KeySpace, Record, RedisProjection, RedisWrite};
use surge_projections::feed::{FeedItem, Feeds, feed_page};
use surge_projections::leaderboard::{
    Board, Entry, Period, PeriodKind, Place, places_of, rank_of, top,
};
use surge_projections::partitioning::partition_of_user;
use surge_redis::Redis;
use surge_schemas::{
    DailyCheckedIn, Envelope, Event, Payload, ProfileUpdated, ReferralCredited, SessionStarted,
    TapsSubmitted,
};
use uuid::Uuid;

const DAY_MS: i64 = 86_400_000;
/// Partitions of the events topic the records come from: a user's records are on their
/// partition, as the write API's producer puts them, so the leaderboard's shards spread them.
const PARTITIONS: i32 = 4;

/// A connection and a key prefix of one's own.
struct Ctx {
    conn: Redis,
    prefix: String,
    next_id: u128,
}

impl Ctx {
    fn keys<P: RedisProjection>(&self) -> KeySpace {
        KeySpace::new(&self.prefix, P::NAME, 1)
    }

    fn record(&mut self, user_id: i64, occurred_at: i64, payload: impl Into<Payload>) -> Record {
        self.next_id += 1;
        Record {
            partition: partition_of_user(user_id, PARTITIONS),
            offset: self.next_id as i64,
            event: Event {
                envelope: Envelope {
                    event_id: Uuid::from_u128(self.next_id),
                    user_id,
                    occurred_at,
                    recorded_at: occurred_at,
                },
                payload: payload.into(),
            },
        }
    }

    /// Folds `records` in order, threading each user's state as the runtime does, and runs the
    /// writes as plain Redis commands.
    async fn apply<P: RedisProjection>(&mut self, projection: &P, records: &[Record]) {
        let keys = self.keys::<P>();
        let mut states: HashMap<i64, P::State> = HashMap::new();
        let mut pipe = redis::pipe();
        for record in records {
            let state = states.entry(record.event.envelope.user_id).or_default();
            // The sink hands the fold its record's partition's key space.
            let writes = projection
                .writes(state, record, &keys.partition(record.partition))
                .expect("the fold applies");
            for write in writes {
                match write {
                    RedisWrite::ZIncrBy { key, member, by } => pipe.zincr(key, member, by),
                    RedisWrite::LPush { key, value } => pipe.lpush(key, value),
                    RedisWrite::LTrim { key, start, stop } => {
                        pipe.ltrim(key, start as isize, stop as isize)
                    }
                    RedisWrite::ExpireAt { key, unix_secs } => pipe.expire_at(key, unix_secs),
                    RedisWrite::HSet { key, field, value } => pipe.hset(key, field, value),
                };
            }
        }
        pipe.query_async::<()>(&mut self.conn)
            .await
            .expect("Redis runs the writes");
    }
}

/// The leaderboard under `base`, a shard per partition of [`PARTITIONS`].
fn board(base: &str) -> Board<'_> {
    Board {
        base,
        partitions: PARTITIONS,
    }
}

/// Runs `test` with a fresh prefix, then deletes the prefix's keys, whether it passed or not.
async fn with_redis<F, Fut>(test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut conn = surge_testkit::redis().await;
    let prefix = surge_testkit::unique_id("surge_test_");
    let ctx = Ctx {
        conn: conn.clone(),
        prefix: prefix.clone(),
        next_id: 0,
    };
    let outcome = AssertUnwindSafe(test(ctx)).catch_unwind().await;
    surge_testkit::delete_keys(&mut conn, &prefix)
        .await
        .expect("deleting the test's keys");
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}

/// The key's absolute expiry in Unix seconds: -1 for none, -2 for no such key.
async fn expire_time(conn: &mut Redis, key: String) -> i64 {
    redis::cmd("EXPIRETIME")
        .arg(key)
        .query_async(conn)
        .await
        .expect("EXPIRETIME")
}

fn now_ms() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(since_epoch.as_millis()).expect("fits")
}

fn session(username: Option<&str>, first_name: &str) -> SessionStarted {
    SessionStarted {
        first_name: first_name.to_owned(),
        last_name: None,
        username: username.map(str::to_owned),
        language_code: None,
        is_premium: false,
        photo_url: None,
        allows_write_to_pm: false,
        start_param: None,
        platform: Some("android".to_owned()),
    }
}

fn entry(rank: u64, user_id: i64, score: i64, name: Option<&str>) -> Entry {
    Entry {
        rank,
        user_id,
        score,
        name: name.map(str::to_owned),
    }
}

const ALICE: i64 = 1001;
const BOB: i64 = 1002;
const CAROL: i64 = 1003;
const DAVE: i64 = 1004;

#[tokio::test]
async fn leaderboards_rank_what_the_fold_wrote_with_names_and_expiry() {
    with_redis(|mut ctx| async move {
        let now = now_ms();
        let today = i32::try_from(now.div_euclid(DAY_MS)).expect("fits");
        let long_ago = now - 8 * DAY_MS;
        let records = vec![
            ctx.record(ALICE, now, session(Some("alice"), "Alice")),
            ctx.record(ALICE, now, TapsSubmitted { count: 50 }),
            ctx.record(ALICE, now, DailyCheckedIn { day: today }),
            ctx.record(BOB, now, session(None, "Bob")),
            ctx.record(
                BOB,
                now,
                ProfileUpdated {
                    display_name: Some("Bobby".to_owned()),
                    language_code: None,
                    photo_url: None,
                },
            ),
            ctx.record(BOB, now, TapsSubmitted { count: 120 }),
            ctx.record(
                BOB,
                now,
                ReferralCredited {
                    referred_user_id: CAROL,
                    source_event_id: Uuid::from_u128(7),
                },
            ),
            // Carol ties with Alice and has no session, so no name.
            ctx.record(CAROL, now, TapsSubmitted { count: 150 }),
            // Dave played eight days ago only: all time and that old week, and his day is gone.
            ctx.record(DAVE, long_ago, TapsSubmitted { count: 1000 }),
        ];
        ctx.apply(&Leaderboard, &records).await;
        let base = ctx.keys::<Leaderboard>().base().to_owned();
        let board = board(&base);
        // The shard of `suffix` holding `user`.
        let key = |suffix: &str, user| board.key(suffix, partition_of_user(user, PARTITIONS));
        let conn = &mut ctx.conn;
        let daily = Period::containing(PeriodKind::Daily, now).expect("today");
        let weekly = Period::containing(PeriodKind::Weekly, now).expect("this week");

        let all_time = top(conn, board, Period::AllTime, 10)
            .await
            .expect("top all");
        // Equal scores rank by shard, then member, descending: Carol's shard (1) before
        // Alice's (0).
        assert_eq!(
            all_time,
            vec![
                entry(1, DAVE, 1000, None),
                entry(2, BOB, 620, Some("Bobby")),
                entry(3, CAROL, 150, None),
                entry(4, ALICE, 150, Some("alice")),
            ]
        );
        assert_eq!(
            top(conn, board, Period::AllTime, 2).await.expect("top 2"),
            all_time[..2]
        );
        assert_eq!(
            top(conn, board, daily, 10).await.expect("top daily"),
            vec![
                entry(1, BOB, 620, Some("Bobby")),
                entry(2, CAROL, 150, None),
                entry(3, ALICE, 150, Some("alice")),
            ]
        );
        assert_eq!(
            top(conn, board, weekly, 10)
                .await
                .expect("top weekly")
                .len(),
            3,
            "Dave is not in this week"
        );
        assert_eq!(
            top(conn, board, Period::AllTime, 0).await.expect("top 0"),
            vec![]
        );

        for expected in &all_time {
            let standing = rank_of(conn, board, Period::AllTime, expected.user_id)
                .await
                .expect("rank");
            assert_eq!(standing.as_ref(), Some(expected), "top and rank_of agree");
        }
        assert_eq!(rank_of(conn, board, daily, DAVE).await.expect("rank"), None);
        assert_eq!(
            rank_of(conn, board, Period::AllTime, 9999)
                .await
                .expect("rank"),
            None
        );

        // Period sets expire at their absolute deadlines; all time and names never do.
        assert_eq!(
            expire_time(conn, key(&daily.suffix(), BOB)).await,
            daily.expires_at().expect("deadline")
        );
        assert_eq!(
            expire_time(conn, key(&weekly.suffix(), BOB)).await,
            weekly.expires_at().expect("deadline")
        );
        assert_eq!(expire_time(conn, key("all", ALICE)).await, -1);
        assert_eq!(expire_time(conn, key("names", ALICE)).await, -1);
        let old_day = Period::containing(PeriodKind::Daily, long_ago).expect("old day");
        let old_week = Period::containing(PeriodKind::Weekly, long_ago).expect("old week");
        assert_eq!(
            expire_time(conn, key(&old_day.suffix(), DAVE)).await,
            -2,
            "an expired day's set is gone"
        );
        assert_eq!(
            rank_of(conn, board, old_week, DAVE).await.expect("rank"),
            Some(entry(1, DAVE, 1000, None)),
            "a week ended under two weeks ago is still readable"
        );
    })
    .await;
}

/// Sixty users on three scores, spread over the shards: `top` merges the shards by score, then
/// (equal scores) shard, then the user id's string, all descending, and `rank_of` and
/// `places_of` count the same places, with ties within and across shards.
#[tokio::test]
async fn the_shards_merge_into_one_order_that_every_reader_agrees_on() {
    with_redis(|mut ctx| async move {
        let now = now_ms();
        let users: Vec<i64> = (1..=60).map(|i| 5000 + i * 7).collect();
        let mut records = Vec::new();
        for (i, &user) in users.iter().enumerate() {
            let count = [10, 20, 30][i % 3];
            records.push(ctx.record(user, now, TapsSubmitted { count }));
        }
        let shards: std::collections::HashSet<i32> = (users.iter())
            .map(|&user| partition_of_user(user, PARTITIONS))
            .collect();
        assert_eq!(shards.len(), PARTITIONS as usize, "every shard holds some");
        ctx.apply(&Leaderboard, &records).await;
        let base = ctx.keys::<Leaderboard>().base().to_owned();
        let board = board(&base);
        let conn = &mut ctx.conn;

        let all = top(conn, board, Period::AllTime, 1000).await.expect("top");
        let score_of: HashMap<i64, i64> = all.iter().map(|e| (e.user_id, e.score)).collect();
        assert_eq!(score_of.len(), users.len(), "everyone is on the board");
        let distinct: std::collections::HashSet<i64> = score_of.values().copied().collect();
        assert_eq!(distinct.len(), 3, "three scores, twenty users each");
        let mut expected: Vec<(i64, i32, String)> = (users.iter())
            .map(|&user| {
                let partition = partition_of_user(user, PARTITIONS);
                (score_of[&user], partition, user.to_string())
            })
            .collect();
        expected.sort_by(|a, b| b.cmp(a));
        let merged: Vec<(i64, i32, String)> = (all.iter())
            .map(|e| {
                let partition = partition_of_user(e.user_id, PARTITIONS);
                (e.score, partition, e.user_id.to_string())
            })
            .collect();
        assert_eq!(merged, expected);
        assert!(all.iter().zip(1..).all(|(e, rank)| e.rank == rank));
        assert_eq!(
            top(conn, board, Period::AllTime, 7).await.expect("top 7"),
            all[..7]
        );

        for entry in &all {
            let standing = rank_of(conn, board, Period::AllTime, entry.user_id)
                .await
                .expect("rank");
            assert_eq!(standing.as_ref(), Some(entry), "top and rank_of agree");
        }
        let places = places_of(conn, board, &[Period::AllTime], &users)
            .await
            .expect("places");
        for (user, of_user) in users.iter().zip(&places) {
            let entry = all.iter().find(|e| e.user_id == *user).expect("ranked");
            assert_eq!(
                of_user[..],
                [Some(Place {
                    rank: entry.rank,
                    score: entry.score
                })],
                "user {user}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn feed_pages_follow_an_event_id_cursor_newest_first() {
    const USER: i64 = 2001;
    with_redis(|mut ctx| async move {
        let now = now_ms();
        let mut records: Vec<Record> = (1..=7)
            .map(|count| ctx.record(USER, now + i64::from(count), TapsSubmitted { count }))
            .collect();
        ctx.apply(&Feed, &records).await;
        let base = ctx.keys::<Feed>().base().to_owned();
        let feeds = Feeds {
            base: &base,
            partitions: PARTITIONS,
        };
        let conn = &mut ctx.conn;
        let counts = |items: &[String]| -> Vec<i32> {
            items
                .iter()
                .map(|item| {
                    match serde_json::from_str::<FeedItem<Activity>>(item)
                        .expect("a feed item")
                        .activity
                    {
                        Activity::Taps { count } => count,
                        other => panic!("not taps: {other:?}"),
                    }
                })
                .collect()
        };

        let first = feed_page(conn, feeds, USER, None, 3).await.expect("page 1");
        assert_eq!(counts(&first.items), [7, 6, 5]);
        assert_eq!(first.next, Some(records[4].event.envelope.event_id));

        // New activity arrives between page reads; the cursor keeps page 2 where it was.
        let newer: Vec<Record> = (8..=9)
            .map(|count| ctx.record(USER, now + i64::from(count), TapsSubmitted { count }))
            .collect();
        ctx.apply(&Feed, &newer).await;
        records.extend(newer);
        let conn = &mut ctx.conn;
        let second = feed_page(conn, feeds, USER, first.next, 3)
            .await
            .expect("page 2");
        assert_eq!(counts(&second.items), [4, 3, 2]);
        let third = feed_page(conn, feeds, USER, second.next, 3)
            .await
            .expect("page 3");
        assert_eq!(counts(&third.items), [1]);
        assert_eq!(third.next, None);

        let whole = feed_page(conn, feeds, USER, None, 9)
            .await
            .expect("exactly all");
        assert_eq!(counts(&whole.items), [9, 8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(whole.next, None, "a page that ends the feed has no next");

        let unknown = feed_page(conn, feeds, USER, Some(Uuid::from_u128(u128::MAX)), 3)
            .await
            .expect("unknown");
        assert_eq!((unknown.items.len(), unknown.next), (0, None));
        let nobody = feed_page(conn, feeds, 2002, None, 3)
            .await
            .expect("empty feed");
        assert_eq!((nobody.items.len(), nobody.next), (0, None));
    })
    .await;
}

#[tokio::test]
async fn feeds_keep_the_newest_200_items() {
    const USER: i64 = 3001;
    with_redis(|mut ctx| async move {
        let now = now_ms();
        let records: Vec<Record> = (1..=205)
            .map(|count| ctx.record(USER, now, TapsSubmitted { count }))
            .collect();
        ctx.apply(&Feed, &records).await;
        let base = ctx.keys::<Feed>().base().to_owned();
        let feeds = Feeds {
            base: &base,
            partitions: PARTITIONS,
        };
        let conn = &mut ctx.conn;

        let len: usize = redis::cmd("LLEN")
            .arg(feeds.key(USER))
            .query_async(conn)
            .await
            .expect("LLEN");
        assert_eq!(len, 200);
        let page = feed_page(conn, feeds, USER, None, 1000)
            .await
            .expect("page");
        assert_eq!(page.items.len(), 200, "the limit is cut to the cap");
        assert_eq!(page.next, None);
        let id_of = |item: &str| {
            serde_json::from_str::<FeedItem<Activity>>(item)
                .expect("item")
                .event_id
        };
        assert_eq!(
            id_of(&page.items[0]),
            records[204].event.envelope.event_id,
            "newest first"
        );
        assert_eq!(
            id_of(&page.items[199]),
            records[5].event.envelope.event_id,
            "oldest kept"
        );

        let trimmed = records[2].event.envelope.event_id;
        let after_trimmed = feed_page(conn, feeds, USER, Some(trimmed), 10)
            .await
            .expect("page");
        assert_eq!(
            after_trimmed.items.len(),
            0,
            "nothing older than a trimmed item is left"
        );
    })
    .await;
}

/// The top of a board whose best players all sit in one shard: the first read asks each shard
/// for a little over its share, so that shard is read again, and the top is still the order one
/// set would give.
#[tokio::test]
async fn a_top_held_by_one_shard_is_read_whole() {
    with_redis(|mut ctx| async move {
        let now = now_ms();
        let in_shard_0: Vec<i64> = (6000..)
            .filter(|&user| partition_of_user(user, PARTITIONS) == 0)
            .take(30)
            .collect();
        let elsewhere: Vec<i64> = (7000..)
            .filter(|&user| partition_of_user(user, PARTITIONS) != 0)
            .take(30)
            .collect();
        let mut records = Vec::new();
        for (i, &user) in in_shard_0.iter().enumerate() {
            let count = 100 + i as i32;
            records.push(ctx.record(user, now, TapsSubmitted { count }));
        }
        for &user in &elsewhere {
            records.push(ctx.record(user, now, TapsSubmitted { count: 1 }));
        }
        ctx.apply(&Leaderboard, &records).await;
        let base = ctx.keys::<Leaderboard>().base().to_owned();
        let board = board(&base);
        let conn = &mut ctx.conn;
        let all = top(conn, board, Period::AllTime, 1000).await.expect("top");
        assert_eq!(all.len(), 60);
        let best = top(conn, board, Period::AllTime, 35).await.expect("top 35");
        assert_eq!(best, all[..35]);
        let users: Vec<i64> = best.iter().map(|e| e.user_id).collect();
        let expected: Vec<i64> = in_shard_0.iter().rev().copied().collect();
        assert_eq!(users[..30], expected, "shard 0's thirty, best first");
    })
    .await;
}
