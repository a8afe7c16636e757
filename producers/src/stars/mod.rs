//! Telegram Stars payments, the write side (Telegram's "Payments in Stars" is the contract).
//!
//! 1. `POST /v1/purchases {"item_id"}` creates an invoice link (`createInvoiceLink`, `XTR`) whose
//!    payload names the purchase under the server's MAC ([`payload`]), and appends
//!    PurchaseStarted. The Mini App opens the link with `Telegram.WebApp.openInvoice`.
//! 2. Telegram asks, through the webhook ([`webhook`]), whether the payment may go ahead (a
//!    `pre_checkout_query`). The answer is given there and then with `answerPreCheckoutQuery`,
//!    never through the event pipeline, well within Telegram's 10 s: yes only for a genuine
//!    payload of this user, an item sold at that price, and a once-only item not owned yet.
//! 3. The `successful_payment` becomes StarsPaymentReceived, keyed by the payer, with an event id
//!    derived from `telegram_payment_charge_id` ([`payment_event_id`]), and Telegram gets its
//!    2xx only after the broker acknowledged it. A redelivered update, or one replayed after the
//!    process died between append and answer, appends the same event again at worst, which
//!    every projection applies once: a payment is credited exactly once.
//! 4. Refunds, by an operator (`POST /v1/admin/refunds`, `refunds`) or reported by Telegram
//!    (`refunded_payment`), become StarsPaymentRefunded, one event id per charge whichever
//!    reports it, taking back the coins the payment granted.
//!
//! What a purchase grants: coins reach the wallets and leaderboards through the coin rules
//! (`economy::earning` in the processors); a subscription is the `purchases` projection's; an
//! energy refill is given here, once per charge ([`crate::energy::EnergyStore::refill_once`]).

pub mod payload;
mod purchases;
pub mod records;
mod refunds;
pub mod webhook;

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use surge_bot_api::BotApi;
use surge_schemas::products::Catalog;
use uuid::Uuid;

pub(crate) use purchases::{__path_catalog, __path_purchase, catalog, purchase};
pub(crate) use refunds::{__path_refund, refund};

use payload::PayloadKey;
use records::PaymentRecords;

/// How long one Bot API call may take. A pre-checkout answer must reach Telegram within 10 s.
pub const BOT_API_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of the payment side.
#[derive(Debug, Clone)]
pub struct StarsConfig {
    /// What is sold (`SURGE_CATALOG`).
    pub catalog: Catalog,
    /// The Bot API's base URL (`SURGE_TELEGRAM_API_URL`).
    pub api_url: String,
    /// The `X-Telegram-Bot-Api-Secret-Token` the webhook requires; `None` refuses every update.
    pub webhook_secret: Option<SecretString>,
    /// Bearer token of the operator endpoints (refunds); `None` closes them.
    pub operator_token: Option<SecretString>,
}

impl StarsConfig {
    /// The built-in catalogue on Telegram's own Bot API, webhook and operator endpoints closed.
    pub fn new() -> StarsConfig {
        StarsConfig {
            catalog: Catalog::builtin(),
            api_url: surge_bot_api::TELEGRAM_API_URL.to_owned(),
            webhook_secret: None,
            operator_token: None,
        }
    }
}

impl Default for StarsConfig {
    fn default() -> Self {
        StarsConfig::new()
    }
}

/// What the payment handlers share.
#[derive(Clone)]
pub struct Stars {
    pub bot: BotApi,
    pub key: PayloadKey,
    pub records: PaymentRecords,
}

impl Stars {
    pub fn new(
        config: &StarsConfig,
        bot_token: &SecretString,
        redis: surge_redis::Redis,
        prefix: &str,
    ) -> Stars {
        Stars {
            bot: BotApi::new(&config.api_url, bot_token.clone(), BOT_API_TIMEOUT),
            key: PayloadKey::from_bot_token(bot_token.expose_secret()),
            records: PaymentRecords::new(redis, prefix),
        }
    }
}

/// The event id of what happened to one charge (`kind`: the event type's name): the same for
/// every report of it, so a payment or a refund appended twice is applied once. A refund is
/// reported by an operator's call and by Telegram at different instants, so nothing of the time
/// goes in: a UUIDv8 of a hash of the kind and the charge id.
pub fn payment_event_id(kind: &str, charge_id: &str) -> Uuid {
    let digest = Sha256::new()
        .chain_update(kind.as_bytes())
        .chain_update([0])
        .chain_update(charge_id.as_bytes())
        .finalize();
    let mut bytes: [u8; 16] = digest[..16].try_into().expect("16 of 32 bytes");
    bytes[6] = (bytes[6] & 0x0f) | 0x80; // version 8: custom
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_has_one_event_id_per_kind_whatever_reports_it() {
        let paid = payment_event_id("StarsPaymentReceived", "stx1");
        assert_eq!(paid, payment_event_id("StarsPaymentReceived", "stx1"));
        assert_ne!(paid, payment_event_id("StarsPaymentReceived", "stx2"));
        assert_ne!(paid, payment_event_id("StarsPaymentRefunded", "stx1"));
        assert_eq!(paid.get_version_num(), 8);
    }
}
