//! The `purchases` projection's tables and reader: each user's opened invoices
//! (`<prefix>_started`, from PurchaseStarted) and Stars payments (`<prefix>_payments`, one row
//! per `telegram_payment_charge_id`, marked when refunded). The purchases projector in
//! `processors` writes them; the query API serves them at `GET /v1/me/purchases` (a Mini App
//! told "failed" by `openInvoice` asks here for the truth) and the Stars revenue per day at
//! `GET /v1/stats/revenue`.

pub(crate) mod http;
mod store;
mod view;

pub use store::{Paid, PurchaseStore, Refunded, RevenueDay, Started, StoredPayment};
pub use view::{PurchaseView, PurchasesView, SubscriptionView, view};

pub const MIGRATIONS: &[&str] = &[
    include_str!("sql/started.sql"),
    include_str!("sql/started_by_user.sql"),
    include_str!("sql/payments.sql"),
    include_str!("sql/payments_by_user.sql"),
];
