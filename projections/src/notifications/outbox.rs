//! The outbox: every message the bot is to send, shared by every version of the projection (see
//! `sql/outbox.sql`). The serving projector adds rows; senders claim due rows with a lease
//! (`FOR UPDATE SKIP LOCKED`, so several senders never claim one row), send them and record each
//! outcome under their claim, so a sender whose lease expired cannot overwrite what another
//! recorded since. Every statement that queues or finishes a broadcast's delivery also counts
//! it in [`TALLIES`], in the same transaction, so progress never counts rows.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// The outbox table (no version prefix: dropping a version keeps it).
pub const OUTBOX: &str = "notifications_outbox";

/// Each broadcast's deliveries counted by state (see `sql/tallies.sql`; no version prefix either).
pub const TALLIES: &str = "notifications_broadcast_tallies";

/// The tally of deliveries queued, beside the final [`DeliveryState`]s.
const QUEUED: &str = "queued";

/// Adds the rows `(broadcast_id, state, reason, count)` that the query `rows` selects to the
/// tallies. Rows are added in key order, so two recorders never wait on each other in a cycle.
fn add_tallies(rows: &str) -> String {
    format!(
        "INSERT INTO {TALLIES} AS t (broadcast_id, state, reason, count) {rows} ORDER BY 1, 2, 3 \
         ON CONFLICT (broadcast_id, state, reason) DO UPDATE SET count = t.count + EXCLUDED.count"
    )
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Sending,
    Sent,
    Failed,
    Blocked,
    Cancelled,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 6] = [
        DeliveryState::Pending,
        DeliveryState::Sending,
        DeliveryState::Sent,
        DeliveryState::Failed,
        DeliveryState::Blocked,
        DeliveryState::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Sending => "sending",
            DeliveryState::Sent => "sent",
            DeliveryState::Failed => "failed",
            DeliveryState::Blocked => "blocked",
            DeliveryState::Cancelled => "cancelled",
        }
    }

    fn named(name: &str) -> Option<DeliveryState> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// A message a sender claimed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Claimed {
    pub message_id: Uuid,
    pub user_id: i64,
    pub broadcast_id: Option<Uuid>,
    pub kind: String,
    pub text: String,
    pub button_text: Option<String>,
    /// Attempts so far, this one included.
    pub attempts: i32,
}

/// What became of a claimed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Telegram refused it for good (a 4xx other than 403 and 429), or it kept failing.
    Failed {
        reason: String,
    },
    /// 403: the user blocked the bot (or is gone).
    Blocked {
        reason: String,
    },
    /// Not sent: due again after `after`. `attempt` says whether this try counts toward the
    /// limit of attempts (a 5xx or timeout does; being held back by a limit does not).
    Retry {
        after: Duration,
        attempt: bool,
    },
}

/// A broadcast's deliveries by state, and how fast they were recently done.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BroadcastProgress {
    pub recipients: i64,
    pub sent: i64,
    pub failed: i64,
    pub blocked: i64,
    pub cancelled: i64,
    /// Pending or being sent.
    pub remaining: i64,
    /// Deliveries finished in the last ten seconds.
    pub done_last_10s: i64,
    /// Failed deliveries by Telegram's reason, most frequent first (at most ten reasons).
    pub failures: Vec<(String, i64)>,
}

/// Messages waiting (pending or being sent), per broadcast (`None`: event notifications).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct QueueDepth {
    pub broadcast_id: Option<Uuid>,
    pub waiting: i64,
}

/// The outbox's statements.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outbox;

