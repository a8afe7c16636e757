//! Reads and writes of the wallets tables. The SQL is rendered for one table prefix once, so a
//! store value serves one projection version.

use std::collections::HashSet;

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgExecutor, Row};
use uuid::Uuid;

use crate::catalog::{ProjectionId, VersionedStore};
use crate::table_prefix::render;

use super::{Balance, LedgerEntry, Stored, StreakRow, Wallet};

const LOAD: &str = include_str!("sql/load.sql");
const APPLIED: &str = include_str!("sql/applied.sql");
const WRITE: &str = include_str!("sql/write.sql");
const WALLET: &str = include_str!("sql/wallet.sql");
const LEDGER_PAGE: &str = include_str!("sql/ledger_page.sql");

/// The wallets tables of one version, e.g. prefix `wallets_v1`.
#[derive(Debug, Clone)]
pub struct WalletStore {
    load: String,
    applied: String,
    write: String,
    wallet: String,
    ledger_page: String,
}

impl VersionedStore for WalletStore {
    const ID: ProjectionId = ProjectionId::Wallets;

    fn at(table_prefix: &str) -> Self {
        WalletStore::new(table_prefix)
    }
}

impl WalletStore {
    /// # Panics
    /// If `prefix` is not a plain SQL identifier (`[a-z0-9_]`, not starting with a digit): it
    /// is spliced into the statements, so it must come from code, never from input.
    pub fn new(prefix: &str) -> Self {
        let render = |sql: &str| render(sql, prefix);
        WalletStore {
            load: render(LOAD),
            applied: render(APPLIED),
            write: render(WRITE),
            wallet: render(WALLET),
            ledger_page: render(LEDGER_PAGE),
        }
    }

    /// The stored balances and streaks of `user_ids`, in one query.
    pub async fn load(&self, conn: &mut PgConnection, user_ids: &[i64]) -> sqlx::Result<Stored> {
        let rows = sqlx::query(&self.load)
            .bind(user_ids)
            .fetch_all(conn)
            .await?;
        let mut stored = Stored::default();
        for row in &rows {
            let user_id: i64 = row.try_get("user_id")?;
            let balance: Option<i64> = row.try_get("balance")?;
            let entries: Option<i64> = row.try_get("entries")?;
            if let (Some(balance), Some(entries)) = (balance, entries) {
                stored
                    .balances
                    .insert(user_id, Balance { balance, entries });
            }
            let current: Option<i32> = row.try_get("streak_current")?;
            let best: Option<i32> = row.try_get("streak_best")?;
            if let (Some(current), Some(best)) = (current, best) {
                let last_day = row.try_get("streak_last_day")?;
                let streak = StreakRow {
                    user_id,
                    current,
                    best,
                    last_day,
                };
                stored.streaks.insert(user_id, streak);
            }
        }
        Ok(stored)
    }

    /// Which of `event_ids` the ledger already holds.
    pub async fn applied(
        &self,
        conn: &mut PgConnection,
        event_ids: &[Uuid],
    ) -> sqlx::Result<HashSet<Uuid>> {
        let ids: Vec<Uuid> = sqlx::query_scalar(&self.applied)
            .bind(event_ids)
            .fetch_all(conn)
            .await?;
        Ok(ids.into_iter().collect())
    }

