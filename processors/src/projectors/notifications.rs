//! The `notifications` projector: keeps who can be messaged (languages, whether they let the
//! bot write to them, whether they blocked it, when they were first and last active) and, while
//! it serves, queues the messages events cause into the outbox: one per event that notifies
//! ([`Templates`]), and one per recipient of a broadcast's audience.
//!
//! Delivery guarantee: exactly-once effect on its tables (the runtime's `PgSink` commits each
//! batch with the partition position). Every outbox row's id is computed from what caused it,
//! so applying an event again queues nothing new. A version being rebuilt (`surge replay`) does
//! not serve: it keeps recipients and broadcasts but queues nothing, so a rebuild never sends a
//! message; once it serves, the events it applies during the hand-over queue the same ids the
//! old version queued.
//!
//! A broadcast's audience is read when its BroadcastRequested is applied: the recipients every
//! partition had applied by then, first seen no later than the request (users of other
//! partitions whose events were not yet applied are not in it).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use surge_projections::ProjectionId;
use surge_projections::naming::table_prefix;
use surge_projections::notifications::{Broadcast, NotificationStore, Outbox, Recipient};
use surge_schemas::{
    BroadcastCancelled, BroadcastRequested, Event, OPERATOR_USER_ID, ProfileUpdated, SessionStarted,
};

use crate::decisions;
use crate::notifications::Templates;
use crate::projectors::{Projector, SinkContext};
use crate::runtime::{ApplyError, PgProjection, PgSink, Record};

/// How long sent, failed, blocked and cancelled messages stay in the outbox (for progress and
/// audits) before maintenance drops them.
pub const OUTBOX_RETENTION: Duration = Duration::from_secs(7 * 86_400);

/// The notifications projection, writing the tables of one version.
pub struct Notifications {
    version: u32,
    store: NotificationStore,
    templates: Arc<Templates>,
    serving: AtomicBool,
}

impl Notifications {
    pub fn new(version: u32, templates: Arc<Templates>) -> Self {
        Notifications {
            version,
            store: NotificationStore::new(&table_prefix(Self::NAME, version)),
            templates,
            serving: AtomicBool::new(true),
        }
    }
}

