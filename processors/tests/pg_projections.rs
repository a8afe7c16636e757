//! The PostgreSQL projections (and the referrals deriver's emit modes) against a real PostgreSQL
//! (`SURGE_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/surge_test`). Each test
//! works in its own schema, applies hand-built records the way the runtime does (one transaction
//! per batch, `apply`, commit) and reads back through the store's read functions.

use sqlx::PgPool;
use surge_processors::projectors::profiles::Profiles;
use surge_processors::projectors::wallets::Wallets;
use surge_processors::runtime::{ApplyError, PgProjection, Record};
use surge_projections::profiles::ProfileStore;
use surge_projections::timescaledb::TimescaleDb;
use surge_projections::wallets::{StreakRow, WalletStore};
use surge_schemas::{
    DailyCheckedIn, Envelope, Event, Payload, ProfileUpdated, ReferralCredited, SessionStarted,
    TapsSubmitted,
};
use uuid::Uuid;

const ALICE: i64 = 7_000_000_001;
const BOB: i64 = 42;
const CAROL: i64 = 5_550_000_003;
/// An instant with a non-round millisecond part, to check times survive the round trip.
const T0: i64 = 1_717_171_717_123;

/// A uniquely named schema and a pool whose `search_path` is that schema; the schema and
/// everything in it is dropped when the test ends, even when it fails.
struct TestDb {
    schema: String,
    pool: PgPool,
}

impl TestDb {
    async fn new() -> Self {
        let schema = surge_testkit::unique_id("test_projections_");
        let pool = surge_testkit::pg_pool_with(&schema, 2).await;
        TestDb { schema, pool }
    }

    /// Creates `P`'s tables as the runtime does: in the layout for the database, `{t}`
    /// replaced, all in one round trip.
    async fn migrate<P: PgProjection>(&self) {
        let mut conn = self.pool.acquire().await.unwrap();
        let timescaledb = TimescaleDb::find(&mut conn).await.unwrap();
        let ddl = surge_projections::migrations::ddl(P::ID, 1, timescaledb.as_ref())
            .expect("kept in PostgreSQL");
        sqlx::raw_sql(&ddl).execute(&mut *conn).await.unwrap();
    }

    /// One batch as the runtime applies it: a transaction, `apply`, commit; rolled back (and
    /// awaited, so a failing test never leaves locks behind) when `apply` fails.
    async fn apply<P: PgProjection>(
        &self,
        projection: &P,
        records: &[Record],
    ) -> Result<(), ApplyError> {
        let mut tx = self.pool.begin().await.unwrap();
        match projection.apply(&mut tx, records).await {
            Ok(()) => {
                tx.commit().await.unwrap();
                Ok(())
            }
            Err(error) => {
                tx.rollback().await.unwrap();
                Err(error)
            }
        }
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        surge_testkit::drop_schema_blocking(&self.schema);
    }
}

/// Records in one partition, offsets from `first_offset`, event `i` at `T0 + i` seconds.
fn batch(first_offset: i64, events: Vec<(i64, Payload)>) -> Vec<Record> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, (user_id, payload))| {
            let offset = first_offset + i as i64;
            let at = T0 + offset * 1_000;
            Record {
                partition: 2,
                offset,
                event: Event {
                    envelope: Envelope {
                        event_id: Uuid::now_v7(),
                        user_id,
                        occurred_at: at,
                        recorded_at: at,
                    },
                    payload,
                },
            }
        })
        .collect()
}

fn session(first_name: &str, start_param: Option<&str>) -> Payload {
    SessionStarted {
        first_name: first_name.into(),
        last_name: None,
        username: Some(first_name.to_lowercase()),
        language_code: Some("en".into()),
        is_premium: false,
        photo_url: Some(format!("https://t.me/{first_name}.jpg")),
        allows_write_to_pm: true,
        start_param: start_param.map(Into::into),
        platform: Some("android".into()),
    }
    .into()
}

fn taps(count: i32) -> Payload {
    TapsSubmitted { count }.into()
}

fn checkin(day: i32) -> Payload {
    DailyCheckedIn { day }.into()
}

fn credit(referred: i64) -> Payload {
    ReferralCredited {
        referred_user_id: referred,
        source_event_id: Uuid::now_v7(),
    }
    .into()
}

#[path = "pg_projections/activity.rs"]
mod activity;
#[path = "pg_projections/derived_delivery.rs"]
mod derived_delivery;
#[path = "pg_projections/profiles.rs"]
mod profiles;
#[path = "pg_projections/stalls.rs"]
mod stalls;
#[path = "pg_projections/wallets.rs"]
mod wallets;
