//! The `purchases` projector: each user's opened invoices and Stars payments in PostgreSQL
//! (tables in [`surge_projections::purchases`]).
//!
//! Delivery guarantee: exactly-once effect. Every write is keyed (a purchase id, a charge id) and
//! changes nothing when repeated, so no seen-id record is needed; the runtime's `PgSink` commits
//! the batch with the partition position. A payment reported twice has one event id and one
//! charge id, so it is one row however often it is appended. Payments are rare next to taps: one
//! statement per payment event, nothing for the rest.

use surge_projections::ProjectionId;
use surge_projections::naming::table_prefix;
use surge_projections::purchases::{Paid, PurchaseStore, Refunded, Started};
use surge_schemas::{Event, PurchaseStarted, StarsPaymentReceived, StarsPaymentRefunded};

use crate::decisions;
use crate::projectors::{Projector, SinkContext};
use crate::runtime::{ApplyError, PgProjection, PgSink, Record};

/// What an event records of a purchase, as [`crate::decisions::purchase`] decides.
#[derive(Debug, Clone, Copy)]
pub enum PurchaseChange<'a> {
    /// An invoice was opened.
    Started(&'a PurchaseStarted),
    /// Telegram reported the payment.
    Paid(&'a StarsPaymentReceived),
    /// The payment was refunded.
    Refunded(&'a StarsPaymentRefunded),
}

/// The purchases projection, writing the tables of one version.
#[derive(Debug, Clone)]
pub struct Purchases {
    version: u32,
    store: PurchaseStore,
}

impl Purchases {
    pub fn at(version: u32) -> Self {
        Purchases {
            version,
            store: PurchaseStore::new(&table_prefix(Self::NAME, version)),
        }
    }
}

impl Projector for Purchases {
    type Sink = PgSink<Self>;

    fn sink(version: u32, context: &SinkContext) -> Self::Sink {
        context.pg_sink(Self::at(version))
    }
}

impl PgProjection for Purchases {
    const ID: ProjectionId = ProjectionId::Purchases;

    fn version(&self) -> u32 {
        self.version
    }

    /// Every write is keyed (a purchase id, a charge id), so a repeat of any event changes
    /// nothing.
    fn idempotent(_event: &Event) -> bool {
        true
    }

    async fn apply(
        &self,
        tx: &mut sqlx::PgConnection,
        records: &[Record],
    ) -> Result<(), ApplyError> {
        for record in records {
            let envelope = &record.event.envelope;
            match decisions::purchase(&record.event.payload) {
                Some(PurchaseChange::Started(p)) => {
                    let started = Started {
                        purchase_id: p.purchase_id,
                        item_id: p.item_id.clone(),
                        stars: p.stars,
                        started_at_ms: envelope.occurred_at,
                    };
                    self.store
                        .record_started(&mut *tx, envelope.user_id, &started)
                        .await?;
                }
                Some(PurchaseChange::Paid(p)) => {
                    let paid = Paid {
                        charge_id: p.telegram_payment_charge_id.clone(),
                        user_id: envelope.user_id,
                        purchase_id: p.purchase_id,
                        item_id: p.item_id.clone(),
                        stars: p.stars,
                        coins: p.coins,
                        subscription: p.subscription.clone(),
                        expires_at_ms: p.subscription_expires_at,
                        recurring: p.recurring,
                        paid_at_ms: envelope.occurred_at,
                    };
                    self.store.record_paid(&mut *tx, &paid).await?;
                }
                Some(PurchaseChange::Refunded(r)) => {
                    let refunded = Refunded {
                        charge_id: r.telegram_payment_charge_id.clone(),
                        user_id: envelope.user_id,
                        purchase_id: r.purchase_id,
                        item_id: r.item_id.clone(),
                        stars: r.stars,
                        coins: r.coins,
                        refunded_at_ms: envelope.occurred_at,
                    };
                    self.store.record_refunded(&mut *tx, &refunded).await?;
                }
                None => {}
            }
        }
        Ok(())
    }
}