/// What an event does to who can be messaged, as [`crate::decisions::recipient`] decides.
#[derive(Debug, Clone, Copy)]
pub enum RecipientChange<'a> {
    /// Active; Telegram's language and write access; a user who blocked the bot is back.
    Session(&'a SessionStarted),
    /// Active; the language the user chose.
    Update(&'a ProfileUpdated),
    /// Active only: moves the last-active time.
    Active,
    /// Telegram refused a message: out of every audience until the next session.
    Blocked,
    /// An operator's broadcast (keyed by nobody's user).
    Broadcast(&'a BroadcastRequested),
    /// An operator cancelled a broadcast.
    Cancelled(&'a BroadcastCancelled),
    /// Nothing to the recipient.
    None,
}

impl RecipientChange<'_> {
    /// Sessions, blocks and profile updates set state that a repeat of an older one would
    /// undo; the rest only move a maximum or add keyed rows.
    fn idempotent(self) -> bool {
        match self {
            RecipientChange::Session(_) | RecipientChange::Update(_) | RecipientChange::Blocked => {
                false
            }
            RecipientChange::Active
            | RecipientChange::Broadcast(_)
            | RecipientChange::Cancelled(_)
            | RecipientChange::None => true,
        }
    }
}

/// What `change` does to its user's row.
fn fold(recipient: &mut Recipient, change: RecipientChange<'_>, at: i64) {
    let mut active = || recipient.last_active_at_ms = recipient.last_active_at_ms.max(at);
    match change {
        RecipientChange::Session(s) => {
            active();
            recipient.telegram_language.clone_from(&s.language_code);
            // Once allowed, a user stays reachable: the Mini App asks again only if it was not.
            recipient.allows_write |= s.allows_write_to_pm;
            // Opening the Mini App again is how a user who blocked the bot comes back.
            recipient.blocked = false;
        }
        RecipientChange::Update(u) => {
            active();
            if let Some(language) = &u.language_code {
                recipient.chosen_language = Some(language.clone());
            }
        }
        RecipientChange::Active => active(),
        RecipientChange::Blocked => recipient.blocked = true,
        // Broadcasts are the operator's, applied beside the recipients.
        RecipientChange::Broadcast(_) | RecipientChange::Cancelled(_) | RecipientChange::None => {}
    }
    recipient.first_seen_at_ms = recipient.first_seen_at_ms.min(at);
}

impl Projector for Notifications {
    type Sink = PgSink<Self>;

    fn sink(version: u32, context: &SinkContext) -> Self::Sink {
        context.pg_sink(Self::new(version, context.templates.clone()))
    }
}

impl PgProjection for Notifications {
    const ID: ProjectionId = ProjectionId::Notifications;

    fn version(&self) -> u32 {
        self.version
    }

    /// See `RecipientChange::idempotent`.
    fn idempotent(event: &Event) -> bool {
        decisions::recipient(&event.payload).idempotent()
    }

    /// A rebuild keeps recipients and broadcasts but queues no message until it serves.
    fn set_serving(&self, serving: bool) {
        self.serving.store(serving, Ordering::Relaxed);
    }

    async fn apply(
        &self,
        tx: &mut sqlx::PgConnection,
        records: &[Record],
    ) -> Result<(), ApplyError> {
        let serving = self.serving.load(Ordering::Relaxed);
        let mut users: Vec<i64> = records
            .iter()
            .map(|r| r.event.envelope.user_id)
            .filter(|&u| u != OPERATOR_USER_ID)
            .collect();
        users.sort_unstable();
        users.dedup();
        let mut recipients: HashMap<i64, Recipient> = self.store.recipients(tx, &users).await?;
        let mut messages = Vec::new();
        let mut broadcasts = Vec::new();
        let mut cancelled = Vec::new();
        for record in records {
            let event = &record.event;
            let envelope = &event.envelope;
            let change = decisions::recipient(&event.payload);
            match change {
                RecipientChange::Broadcast(b) => broadcasts.push(Broadcast {
                    broadcast_id: b.broadcast_id,
                    text: b.text.clone(),
                    button_text: b.button_text.clone(),
                    active_within_days: b.active_within_days,
                    language: b.language.clone(),
                    requested_at_ms: envelope.recorded_at,
                    cancelled_at_ms: None,
                }),
                RecipientChange::Cancelled(c) => {
                    cancelled.push((c.broadcast_id, envelope.recorded_at));
                }
                _ if envelope.user_id == OPERATOR_USER_ID => {}
                _ => {
                    let recipient = recipients
                        .entry(envelope.user_id)
                        .or_insert_with(|| Recipient::new(envelope.user_id, envelope.recorded_at));
                    fold(recipient, change, envelope.recorded_at);
                    if !serving || !recipient.reachable() {
                        continue;
                    }
                    if let Some(rendered) =
                        self.templates.render(&event.payload, recipient.language())
                    {
                        messages.push((envelope.event_id, envelope.user_id, event, rendered));
                    }
                }
            }
        }
        let rows: Vec<Recipient> = users.iter().filter_map(|u| recipients.remove(u)).collect();
        self.store.save(tx, &rows).await?;
        for (event_id, user_id, event, rendered) in messages {
            Outbox
                .enqueue_event(
                    tx,
                    event_id,
                    user_id,
                    event.event_type().name(),
                    &rendered.text,
                    rendered.button_text.as_deref(),
                )
                .await?;
        }
        // After the batch's recipients are saved, so its own users are in the audience.
        for broadcast in &broadcasts {
            self.store.record(tx, broadcast).await?;
            if serving {
                let queued = self.store.expand(tx, broadcast).await?;
                tracing::info!(broadcast_id = %broadcast.broadcast_id, queued, "Broadcast queued.");
            }
        }
        for (broadcast_id, at_ms) in cancelled {
            self.store.cancel(tx, broadcast_id, at_ms).await?;
            if serving {
                let dropped = Outbox.cancel(tx, broadcast_id).await?;
                tracing::info!(%broadcast_id, dropped, "Broadcast cancelled.");
            }
        }
        Ok(())
    }

    /// Drops messages done more than [`OUTBOX_RETENTION`] ago.
    async fn maintain(&self, pool: &PgPool) -> Result<(), ApplyError> {
        Outbox.drop_done_before(pool, OUTBOX_RETENTION).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use surge_schemas::{BotBlocked, Envelope, Payload, TapsSubmitted};
    use uuid::Uuid;

    /// Folds `event` as the projector does.
    fn fold_event(recipient: &mut Recipient, event: &Event) {
        fold(
            recipient,
            decisions::recipient(&event.payload),
            event.envelope.recorded_at,
        );
    }

    fn event(at: i64, payload: impl Into<Payload>) -> Event {
        Event {
            envelope: Envelope {
                event_id: Uuid::now_v7(),
                user_id: 7,
                occurred_at: at,
                recorded_at: at,
            },
            payload: payload.into(),
        }
    }

    fn session(language: &str, allows_write: bool) -> SessionStarted {
        SessionStarted {
            first_name: "Ada".into(),
            last_name: None,
            username: None,
            language_code: Some(language.into()),
            is_premium: false,
            photo_url: None,
            allows_write_to_pm: allows_write,
            start_param: None,
            platform: None,
        }
    }

    #[test]
    fn a_block_holds_until_the_next_session_and_write_access_is_sticky() {
        let mut r = Recipient::new(7, 100);
        fold_event(&mut r, &event(100, session("ru", true)));
        assert!(r.reachable());
        fold_event(
            &mut r,
            &event(
                200,
                BotBlocked {
                    reason: "Forbidden".into(),
                },
            ),
        );
        assert!(!r.reachable());
        fold_event(&mut r, &event(300, TapsSubmitted { count: 1 }));
        assert!(!r.reachable(), "taps are not a session");
        fold_event(&mut r, &event(400, session("ru", false)));
        assert!(r.reachable(), "a later session without the flag keeps it");
        assert_eq!(r.last_active_at_ms, 400);
        assert_eq!(r.first_seen_at_ms, 100);
    }

    #[test]
    fn the_chosen_language_wins_over_telegrams() {
        let mut r = Recipient::new(7, 100);
        fold_event(&mut r, &event(100, session("ru", true)));
        assert_eq!(r.language(), Some("ru"));
        let chosen = ProfileUpdated {
            display_name: None,
            language_code: Some("pt-BR".into()),
            photo_url: None,
        };
        fold_event(&mut r, &event(200, chosen));
        fold_event(&mut r, &event(300, session("ru", true)));
        assert_eq!(r.language(), Some("pt-BR"));
    }

    #[test]
    fn a_block_does_not_make_a_user_active() {
        let mut r = Recipient::new(7, 100);
        fold_event(
            &mut r,
            &event(
                900,
                BotBlocked {
                    reason: "Forbidden".into(),
                },
            ),
        );
        assert_eq!(r.last_active_at_ms, 100);
    }
}
