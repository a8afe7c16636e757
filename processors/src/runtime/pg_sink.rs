//! PostgreSQL sink.
//!
//! Guarantee: exactly-once effect. One transaction per poll, for the batches of every partition
//! it brought, locks the partitions' position rows, refuses if a generation moved (fencing),
//! drops events at or below each position, repeats within the batches, and event ids already
//! recorded in `<prefix>_seen_events` (only events a repeat could change are recorded, see
//! `PgProjection::idempotent`), lets the projection apply the rest, moves the positions, and
//! commits: writes and positions are never out of step. The same transaction parks the batches'
//! dead letters and the events of parked users (see `parking`, `pg_parking`).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use surge_projections::naming;
use surge_projections::positions::postgres as positions;
use surge_projections::positions::{PositionSource, Positions};
use uuid::Uuid;

use super::parking::{Parked, Release, Released};
use super::pg_parking;
use super::sink::{Applied, Claim, PartitionBatch, Sink, SinkError};
use super::{PgProjection, Record};

/// Event ids are remembered this long: duplicates (a client retry after an uncertain failure, a
/// derived event re-emitted after a crash) arrive within the 24 h idempotency window.
const SEEN_RETENTION: &str = "48 hours";

pub struct PgSink<P> {
    projection: P,
    pub(super) pool: PgPool,
    /// Whether each batch's commit waits for the WAL flush (see [`Sink::set_serving`]).
    durable: AtomicBool,
}

impl<P: PgProjection> PgSink<P> {
    /// A sink writing `projection`'s version.
    pub fn new(projection: P, pool: PgPool) -> Self {
        PgSink {
            projection,
            pool,
            durable: AtomicBool::new(true),
        }
    }

    fn seen_table(&self) -> String {
        naming::seen_events_table(&self.projection.table_prefix())
    }

    pub(super) fn prefix(&self) -> String {
        self.projection.table_prefix()
    }

    /// Applies `fresh` (past the position, each id once) but the events seen before: records
    /// the ids of those a repeat could change, lets the projection apply the rest. Returns the
    /// partition of each event it applied.
    pub(super) async fn apply_fresh(
        &self,
        tx: &mut sqlx::PgConnection,
        fresh: Vec<&Record>,
    ) -> Result<Vec<i32>, SinkError> {
        // Ids recorded before are duplicates; events a repeat cannot change need no record.
        let guarded: Vec<Uuid> = fresh
            .iter()
            .filter(|r| !P::idempotent(&r.event))
            .map(|r| r.event.envelope.event_id)
            .collect();
        let new_ids: HashSet<Uuid> = if guarded.is_empty() {
            HashSet::new()
        } else {
            sqlx::query_scalar::<_, Uuid>(&format!(
                "INSERT INTO {} (event_id) SELECT unnest($1::uuid[]) ON CONFLICT DO NOTHING RETURNING event_id",
                self.seen_table()
            ))
            .bind(&guarded)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect()
        };
        let to_apply: Vec<Record> = fresh
            .into_iter()
            .filter(|r| P::idempotent(&r.event) || new_ids.contains(&r.event.envelope.event_id))
            .cloned()
            .collect();
        if !to_apply.is_empty() {
            self.projection.apply(tx, &to_apply).await?;
        }
        Ok(to_apply.iter().map(|r| r.partition).collect())
    }

