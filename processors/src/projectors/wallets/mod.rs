//! The `wallets` projector: a coin balance per user (`wallets_v1_balances`), an append-only
//! ledger with one row per coin-earning event (`wallets_v1_ledger`, unique by event id), and the
//! check-in streak the coin rules need (`wallets_v1_streaks`). Amounts come from
//! [`economy::coins`](crate::projectors::economy::coins); what each event earns is in `fold.rs`.
//!
//! Delivery guarantee: exactly-once effect. The runtime's `PgSink` commits the batch's writes
//! with the partition position in one transaction, fences stale processors and drops repeats
//! within a batch. Across batches the ledger's primary key deduplicates, for good rather than
//! for the runtime's 48 h, so the runtime keeps no separate record of seen event ids for
//! wallets (`idempotent`). Every change of a wallet is a ledger row: the write moves a
//! balance only by the ledger rows it actually inserted, so `balance = sum(ledger.amount)`
//! holds whatever is offered twice; a check-in already counted earns nothing and moves no
//! streak; and when the write inserts fewer rows than folded (an event already in the ledger),
//! it is undone to a savepoint and redone without those events, so `seq` and `balance_after`
//! stay exact too.
//!
//! Cost per batch: one query loading the batch's earning users, one write statement, and the
//! savepoint around it (two short round trips). The duplicate check runs only when needed.

mod fold;

pub use fold::{Plan, checkin_users, earning_users, number, plan};

use std::collections::HashSet;

use sqlx::Connection;
use surge_projections::ProjectionId;
use surge_projections::naming::table_prefix;
use surge_projections::wallets::WalletStore;
use surge_schemas::Event;
use uuid::Uuid;

use crate::projectors::{Projector, SinkContext};
use crate::runtime::{ApplyError, PgProjection, PgSink, Record};

/// The wallets projection, writing the tables of one version.
#[derive(Debug, Clone)]
pub struct Wallets {
    version: u32,
    /// The SQL rendered for this version's tables once.
    store: WalletStore,
}

impl Wallets {
    pub fn at(version: u32) -> Self {
        Wallets {
            version,
            store: WalletStore::new(&table_prefix(Self::NAME, version)),
        }
    }
}

impl Projector for Wallets {
    type Sink = PgSink<Self>;

    fn sink(version: u32, context: &SinkContext) -> Self::Sink {
        context.pg_sink(Self::at(version))
    }
}

impl PgProjection for Wallets {
    const ID: ProjectionId = ProjectionId::Wallets;

    fn version(&self) -> u32 {
        self.version
    }

    /// Every change is a ledger row keyed by its event id (see the module header).
    fn idempotent(_event: &Event) -> bool {
        true
    }

    /// Uses a savepoint of its own, released or rolled back here; never ends `tx`.
    async fn apply(
        &self,
        tx: &mut sqlx::PgConnection,
        records: &[Record],
    ) -> Result<(), ApplyError> {
        let users = earning_users(records);
        if users.is_empty() {
            return Ok(());
        }
        let stored = self.store.load(&mut *tx, &users).await?;
        let plan = plan(records, stored.streaks)?;
        if plan.entries.is_empty() {
            return Ok(()); // A streak only moves with a check-in that earns.
        }
        let rows = number(&plan.entries, &stored.balances, &HashSet::new());
        let mut attempt = tx.begin().await?;
        let inserted = self.store.write(&mut attempt, &rows, &plan.streaks).await?;
        if inserted == rows.len() {
            attempt.commit().await?;
            return Ok(());
        }
        // Some events were in the ledger already: undo, and number the rest without them.
        attempt.rollback().await?;
        let ids: Vec<Uuid> = rows.iter().map(|e| e.event_id).collect();
        let applied = self.store.applied(&mut *tx, &ids).await?;
        let rows = number(&plan.entries, &stored.balances, &applied);
        let inserted = self.store.write(&mut *tx, &rows, &plan.streaks).await?;
        if inserted != rows.len() {
            return Err(ApplyError::Transient(
                "the ledger gained events of this batch while it was applied".into(),
            ));
        }
        Ok(())
    }
}
