//! Payments in Telegram Stars: an invoice opened, a payment Telegram reported, a refund (see
//! [`crate::products`] for the catalogue).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{PayloadType, uuid_as_str};
use crate::products::{self, MAX_COINS, MAX_STARS};
use crate::rules::{MAX_CHARGE_ID, Text, Violation, between};

/// The user asked to buy a catalogue item; see [`crate::products`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseStarted {
    #[serde(serialize_with = "uuid_as_str")]
    pub purchase_id: Uuid,
    pub item_id: String,
    pub stars: i64,
}

impl PayloadType for PurchaseStarted {
    fn check(&self) -> Result<(), Violation> {
        let PurchaseStarted {
            purchase_id: _,
            item_id,
            stars,
        } = self;
        Text::Token {
            max: products::MAX_ID,
        }
        .check("item_id", item_id)?;
        between("stars", *stars, 1, MAX_STARS)
    }

    fn energy_cost(&self) -> u64 {
        0
    }

    fn sample() -> Self {
        PurchaseStarted {
            purchase_id: Uuid::now_v7(),
            item_id: "coins_1000".into(),
            stars: 50,
        }
    }
}

/// Telegram reported a successful Stars payment; one event per `telegram_payment_charge_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StarsPaymentReceived {
    pub telegram_payment_charge_id: String,
    #[serde(serialize_with = "uuid_as_str")]
    pub purchase_id: Uuid,
    pub item_id: String,
    pub stars: i64,
    /// Coins granted, as the invoice said when it was created.
    pub coins: i64,
    /// The plan a subscription payment pays for.
    pub subscription: Option<String>,
    /// Unix milliseconds: when the period this payment pays for ends.
    pub subscription_expires_at: Option<i64>,
    /// A renewal, not the subscription's first payment.
    pub recurring: bool,
}

impl PayloadType for StarsPaymentReceived {
    fn check(&self) -> Result<(), Violation> {
        let StarsPaymentReceived {
            telegram_payment_charge_id,
            purchase_id: _,
            item_id,
            stars,
            coins,
            subscription,
            subscription_expires_at: _,
            recurring: _,
        } = self;
        charge(telegram_payment_charge_id, item_id)?;
        // Telegram, not the catalogue, says what was paid: any positive amount.
        between("stars", *stars, 1, i64::MAX)?;
        between("coins", *coins, 0, MAX_COINS)?;
        Text::Token {
            max: products::MAX_ID,
        }
        .check_opt("subscription", subscription)
    }

    fn energy_cost(&self) -> u64 {
        0
    }

    fn sample() -> Self {
        StarsPaymentReceived {
            telegram_payment_charge_id: "stxA1b2-C3_d4".into(),
            purchase_id: Uuid::now_v7(),
            item_id: "vip".into(),
            stars: 250,
            coins: 0,
            subscription: Some("vip".into()),
            subscription_expires_at: Some(1_795_000_000_000),
            recurring: true,
        }
    }
}

/// A Stars payment was refunded; one event per refunded charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StarsPaymentRefunded {
    pub telegram_payment_charge_id: String,
    #[serde(serialize_with = "uuid_as_str")]
    pub purchase_id: Uuid,
    pub item_id: String,
    pub stars: i64,
    /// Coins the payment granted, taken back.
    pub coins: i64,
}

impl PayloadType for StarsPaymentRefunded {
    fn check(&self) -> Result<(), Violation> {
        let StarsPaymentRefunded {
            telegram_payment_charge_id,
            purchase_id: _,
            item_id,
            stars,
            coins,
        } = self;
        charge(telegram_payment_charge_id, item_id)?;
        between("stars", *stars, 1, i64::MAX)?;
        between("coins", *coins, 0, MAX_COINS)
    }

    fn energy_cost(&self) -> u64 {
        0
    }

    fn sample() -> Self {
        StarsPaymentRefunded {
            telegram_payment_charge_id: "stxA1b2-C3_d4".into(),
            purchase_id: Uuid::now_v7(),
            item_id: "coins_1000".into(),
            stars: 50,
            coins: 1000,
        }
    }
}

/// A payment's charge id and item id.
fn charge(charge_id: &str, item_id: &str) -> Result<(), Violation> {
    Text::Opaque { max: MAX_CHARGE_ID }.check("telegram_payment_charge_id", charge_id)?;
    Text::Token {
        max: products::MAX_ID,
    }
    .check("item_id", item_id)
}
