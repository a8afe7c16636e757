//! The data every target serves: a daily leaderboard of 10 000 named players and a 50-item feed,
//! written in the projections' own key layout under a key prefix of this run, and removed after.

use anyhow::Context;
use redis::aio::ConnectionManager;
use sqlx::migrate::MigrateDatabase;
use surge_projections::ProjectionId;
use surge_projections::feed::{FeedItem, Feeds, rfc3339_millis};
use surge_projections::leaderboard::{Board, NAMES_SUFFIX, Period, PeriodKind};
use surge_projections::naming::keys_base;
use surge_projections::partitioning::partition_of_user;
use surge_telegram_auth::{InitDataBuilder, WebAppUser};

use super::load::Request;

pub(crate) const BOT_TOKEN: &str = "7000000042:AAbench-token-for-the-query-api";
pub(crate) const PLAYERS: i64 = 10_000;
/// Partitions of the events topic the query API is told: the leaderboard's shards.
pub(crate) const PARTITIONS: i32 = 12;
pub(crate) const FEED_USER: i64 = 42;
const FEED_ITEMS: usize = 50;
const TOP: usize = 100;
const PAGE: usize = 20;

pub(crate) struct Fixture {
    pub(crate) prefix: String,
    pub(crate) database_url: String,
    pub(crate) redis_url: String,
    redis: ConnectionManager,
    daily_key: String,
    feed_key: String,
}

impl Fixture {
    pub(crate) async fn create(database_url: &str, redis_url: &str) -> anyhow::Result<Fixture> {
        if !sqlx::Postgres::database_exists(database_url).await? {
            sqlx::Postgres::create_database(database_url).await?;
        }
        let client = redis::Client::open(redis_url)?;
        let mut redis = ConnectionManager::new(client)
            .await
            .context("Redis at SURGE_REDIS_URL")?;
        let prefix = format!("benchq{}", std::process::id());
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as i64;
        let period = Period::containing(PeriodKind::Daily, now_ms).context("calendar")?;
        let base = keys_base(&prefix, ProjectionId::Leaderboard.name(), 1);
        let board = Board {
            base: &base,
            partitions: PARTITIONS,
        };
        let key = |suffix: &str, partition| board.key(suffix, partition);
        let mut pipe = redis::pipe();
        for player in 1..=PLAYERS {
            let partition = partition_of_user(player, PARTITIONS);
            pipe.zadd(
                key(&period.suffix(), partition),
                player,
                (player * 7919) % 100_003,
            )
            .ignore();
            pipe.hset(
                key(NAMES_SUFFIX, partition),
                player,
                format!("player {player}"),
            )
            .ignore();
        }
        // webdis reads one shard: the floor of one sorted set's read.
        let daily_key = key(&period.suffix(), 0);
        let feed_base = keys_base(&prefix, ProjectionId::Feed.name(), 1);
        let feeds = Feeds {
            base: &feed_base,
            partitions: PARTITIONS,
        };
        let feed_key = feeds.key(FEED_USER);
        for i in 0..FEED_ITEMS {
            let item = FeedItem {
                event_id: uuid::Uuid::now_v7(),
                occurred_at: rfc3339_millis(now_ms - 1000 * i as i64).context("calendar")?,
                activity: serde_json::json!({"type": "taps", "count": 25}),
            };
            pipe.rpush(&feed_key, item.to_json()).ignore();
        }
        let () = pipe.query_async(&mut redis).await?;
        Ok(Fixture {
            prefix,
            database_url: database_url.to_owned(),
            redis_url: redis_url.to_owned(),
            redis,
            daily_key,
            feed_key,
        })
    }

    pub(crate) fn leaderboard_request(&self) -> Request {
        Request::get(&format!("/v1/leaderboard/daily?limit={TOP}"))
    }

    pub(crate) fn feed_request(&self) -> Request {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let user = WebAppUser {
            id: FEED_USER,
            first_name: "Bench".into(),
            last_name: None,
            username: Some("bench".into()),
            language_code: Some("en".into()),
            is_premium: false,
            is_bot: false,
            photo_url: None,
            allows_write_to_pm: false,
        };
        let init_data = InitDataBuilder::new(user, now).sign(BOT_TOKEN);
        Request::get(&format!("/v1/me/feed?limit={PAGE}"))
            .header("authorization", &format!("tma {init_data}"))
    }

    pub(crate) fn webdis_leaderboard_request(&self) -> Request {
        Request::get(&format!(
            "/ZREVRANGE/{}/0/{}/WITHSCORES",
            self.daily_key,
            TOP - 1
        ))
    }

    pub(crate) fn webdis_feed_request(&self) -> Request {
        Request::get(&format!("/LRANGE/{}/0/{}", self.feed_key, PAGE - 1))
    }

    pub(crate) async fn remove(mut self) -> anyhow::Result<()> {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query_async(&mut self.redis)
            .await?;
        if !keys.is_empty() {
            let () = redis::cmd("DEL")
                .arg(keys)
                .query_async(&mut self.redis)
                .await?;
        }
        Ok(())
    }
}
