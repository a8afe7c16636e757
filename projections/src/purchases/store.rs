//! Reads and writes of the purchases tables, rendered for one version's table prefix once.

use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::catalog::{ProjectionId, VersionedStore};
use crate::table_prefix::render;

/// An opened invoice.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Started {
    pub purchase_id: Uuid,
    pub item_id: String,
    pub stars: i64,
    pub started_at_ms: i64,
}

/// A payment as the projector records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paid {
    pub charge_id: String,
    pub user_id: i64,
    pub purchase_id: Uuid,
    pub item_id: String,
    pub stars: i64,
    pub coins: i64,
    pub subscription: Option<String>,
    pub expires_at_ms: Option<i64>,
    pub recurring: bool,
    pub paid_at_ms: i64,
}

/// A refund as the projector records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refunded {
    pub charge_id: String,
    pub user_id: i64,
    pub purchase_id: Uuid,
    pub item_id: String,
    pub stars: i64,
    pub coins: i64,
    pub refunded_at_ms: i64,
}

/// A payment row as read back.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct StoredPayment {
    pub telegram_payment_charge_id: String,
    pub purchase_id: Uuid,
    pub item_id: String,
    pub stars: i64,
    pub coins: i64,
    pub subscription: Option<String>,
    pub expires_at_ms: Option<i64>,
    pub recurring: bool,
    pub paid_at_ms: Option<i64>,
    pub refunded_at_ms: Option<i64>,
}

/// Stars moved on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize, utoipa::ToSchema)]
pub struct RevenueDay {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub stars_paid: i64,
    pub stars_refunded: i64,
    pub payments: i64,
    pub refunds: i64,
}

/// The purchases tables of one version, e.g. prefix `purchases_v1`.
#[derive(Debug, Clone)]
pub struct PurchaseStore {
    record_started: String,
    record_paid: String,
    record_refunded: String,
    user_started: String,
    user_payments: String,
    revenue_by_day: String,
}

impl VersionedStore for PurchaseStore {
    const ID: ProjectionId = ProjectionId::Purchases;

    fn at(table_prefix: &str) -> Self {
        PurchaseStore::new(table_prefix)
    }
}

impl PurchaseStore {
    /// # Panics
    /// If `prefix` is not a plain SQL identifier (see [`render`]).
    pub fn new(prefix: &str) -> Self {
        let render = |sql: &str| render(sql, prefix);
        PurchaseStore {
            record_started: render(include_str!("sql/record_started.sql")),
            record_paid: render(include_str!("sql/record_paid.sql")),
            record_refunded: render(include_str!("sql/record_refunded.sql")),
            user_started: render(include_str!("sql/user_started.sql")),
            user_payments: render(include_str!("sql/user_payments.sql")),
            revenue_by_day: render(include_str!("sql/revenue_by_day.sql")),
        }
    }

    pub async fn record_started(
        &self,
        tx: &mut PgConnection,
        user_id: i64,
        started: &Started,
    ) -> sqlx::Result<()> {
        sqlx::query(&self.record_started)
            .bind(started.purchase_id)
            .bind(user_id)
            .bind(&started.item_id)
            .bind(started.stars)
            .bind(started.started_at_ms)
            .execute(tx)
            .await
            .map(drop)
    }

    pub async fn record_paid(&self, tx: &mut PgConnection, paid: &Paid) -> sqlx::Result<()> {
        sqlx::query(&self.record_paid)
            .bind(&paid.charge_id)
            .bind(paid.user_id)
            .bind(paid.purchase_id)
            .bind(&paid.item_id)
            .bind(paid.stars)
            .bind(paid.coins)
            .bind(&paid.subscription)
            .bind(paid.expires_at_ms)
            .bind(paid.recurring)
            .bind(paid.paid_at_ms)
            .execute(tx)
            .await
            .map(drop)
    }

    pub async fn record_refunded(
        &self,
        tx: &mut PgConnection,
        refunded: &Refunded,
    ) -> sqlx::Result<()> {
        sqlx::query(&self.record_refunded)
            .bind(&refunded.charge_id)
            .bind(refunded.user_id)
            .bind(refunded.purchase_id)
            .bind(&refunded.item_id)
            .bind(refunded.stars)
            .bind(refunded.coins)
            .bind(refunded.refunded_at_ms)
            .execute(tx)
            .await
            .map(drop)
    }

    /// A user's latest `limit` opened invoices and payments, newest first.
    pub async fn of_user(
        &self,
        pool: &sqlx::PgPool,
        user_id: i64,
        limit: i64,
    ) -> sqlx::Result<(Vec<Started>, Vec<StoredPayment>)> {
        let started = sqlx::query_as(&self.user_started)
            .bind(user_id)
            .bind(limit)
            .fetch_all(pool);
        let payments = sqlx::query_as(&self.user_payments)
            .bind(user_id)
            .bind(limit)
            .fetch_all(pool);
        tokio::try_join!(started, payments)
    }

    /// Stars paid and refunded per UTC day over the last `days` days.
    pub async fn revenue<'e>(
        &self,
        db: impl PgExecutor<'e>,
        days: i32,
    ) -> sqlx::Result<Vec<RevenueDay>> {
        sqlx::query_as(&self.revenue_by_day)
            .bind(days)
            .fetch_all(db)
            .await
    }
}