    /// Applies `batches` (one per partition) and moves their positions in one transaction, if
    /// every generation still owns its partition; see the module header.
    async fn apply_batches(
        &self,
        topic: &str,
        batches: &[PartitionBatch<'_>],
    ) -> Result<Vec<Applied>, SinkError> {
        let mut tx = self.pool.begin().await?;
        if !self.durable.load(Ordering::Relaxed) {
            // Safe to lose on a crash: the positions roll back with the writes, and the batches
            // are applied again.
            sqlx::query("SET LOCAL synchronous_commit = off")
                .execute(&mut *tx)
                .await?;
        }
        let version = self.version();
        let partitions: Vec<i32> = batches.iter().map(|b| b.claim.partition).collect();
        let stored = positions::lock_many(&mut tx, P::NAME, version, topic, &partitions).await?;
        // Past each position, each event id once (its first occurrence, in offset order).
        let mut distinct = HashSet::new();
        let (mut fresh, mut dead, mut moves) = (Vec::new(), Vec::new(), Vec::new());
        for batch in batches {
            let partition = batch.claim.partition;
            // No row (a database restored from before the claim) is a claim lost too.
            let &(position, generation) = stored.get(&partition).unwrap_or(&(0, 0));
            if generation < batch.claim.generation {
                return Err(SinkError::ClaimLost {
                    stored: generation,
                    claimed: batch.claim.generation,
                });
            }
            if generation != batch.claim.generation {
                return Err(SinkError::Fenced);
            }
            if position < batch.claim.next_offset {
                return Err(SinkError::Behind {
                    stored: position,
                    applied: batch.claim.next_offset,
                });
            }
            fresh
                .extend((batch.records.iter()).filter(|r| {
                    r.offset >= position && distinct.insert(r.event.envelope.event_id)
                }));
            dead.extend(batch.dead.iter().filter(|d| d.offset >= position).cloned());
            if batch.next_offset > position {
                moves.push((partition, batch.next_offset));
            }
        }
        let prefix = self.prefix();
        let (fresh, parked) = pg_parking::split(&mut tx, &prefix, fresh, &dead).await?;
        let applied = self.apply_fresh(&mut tx, fresh).await?;
        pg_parking::park(&mut tx, &prefix, &parked).await?;
        positions::advance_many(&mut tx, P::NAME, version, topic, &moves).await?;
        tx.commit().await?;
        Ok(batches
            .iter()
            .map(|b| Applied {
                events: applied.iter().filter(|p| **p == b.claim.partition).count(),
                parked: parked
                    .iter()
                    .filter(|p| p.partition == b.claim.partition)
                    .count(),
            })
            .collect())
    }
}

impl<P: PgProjection> Sink for PgSink<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn version(&self) -> u32 {
        self.projection.version()
    }

    async fn migrate(&self) -> Result<(), SinkError> {
        surge_projections::migrations::migrate(&self.pool, P::ID, self.version()).await?;
        Ok(())
    }

    fn set_serving(&self, serving: bool) {
        self.durable.store(serving, Ordering::Relaxed);
        self.projection.set_serving(serving);
    }

    fn point_in_time_start(&self, from_ms: i64) -> Result<i64, &'static str> {
        self.projection.point_in_time_start(from_ms)
    }

    async fn seed_before(&self, old: u32, from_ms: i64) -> Result<(), SinkError> {
        let mut tx = self.pool.begin().await?;
        self.projection.seed_before(&mut tx, old, from_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn claim(&self, topic: &str, partitions: &[i32]) -> Result<Vec<Claim>, SinkError> {
        let claims =
            positions::claim(&self.pool, P::NAME, self.version(), topic, partitions).await?;
        if claims.is_empty() && !partitions.is_empty() {
            tracing::info!(processor = %self.id(), "This version no longer serves; its partitions are not claimed.");
        }
        Ok(claims)
    }

    async fn stored_positions(&self, topic: &str) -> Result<Positions, SinkError> {
        let source = PositionSource::Postgres {
            pool: self.pool.clone(),
            projection: P::NAME,
            version: self.version(),
            topic: topic.to_owned(),
        };
        Ok(source.read().await?)
    }

    async fn apply(
        &self,
        topic: &str,
        claim: Claim,
        records: &[Record],
        next_offset: i64,
    ) -> Result<Applied, SinkError> {
        self.apply_parking(topic, claim, records, &[], next_offset)
            .await
    }

    async fn apply_parking(
        &self,
        topic: &str,
        claim: Claim,
        records: &[Record],
        dead: &[Parked],
        next_offset: i64,
    ) -> Result<Applied, SinkError> {
        let batch = PartitionBatch {
            claim,
            records,
            dead,
            next_offset,
        };
        let mut applied = self.apply_batches(topic, &[batch]).await?;
        Ok(applied.remove(0))
    }

    async fn apply_together(
        &self,
        topic: &str,
        batches: &[PartitionBatch<'_>],
    ) -> Option<Result<Vec<Applied>, SinkError>> {
        Some(self.apply_batches(topic, batches).await)
    }

    async fn parked(&self) -> Result<Vec<Parked>, SinkError> {
        pg_parking::list(&self.pool, &self.prefix()).await
    }

    async fn release(&self, topic: &str, user: i64, how: Release) -> Result<Released, SinkError> {
        self.release_user(topic, user, how).await
    }

    async fn maintain(&self) -> Result<(), SinkError> {
        let prune = format!(
            "DELETE FROM {} WHERE seen_at < now() - interval '{SEEN_RETENTION}'",
            self.seen_table()
        );
        tokio::time::timeout(
            Duration::from_secs(30),
            sqlx::query(&prune).execute(&self.pool),
        )
        .await
        .map_err(|_| SinkError::Transient("pruning seen events timed out".into()))??;
        self.projection.maintain(&self.pool).await?;
        Ok(())
    }
}
