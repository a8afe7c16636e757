//! The `profiles` projector: one PostgreSQL row per user (`profiles_v1_users`) with the latest
//! Telegram snapshot, the fields the user chose, activity times, session count, referrer and
//! daily check-in streak. What each event does is in [`fold`].
//!
//! Delivery guarantee: exactly-once effect, kept by the runtime's `PgSink` (the batch's writes
//! and the partition position commit in one transaction; fencing; event-id deduplication). This
//! projector relies on it: a session applied twice would count twice. Each batch costs two
//! statements: load the batch's users' rows, then upsert the folded rows.

mod fold;

pub use fold::{ProfileChange, fold, fold_batch, referrer, touches};

use surge_projections::ProjectionId;
use surge_projections::naming::table_prefix;
use surge_projections::profiles::ProfileStore;
use surge_schemas::Event;

use crate::decisions;
use crate::projectors::{Projector, SinkContext};
use crate::runtime::{ApplyError, PgProjection, PgSink, Record};

/// The profiles projection, writing the tables of one version.
#[derive(Debug, Clone)]
pub struct Profiles {
    version: u32,
    /// The SQL rendered for this version's tables once.
    store: ProfileStore,
}

impl Profiles {
    pub fn at(version: u32) -> Self {
        Profiles {
            version,
            store: ProfileStore::new(&table_prefix(Self::NAME, version)),
        }
    }
}

impl Projector for Profiles {
    type Sink = PgSink<Self>;

    fn sink(version: u32, context: &SinkContext) -> Self::Sink {
        context.pg_sink(Self::at(version))
    }
}

impl PgProjection for Profiles {
    const ID: ProjectionId = ProjectionId::Profiles;

    fn version(&self) -> u32 {
        self.version
    }

    /// Activity only moves the last-seen time forward (a maximum), and what is not the
    /// profile's business changes nothing: repeating either changes nothing
    /// ([`ProfileChange::idempotent`]).
    fn idempotent(event: &Event) -> bool {
        decisions::profile(&event.payload).idempotent()
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
        let stored = self.store.load(&mut *tx, &users).await?;
        let rows = fold_batch(stored, records);
        self.store.upsert(&mut *tx, &rows).await?;
        Ok(())
    }
}