    /// Appends `rows` (event ids distinct, amounts non-zero, `seq`/`balance_after` continuing
    /// each user's stored ledger) and moves each balance by the rows actually inserted, and
    /// stores `streaks` (each user at most once, `last_day` set): one statement. A row whose
    /// event id the ledger already holds is skipped and moves nothing, but the later rows of its
    /// user then carry a `seq`/`balance_after` counted with it: a caller that gets back fewer
    /// rows inserted than it passed must undo the write (a savepoint) and number the rows again
    /// without the [`applied`](Self::applied) ones. Returns how many rows were inserted.
    pub async fn write(
        &self,
        conn: &mut PgConnection,
        rows: &[LedgerEntry],
        streaks: &[StreakRow],
    ) -> sqlx::Result<usize> {
        if rows.is_empty() && streaks.is_empty() {
            return Ok(0);
        }
        let inserted: i64 = sqlx::query_scalar(&self.write)
            .bind(rows.iter().map(|e| e.event_id).collect::<Vec<_>>())
            .bind(rows.iter().map(|e| e.user_id).collect::<Vec<_>>())
            .bind(rows.iter().map(|e| e.seq).collect::<Vec<_>>())
            .bind(rows.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|e| e.amount).collect::<Vec<_>>())
            .bind(rows.iter().map(|e| e.balance_after).collect::<Vec<_>>())
            .bind(rows.iter().map(|e| e.occurred_at_ms).collect::<Vec<_>>())
            .bind(rows.iter().map(|e| e.partition).collect::<Vec<_>>())
            .bind(rows.iter().map(|e| e.offset).collect::<Vec<_>>())
            .bind(streaks.iter().map(|s| s.user_id).collect::<Vec<_>>())
            .bind(streaks.iter().map(|s| s.current).collect::<Vec<_>>())
            .bind(streaks.iter().map(|s| s.best).collect::<Vec<_>>())
            .bind(streaks.iter().map(|s| s.last_day).collect::<Vec<_>>())
            .fetch_one(conn)
            .await?;
        Ok(usize::try_from(inserted).unwrap_or_default())
    }

    /// A user's wallet with their `latest_n` newest ledger rows, read in one snapshot; `None`
    /// if they never earned coins.
    pub async fn wallet(
        &self,
        executor: impl PgExecutor<'_>,
        user_id: i64,
        latest_n: u32,
    ) -> sqlx::Result<Option<Wallet>> {
        let rows = sqlx::query(&self.wallet)
            .bind(user_id)
            .bind(i64::from(latest_n))
            .fetch_all(executor)
            .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut latest = Vec::with_capacity(rows.len());
        for row in &rows {
            if row.try_get::<Option<i64>, _>("seq")?.is_some() {
                latest.push(ledger_entry(row)?);
            }
        }
        Ok(Some(Wallet {
            user_id: first.try_get("user_id")?,
            balance: first.try_get("balance")?,
            entries: first.try_get("entries")?,
            updated_at_ms: first.try_get("updated_at_ms")?,
            streak: StreakRow {
                user_id,
                current: first.try_get("streak_current")?,
                best: first.try_get("streak_best")?,
                last_day: first.try_get("streak_last_day")?,
            },
            latest,
        }))
    }

    /// A page of a user's ledger, newest first: at most `limit` rows with `seq` below
    /// `before_seq` (from the newest when `None`).
    pub async fn ledger(
        &self,
        executor: impl PgExecutor<'_>,
        user_id: i64,
        before_seq: Option<i64>,
        limit: u32,
    ) -> sqlx::Result<Vec<LedgerEntry>> {
        let rows = sqlx::query(&self.ledger_page)
            .bind(user_id)
            .bind(before_seq)
            .bind(i64::from(limit))
            .fetch_all(executor)
            .await?;
        rows.iter().map(ledger_entry).collect()
    }
}

/// A ledger row from a result with the ledger's columns (`user_id` may be the balance's).
fn ledger_entry(row: &PgRow) -> sqlx::Result<LedgerEntry> {
    Ok(LedgerEntry {
        event_id: row.try_get("event_id")?,
        user_id: row.try_get("user_id")?,
        seq: row.try_get("seq")?,
        kind: row.try_get("kind")?,
        amount: row.try_get("amount")?,
        balance_after: row.try_get("balance_after")?,
        occurred_at_ms: row.try_get("occurred_at_ms")?,
        partition: row.try_get("kafka_partition")?,
        offset: row.try_get("kafka_offset")?,
    })
}
