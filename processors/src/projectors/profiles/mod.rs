//! The `profiles` projector: one PostgreSQL row per user (`profiles_v1_users`) with the latest
//! Telegram snapshot, the fields the user chose, activity times, session count, referrer and
//! daily check-in streak. What each event does is in [`fold`].
//!
//! Delivery guarantee: exactly-once effect, kept by the runtime's `PgSink` (the batch's writes
//! and the partition position commit in one transaction; fencing; event-id deduplication). This
//! projector relies on it: a session applied twice would count twice. Each batch costs two
//! statements: load the batch's users' rows, then upsert the folded rows.

mod fold;

pub use fold::{fold, fold_batch, referrer, touches};

use std::sync::LazyLock;

use surge_projections::profiles::{self, ProfileStore};

use crate::runtime::{ApplyError, PgProjection, Record};

/// The profiles projection, version 1.
#[derive(Debug, Clone, Copy, Default)]
pub struct Profiles;

/// The SQL rendered for this version's tables once.
static STORE: LazyLock<ProfileStore> =
    LazyLock::new(|| ProfileStore::new(&Profiles::table_prefix()));

impl PgProjection for Profiles {
    const NAME: &'static str = "profiles";
    const VERSION: u32 = 1;

    fn migrations() -> &'static [&'static str] {
        profiles::MIGRATIONS
    }

    async fn apply(
        &self,
        tx: &mut sqlx::PgConnection,
        records: &[Record],
    ) -> Result<(), ApplyError> {
        let mut users: Vec<i64> = records
            .iter()
            .filter(|r| touches(&r.event))
            .map(|r| r.event.envelope.user_id)
            .collect();
        users.sort_unstable();
        users.dedup();
        if users.is_empty() {
            return Ok(());
        }
        let stored = STORE.load(&mut *tx, &users).await?;
        let rows = fold_batch(stored, records);
        STORE.upsert(&mut *tx, &rows).await?;
        Ok(())
    }
}
