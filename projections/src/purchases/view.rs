//! What `GET /v1/me/purchases` answers: each opened invoice with its status, every payment, and
//! the subscriptions a user holds.

use std::collections::BTreeMap;

use serde::Serialize;
use uuid::Uuid;

use super::{Started, StoredPayment};
use crate::feed::rfc3339_millis;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PurchasesView {
    pub purchases: Vec<PurchaseView>,
    pub payments: Vec<PaymentView>,
    pub subscriptions: Vec<SubscriptionView>,
}

/// An opened invoice and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PurchaseView {
    pub purchase_id: Uuid,
    pub item_id: String,
    pub stars: i64,
    pub started_at: Option<String>,
    /// `started` (not paid, or not yet applied), `paid`, or `refunded` (every payment of it).
    pub status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PaymentView {
    pub telegram_payment_charge_id: String,
    pub purchase_id: Uuid,
    pub item_id: String,
    pub stars: i64,
    pub coins: i64,
    pub subscription: Option<String>,
    pub expires_at: Option<String>,
    pub recurring: bool,
    pub paid_at: Option<String>,
    pub refunded_at: Option<String>,
}

/// A plan the user paid for: active until `expires_at` unless every payment was refunded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SubscriptionView {
    pub plan: String,
    pub expires_at: Option<String>,
    pub active: bool,
}

/// The view of a user's `started` invoices and `payments` at `now_ms`.
pub fn view(started: &[Started], payments: &[StoredPayment], now_ms: i64) -> PurchasesView {
    let time = |ms: Option<i64>| ms.and_then(rfc3339_millis);
    let status_of = |purchase_id: Uuid| {
        let paid: Vec<_> = payments
            .iter()
            .filter(|p| p.purchase_id == purchase_id && p.paid_at_ms.is_some())
            .collect();
        if paid.is_empty() {
            "started"
        } else if paid.iter().all(|p| p.refunded_at_ms.is_some()) {
            "refunded"
        } else {
            "paid"
        }
    };
    let purchases = started
        .iter()
        .map(|s| PurchaseView {
            purchase_id: s.purchase_id,
            item_id: s.item_id.clone(),
            stars: s.stars,
            started_at: time(Some(s.started_at_ms)),
            status: status_of(s.purchase_id),
        })
        .collect();
    let mut plans: BTreeMap<&str, Option<i64>> = BTreeMap::new();
    for p in payments {
        let (Some(plan), Some(_), None) = (&p.subscription, p.paid_at_ms, p.refunded_at_ms) else {
            continue;
        };
        let until = plans.entry(plan).or_default();
        *until = (*until).max(p.expires_at_ms);
    }
    let subscriptions = plans
        .into_iter()
        .map(|(plan, until)| SubscriptionView {
            plan: plan.to_owned(),
            expires_at: time(until),
            active: until.is_some_and(|until| until > now_ms),
        })
        .collect();
    let payments = payments
        .iter()
        .map(|p| PaymentView {
            telegram_payment_charge_id: p.telegram_payment_charge_id.clone(),
            purchase_id: p.purchase_id,
            item_id: p.item_id.clone(),
            stars: p.stars,
            coins: p.coins,
            subscription: p.subscription.clone(),
            expires_at: time(p.expires_at_ms),
            recurring: p.recurring,
            paid_at: time(p.paid_at_ms),
            refunded_at: time(p.refunded_at_ms),
        })
        .collect();
    PurchasesView {
        purchases,
        payments,
        subscriptions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(
        charge: &str,
        purchase: Uuid,
        refunded: bool,
        expires: Option<i64>,
    ) -> StoredPayment {
        StoredPayment {
            telegram_payment_charge_id: charge.into(),
            purchase_id: purchase,
            item_id: "vip".into(),
            stars: 250,
            coins: 0,
            subscription: expires.map(|_| "vip".into()),
            expires_at_ms: expires,
            recurring: false,
            paid_at_ms: Some(1_000),
            refunded_at_ms: refunded.then_some(2_000),
        }
    }

    #[test]
    fn a_purchase_is_paid_until_every_payment_of_it_is_refunded() {
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let started = |id| Started {
            purchase_id: id,
            item_id: "vip".into(),
            stars: 250,
            started_at_ms: 500,
        };
        let payments = [
            payment("c1", a, false, None),
            payment("c2", b, true, None),
            payment("c3", b, false, None),
            payment("c4", c, true, None),
        ];
        let v = view(
            &[
                started(a),
                started(b),
                started(c),
                started(Uuid::from_u128(4)),
            ],
            &payments,
            0,
        );
        let statuses: Vec<_> = v.purchases.iter().map(|p| p.status).collect();
        assert_eq!(statuses, ["paid", "paid", "refunded", "started"]);
        assert_eq!(v.payments.len(), 4);
    }

    #[test]
    fn a_subscription_runs_to_its_latest_unrefunded_payment() {
        let id = Uuid::from_u128(1);
        let payments = [
            payment("c1", id, false, Some(10_000)),
            payment("c2", id, false, Some(20_000)),
            payment("c3", id, true, Some(30_000)),
        ];
        let v = view(&[], &payments, 15_000);
        assert_eq!(v.subscriptions.len(), 1);
        assert_eq!(
            v.subscriptions[0].expires_at.as_deref(),
            Some("1970-01-01T00:00:20.000Z")
        );
        assert!(v.subscriptions[0].active);
        assert!(!view(&[], &payments, 25_000).subscriptions[0].active);
        assert!(
            view(&[], &payments[2..], 0).subscriptions.is_empty(),
            "refunded: no plan"
        );
    }
}