impl Outbox {
    /// Queues a message caused by the event `source_event_id` (its id is computed from it, so
    /// queuing it again adds nothing).
    pub async fn enqueue_event(
        self,
        tx: &mut PgConnection,
        source_event_id: Uuid,
        user_id: i64,
        kind: &str,
        text: &str,
        button_text: Option<&str>,
    ) -> sqlx::Result<()> {
        sqlx::query(&format!(
            "INSERT INTO {OUTBOX} (message_id, user_id, kind, text, button_text) \
             VALUES (md5('event:' || $1::text)::uuid, $2, $3, $4, $5) \
             ON CONFLICT (message_id) DO NOTHING"
        ))
        .bind(source_event_id)
        .bind(user_id)
        .bind(kind)
        .bind(text)
        .bind(button_text)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// Drops the deliveries of `broadcast_id` not yet claimed; returns how many.
    pub async fn cancel(self, tx: &mut PgConnection, broadcast_id: Uuid) -> sqlx::Result<u64> {
        let done = sqlx::query(&format!(
            "UPDATE {OUTBOX} SET state = 'cancelled', done_at = now() \
             WHERE broadcast_id = $1 AND state = 'pending'"
        ))
        .bind(broadcast_id)
        .execute(&mut *tx)
        .await?;
        let cancelled = done.rows_affected();
        self.tally(
            tx,
            broadcast_id,
            DeliveryState::Cancelled.as_str(),
            cancelled,
        )
        .await?;
        Ok(cancelled)
    }

    /// Counts `count` deliveries of `broadcast_id` queued by the caller's transaction.
    pub(super) async fn tally_queued(
        self,
        tx: &mut PgConnection,
        broadcast_id: Uuid,
        count: u64,
    ) -> sqlx::Result<()> {
        self.tally(tx, broadcast_id, QUEUED, count).await
    }

    async fn tally(
        self,
        tx: &mut PgConnection,
        broadcast_id: Uuid,
        state: &str,
        count: u64,
    ) -> sqlx::Result<()> {
        if count == 0 {
            return Ok(());
        }
        sqlx::query(&add_tallies("SELECT $1::uuid, $2::text, '', $3::bigint"))
            .bind(broadcast_id)
            .bind(state)
            .bind(i64::try_from(count).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// Claims up to `limit` due messages for `lease` under `claim_id`: event notifications
    /// first, then the oldest due.
    pub async fn claim(
        self,
        db: impl PgExecutor<'_>,
        claim_id: Uuid,
        lease: Duration,
        limit: i64,
    ) -> sqlx::Result<Vec<Claimed>> {
        let mut claimed: Vec<(Claimed, Option<i64>)> = sqlx::query_as::<_, ClaimedRow>(&format!(
            "WITH due AS ( \
                 SELECT message_id FROM {OUTBOX} \
                 WHERE state = 'pending' AND due_at <= now() \
                 ORDER BY (broadcast_id IS NOT NULL), due_at \
                 LIMIT $3 FOR UPDATE SKIP LOCKED) \
             UPDATE {OUTBOX} o SET state = 'sending', claim_id = $1, attempts = o.attempts + 1, \
                 lease_until = now() + $2::bigint * INTERVAL '1 millisecond' \
             FROM due WHERE o.message_id = due.message_id \
             RETURNING o.message_id, o.user_id, o.broadcast_id, o.kind, o.text, o.button_text, \
                 o.attempts, (extract(epoch FROM o.created_at) * 1000000)::bigint AS created_us"
        ))
        .bind(claim_id)
        .bind(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(db)
        .await?
        .into_iter()
        .map(|r| (r.claimed, r.created_us))
        .collect();
        claimed.sort_by_key(|(c, created)| (c.broadcast_id.is_some(), *created));
        Ok(claimed.into_iter().map(|(c, _)| c).collect())
    }

    /// Records what became of claimed messages, each `(claim id, message id, outcome)`; a
    /// message claimed since by someone else (its claim's lease expired) is left as they have
    /// it. Returns how many were recorded.
    pub async fn record(
        self,
        db: impl PgExecutor<'_>,
        outcomes: &[(Uuid, Uuid, Outcome)],
    ) -> sqlx::Result<u64> {
        if outcomes.is_empty() {
            return Ok(0);
        }
        let n = outcomes.len();
        let (mut claims, mut ids, mut states) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut reasons, mut delays, mut uncounted) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (claim, id, outcome) in outcomes {
            let (state, reason, delay, counted) = match outcome {
                Outcome::Sent => (DeliveryState::Sent, None, 0, true),
                Outcome::Failed { reason } => {
                    (DeliveryState::Failed, Some(reason.clone()), 0, true)
                }
                Outcome::Blocked { reason } => {
                    (DeliveryState::Blocked, Some(reason.clone()), 0, true)
                }
                Outcome::Retry { after, attempt } => (
                    DeliveryState::Pending,
                    None,
                    i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
                    *attempt,
                ),
            };
            claims.push(*claim);
            ids.push(*id);
            states.push(state.as_str());
            reasons.push(reason);
            delays.push(delay);
            uncounted.push(i32::from(!counted));
        }
        // The update and the tallies of the broadcast deliveries it finished, in one statement.
        let finished = add_tallies(
            "SELECT broadcast_id, state, CASE WHEN state = 'failed' THEN reason ELSE '' END, \
                 count(*) FROM done WHERE broadcast_id IS NOT NULL AND state <> 'pending' \
                 GROUP BY 1, 2, 3",
        );
        let recorded: i64 = sqlx::query_scalar(&format!(
            "WITH done AS (UPDATE {OUTBOX} o SET state = u.state, reason = u.reason, \
                 attempts = o.attempts - u.uncounted, \
                 due_at = CASE WHEN u.state = 'pending' \
                     THEN now() + u.delay_ms * INTERVAL '1 millisecond' ELSE o.due_at END, \
                 done_at = CASE WHEN u.state = 'pending' THEN NULL ELSE now() END, \
                 claim_id = NULL, lease_until = NULL \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::int[]) \
                 AS u(claim_id, message_id, state, reason, delay_ms, uncounted) \
             WHERE o.message_id = u.message_id AND o.claim_id = u.claim_id \
                 AND o.state = 'sending' \
                 RETURNING o.broadcast_id, o.state, coalesce(o.reason, '') AS reason), \
             tallied AS ({finished}) \
             SELECT count(*) FROM done"
        ))
        .bind(claims)
        .bind(ids)
        .bind(states)
        .bind(reasons)
        .bind(delays)
        .bind(uncounted)
        .fetch_one(db)
        .await?;
        Ok(recorded as u64)
    }

    /// Puts messages whose claim's lease expired (their sender died or stalled) back in the
    /// queue; returns how many. Each may have been sent before its sender stopped.
    pub async fn reclaim_expired(self, db: impl PgExecutor<'_>) -> sqlx::Result<u64> {
        let done = sqlx::query(&format!(
            "UPDATE {OUTBOX} SET state = 'pending', claim_id = NULL, lease_until = NULL, \
                 due_at = now() \
             WHERE state = 'sending' AND lease_until < now()"
        ))
        .execute(db)
        .await?;
        Ok(done.rows_affected())
    }

    /// Drops messages that reached a final state more than `age` ago.
    pub async fn drop_done_before(
        self,
        db: impl PgExecutor<'_>,
        age: Duration,
    ) -> sqlx::Result<u64> {
        let done = sqlx::query(&format!(
            "DELETE FROM {OUTBOX} WHERE done_at < now() - $1::bigint * INTERVAL '1 millisecond' \
             AND state IN ('sent', 'failed', 'blocked', 'cancelled')"
        ))
        .bind(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
        .execute(db)
        .await?;
        Ok(done.rows_affected())
    }

    /// The deliveries of `broadcast_id` by state.
    pub async fn progress(
        self,
        db: &sqlx::PgPool,
        broadcast_id: Uuid,
    ) -> sqlx::Result<BroadcastProgress> {
        let mut all = self.progresses(db, &[broadcast_id]).await?;
        Ok(all.remove(&broadcast_id).unwrap_or_default())
    }

    /// The deliveries of each of `broadcasts` by state, from their tallies, in two statements
    /// whatever their number and size.
    pub async fn progresses(
        self,
        db: &sqlx::PgPool,
        broadcasts: &[Uuid],
    ) -> sqlx::Result<HashMap<Uuid, BroadcastProgress>> {
        let tallies_sql = format!(
            "SELECT broadcast_id, state, reason, count FROM {TALLIES} WHERE broadcast_id = ANY($1)"
        );
        let recent_sql = format!(
            "SELECT broadcast_id, count(*) FROM {OUTBOX} \
             WHERE broadcast_id = ANY($1) AND done_at > now() - INTERVAL '10 seconds' GROUP BY 1"
        );
        let (tallies, recent) = tokio::try_join!(
            sqlx::query_as::<_, (Uuid, String, String, i64)>(&tallies_sql)
                .bind(broadcasts)
                .fetch_all(db),
            sqlx::query_as::<_, (Uuid, i64)>(&recent_sql)
                .bind(broadcasts)
                .fetch_all(db),
        )?;
        let mut all: HashMap<Uuid, BroadcastProgress> = broadcasts
            .iter()
            .map(|id| (*id, BroadcastProgress::default()))
            .collect();
        for (broadcast_id, state, reason, count) in tallies {
            let progress = all.entry(broadcast_id).or_default();
            if state == QUEUED {
                progress.recipients += count;
                continue;
            }
            match DeliveryState::named(&state) {
                Some(DeliveryState::Sent) => progress.sent += count,
                Some(DeliveryState::Failed) => {
                    progress.failed += count;
                    progress.failures.push((reason, count));
                }
                Some(DeliveryState::Blocked) => progress.blocked += count,
                Some(DeliveryState::Cancelled) => progress.cancelled += count,
                Some(DeliveryState::Pending | DeliveryState::Sending) | None => {}
            }
        }
        for (broadcast_id, count) in recent {
            all.entry(broadcast_id).or_default().done_last_10s = count;
        }
        for progress in all.values_mut() {
            progress.remaining = progress.recipients
                - progress.sent
                - progress.failed
                - progress.blocked
                - progress.cancelled;
            progress
                .failures
                .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            progress.failures.truncate(10);
        }
        Ok(all)
    }

    /// Messages waiting, per broadcast (from the tallies) and for event notifications.
    pub async fn queue_depths(self, db: impl PgExecutor<'_>) -> sqlx::Result<Vec<QueueDepth>> {
        sqlx::query_as(&format!(
            "SELECT broadcast_id, waiting FROM ( \
                 SELECT broadcast_id, \
                     sum(CASE WHEN state = '{QUEUED}' THEN count ELSE -count END)::bigint \
                     AS waiting \
                 FROM {TALLIES} GROUP BY broadcast_id) b WHERE waiting > 0 \
             UNION ALL \
             SELECT NULL, count(*) FROM {OUTBOX} \
             WHERE state IN ('pending', 'sending') AND broadcast_id IS NULL"
        ))
        .fetch_all(db)
        .await
    }
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    #[sqlx(flatten)]
    claimed: Claimed,
    created_us: Option<i64>,
}
