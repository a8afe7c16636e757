//! `POST /telegram/webhook`, on an address of its own (`SURGE_TELEGRAM_WEBHOOK_ADDR`): the Bot
//! API updates of payments. Only requests carrying the configured
//! `X-Telegram-Bot-Api-Secret-Token` are read (401 otherwise, 403 while no secret is
//! configured); an update handled to the end is answered again at once ([`super::records`]).
//!
//! Telegram redelivers an update until it gets a 2xx, so a payment is answered 2xx only after
//! its event was acknowledged by the broker and its records written; anything that fails before
//! answers 503 and Telegram tries again, which appends the same event (the same id) at worst.

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use surge_schemas::products::{Catalog, Grant};
use surge_schemas::{Envelope, Event, EventType, StarsPaymentReceived, StarsPaymentRefunded};

use super::payload::InvoicePayload;
use super::payment_event_id;
use super::purchases::payments_store_down;
use super::records::{Charge, UPDATE_TTL};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::handlers::{append, now_ms};
use crate::trace::TraceContext;

/// The header Telegram sends the webhook's secret token in (`setWebhook`'s `secret_token`).
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Whether `secret` is one Telegram accepts: 1–256 of `A-Za-z0-9_-`.
pub fn valid_secret(secret: &str) -> bool {
    (1..=256).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The parts of a Telegram `Update` this webhook reads; every other field is ignored.
#[derive(Debug, Deserialize)]
struct Update {
    update_id: i64,
    pre_checkout_query: Option<PreCheckoutQuery>,
    message: Option<Message>,
}

#[derive(Debug, Deserialize)]
struct User {
    id: i64,
}

#[derive(Debug, Deserialize)]
struct PreCheckoutQuery {
    id: String,
    from: User,
    currency: String,
    total_amount: i64,
    invoice_payload: String,
}

#[derive(Debug, Deserialize)]
struct Chat {
    id: i64,
}

#[derive(Debug, Deserialize)]
struct Message {
    /// Unix seconds.
    date: i64,
    from: Option<User>,
    chat: Chat,
    successful_payment: Option<SuccessfulPayment>,
    refunded_payment: Option<RefundedPayment>,
}

#[derive(Debug, Deserialize)]
struct SuccessfulPayment {
    currency: String,
    total_amount: i64,
    invoice_payload: String,
    telegram_payment_charge_id: String,
    /// Unix seconds; for subscriptions.
    subscription_expiration_date: Option<i64>,
    #[serde(default)]
    is_recurring: bool,
    #[serde(default)]
    is_first_recurring: bool,
}

#[derive(Debug, Deserialize)]
struct RefundedPayment {
    currency: String,
    total_amount: i64,
    invoice_payload: String,
    telegram_payment_charge_id: String,
}

/// What an update was, for metrics.
#[derive(Debug, Clone, Copy)]
enum Kind {
    PreCheckout,
    Payment,
    Refund,
    Other,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::PreCheckout => "pre_checkout_query",
            Kind::Payment => "successful_payment",
            Kind::Refund => "refunded_payment",
            Kind::Other => "other",
        }
    }
}

pub(crate) async fn update(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = check_secret(&s, &headers) {
        return refused.into_response();
    }
    let update: Update = match serde_json::from_slice(&body) {
        Ok(update) => update,
        Err(e) => {
            return ApiError::bad_request("invalid_update", format!("not a Telegram update: {e}"))
                .into_response();
        }
    };
    let kind = match (&update.pre_checkout_query, &update.message) {
        (Some(_), _) => Kind::PreCheckout,
        (None, Some(m)) if m.successful_payment.is_some() => Kind::Payment,
        (None, Some(m)) if m.refunded_payment.is_some() => Kind::Refund,
        _ => Kind::Other,
    };
    let count = |outcome: &str| {
        s.metrics
            .telegram_updates
            .with_label_values(&[kind.as_str(), outcome])
            .inc();
    };
    match s.stars.records.update_handled(update.update_id).await {
        Ok(true) => {
            count("duplicate");
            return handled();
        }
        Ok(false) => {}
        Err(e) => return payments_store_down(e).into_response(),
    }
    let outcome = match (update.pre_checkout_query, update.message) {
        (Some(query), _) => Ok(pre_checkout(&s, query).await),
        (None, Some(message)) => match kind {
            Kind::Payment => payment(&s, message, &headers).await,
            Kind::Refund => refunded(&s, message, &headers).await,
            _ => Ok("ignored"),
        },
        (None, None) => Ok("ignored"),
    };
    match outcome {
        Ok(outcome) => {
            count(outcome);
            if let Err(e) = s.stars.records.mark_update_handled(update.update_id).await {
                // Handled all the same; a redelivery would be handled again, harmlessly.
                surge_http::sampled_warn!(%e, "Could not remember a handled update.");
            }
            handled()
        }
        Err(error) => {
            count("failed");
            error.into_response()
        }
    }
}

fn handled() -> Response {
    (StatusCode::OK, Json(json!({ "ok": true }))).into_response()
}

fn check_secret(s: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &s.config.stars.webhook_secret else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "webhook_disabled",
            "no webhook secret is configured (SURGE_TELEGRAM_WEBHOOK_SECRET): every update is refused",
        ));
    };
    let given = headers.get(SECRET_HEADER).and_then(|v| v.to_str().ok());
    match given {
        Some(given) if surge_http::secret_matches(given, expected) => Ok(()),
        Some(_) => Err(ApiError::unauthorized(
            "invalid_webhook_secret",
            "X-Telegram-Bot-Api-Secret-Token does not match",
        )),
        None => Err(ApiError::unauthorized(
            "webhook_secret_required",
            "send X-Telegram-Bot-Api-Secret-Token",
        )),
    }
}

/// Answers a pre-checkout query there and then. Returns the outcome for metrics; a failed
/// answer is logged, not retried: Telegram cancels the payment and the user may try again.
async fn pre_checkout(s: &AppState, query: PreCheckoutQuery) -> &'static str {
    let started = Instant::now();
    let verdict = verdict(s, &query).await;
    let answered = s
        .stars
        .bot
        .answer_pre_checkout_query(&query.id, verdict)
        .await;
    let label = if verdict.is_ok() { "ok" } else { "refused" };
    s.metrics
        .pre_checkout_seconds
        .with_label_values(&[label])
        .observe(started.elapsed().as_secs_f64());
    match answered {
        Ok(()) => {
            if let Err(reason) = verdict {
                tracing::info!(
                    user_id = query.from.id,
                    reason,
                    "Refused a pre-checkout query."
                );
            }
            label
        }
        Err(error) => {
            tracing::warn!(%error, user_id = query.from.id, "Could not answer a pre-checkout query.");
            "failed"
        }
    }
}

/// Whether the payment may go ahead, or the message Telegram shows the user.
async fn verdict(s: &AppState, query: &PreCheckoutQuery) -> Result<(), &'static str> {
    if query.currency != "XTR" {
        return Err("This item is sold for Telegram Stars only.");
    }
    let payload = InvoicePayload::open(&query.invoice_payload, &s.stars.key)
        .map_err(|_| "This invoice is not valid.")?;
    if payload.user_id != query.from.id {
        return Err("This invoice was made for another account. Open the shop to buy.");
    }
    let item = s
        .config
        .stars
        .catalog
        .get(&payload.item_id)
        .ok_or("This item is no longer sold.")?;
    if item.stars != query.total_amount {
        return Err("The price of this item has changed. Open the shop again.");
    }
    if item.once {
        let unavailable = "Purchases are briefly unavailable. Please try again.";
        let records = &s.stars.records;
        if records
            .owns(payload.user_id, &item.id)
            .await
            .map_err(|_| unavailable)?
        {
            return Err("You already own this item.");
        }
        if !records
            .hold(payload.user_id, &item.id, payload.purchase_id)
            .await
            .map_err(|_| unavailable)?
        {
            return Err("A purchase of this item is already in progress.");
        }
    }
    Ok(())
}

async fn payment(
    s: &AppState,
    message: Message,
    headers: &HeaderMap,
) -> Result<&'static str, ApiError> {
    let paid = message.successful_payment.expect("a payment update");
    let payer = message.from.map_or(message.chat.id, |u| u.id);
    let charge_id = paid.telegram_payment_charge_id.clone();
    let Some(payload) = opened(s, &paid.invoice_payload, &charge_id, &paid.currency) else {
        return Ok("unmatched");
    };
    let item = s.config.stars.catalog.get(&payload.item_id);
    let once = item.is_some_and(|i| i.once);
    // Recorded only after its event was acknowledged (and its boost given): appending it again
    // could only count it twice where duplicates are remembered for a while (the Redis
    // projections' 48 h), never add anything. Its buyer's side may have been cut off: redone.
    if let Some(charge) = recorded(s, &charge_id).await? {
        s.stars
            .records
            .paid_again(&charge_id, &charge, &payload.item_id, once)
            .await
            .map_err(payments_store_down)?;
        return Ok("duplicate");
    }
    let event = payment_event(
        payer,
        &paid,
        &payload,
        &s.config.stars.catalog,
        message.date,
    );
    if !appendable(&event, &charge_id) {
        return Ok("unmatched");
    }
    append_one(s, event, headers).await?;
    let charge = Charge {
        user_id: payer,
        invoice_payload: paid.invoice_payload,
        stars: paid.total_amount,
        refunded: false,
    };
    // A boost is spent on the write side, once per charge however often it is reported; given
    // before the charge is recorded, so a crash between the two gives it on the redelivery.
    if item.is_some_and(|i| i.grants == Grant::EnergyRefill) {
        s.energy
            .refill_once(payer, &charge_id, UPDATE_TTL)
            .await
            .map_err(payments_store_down)?;
    }
    s.stars
        .records
        .paid(&charge_id, &charge, &payload.item_id, once)
        .await
        .map_err(payments_store_down)?;
    tracing::info!(
        charge_id,
        user_id = payer,
        item_id = payload.item_id,
        stars = charge.stars,
        "Received a Stars payment."
    );
    Ok("ok")
}

async fn refunded(
    s: &AppState,
    message: Message,
    headers: &HeaderMap,
) -> Result<&'static str, ApiError> {
    let refund = message.refunded_payment.expect("a refund update");
    let user_id = message.from.map_or(message.chat.id, |u| u.id);
    let charge_id = refund.telegram_payment_charge_id;
    let Some(payload) = opened(s, &refund.invoice_payload, &charge_id, &refund.currency) else {
        return Ok("unmatched");
    };
    if recorded(s, &charge_id).await?.is_some_and(|c| c.refunded) {
        return Ok("duplicate");
    }
    let event = refund_event(
        user_id,
        &charge_id,
        refund.total_amount,
        &payload,
        message.date.saturating_mul(1000),
    );
    if !appendable(&event, &charge_id) {
        return Ok("unmatched");
    }
    append_one(s, event, headers).await?;
    let charge = Charge {
        user_id,
        invoice_payload: refund.invoice_payload,
        stars: refund.total_amount,
        refunded: true,
    };
    s.stars
        .records
        .refunded(&charge_id, &charge, &payload.item_id)
        .await
        .map_err(payments_store_down)?;
    tracing::info!(
        charge_id,
        user_id,
        "Telegram reported a refunded Stars payment."
    );
    Ok("ok")
}

/// The purchase a payment's payload names; `None` (logged for an operator) when it is not one
/// of ours or not in Stars. Such a payment is answered 2xx: redelivering it cannot help.
fn opened(s: &AppState, payload: &str, charge_id: &str, currency: &str) -> Option<InvoicePayload> {
    match InvoicePayload::open(payload, &s.stars.key) {
        Ok(payload) if currency == "XTR" => Some(payload),
        Ok(_) => {
            tracing::error!(
                charge_id,
                currency,
                "A payment in a currency other than Stars; not credited."
            );
            None
        }
        Err(e) => {
            tracing::error!(charge_id, error = %e, "A payment whose invoice payload is not Surge's; not credited.");
            None
        }
    }
}

/// What the write side recorded of `charge_id`: its payment, and whether its refund was
/// appended.
async fn recorded(s: &AppState, charge_id: &str) -> Result<Option<Charge>, ApiError> {
    s.stars
        .records
        .charge(charge_id)
        .await
        .map_err(payments_store_down)
}

/// Whether the event passes the field rules; one that does not is logged for an operator.
fn appendable(event: &Event, charge_id: &str) -> bool {
    match surge_schemas::rules::check(&event.payload) {
        Ok(()) => true,
        Err(violation) => {
            tracing::error!(charge_id, %violation, "A payment update breaks the field rules; not credited.");
            false
        }
    }
}

async fn append_one(s: &AppState, event: Event, headers: &HeaderMap) -> Result<(), ApiError> {
    let trace =
        TraceContext::continue_or_start(headers.get("traceparent").and_then(|v| v.to_str().ok()));
    append(s, &[event], false, &trace, None)
        .await
        .map(drop)
        .map_err(|failed| failed.error)
}

fn payment_event(
    payer: i64,
    paid: &SuccessfulPayment,
    payload: &InvoicePayload,
    catalog: &Catalog,
    date_secs: i64,
) -> Event {
    let plan = match catalog.get(&payload.item_id).map(|i| &i.grants) {
        Some(Grant::Subscription(plan)) => Some(plan.clone()),
        // An item since removed from the catalogue: Telegram still says it is a subscription.
        None if paid.subscription_expiration_date.is_some() => Some(payload.item_id.clone()),
        _ => None,
    };
    let charge_id = &paid.telegram_payment_charge_id;
    Event {
        envelope: Envelope {
            event_id: payment_event_id(EventType::StarsPaymentReceived.name(), charge_id),
            user_id: payer,
            occurred_at: date_secs.saturating_mul(1000),
            recorded_at: now_ms(),
        },
        payload: StarsPaymentReceived {
            telegram_payment_charge_id: charge_id.clone(),
            purchase_id: payload.purchase_id,
            item_id: payload.item_id.clone(),
            stars: paid.total_amount,
            coins: payload.coins,
            subscription: plan,
            subscription_expires_at: paid
                .subscription_expiration_date
                .map(|secs| secs.saturating_mul(1000)),
            recurring: paid.is_recurring && !paid.is_first_recurring,
        }
        .into(),
    }
}

/// The refund of `charge_id`, whichever reports it (an operator's call, Telegram's update).
pub(super) fn refund_event(
    user_id: i64,
    charge_id: &str,
    stars: i64,
    payload: &InvoicePayload,
    occurred_at_ms: i64,
) -> Event {
    Event {
        envelope: Envelope {
            event_id: payment_event_id(EventType::StarsPaymentRefunded.name(), charge_id),
            user_id,
            occurred_at: occurred_at_ms,
            recorded_at: now_ms(),
        },
        payload: StarsPaymentRefunded {
            telegram_payment_charge_id: charge_id.to_owned(),
            purchase_id: payload.purchase_id,
            item_id: payload.item_id.clone(),
            stars,
            coins: payload.coins,
        }
        .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_what_telegram_accepts() {
        assert!(valid_secret("abc_DEF-123"));
        assert!(valid_secret(&"a".repeat(256)));
        assert!(!valid_secret(""));
        assert!(!valid_secret(&"a".repeat(257)));
        assert!(!valid_secret("with space"));
        assert!(!valid_secret("ümlaut"));
    }

    #[test]
    fn a_subscription_payment_names_its_plan_and_a_renewal_is_recurring() {
        let key = super::super::payload::PayloadKey::from_bot_token("1:x");
        let payload = InvoicePayload {
            purchase_id: uuid::Uuid::nil(),
            user_id: 7,
            item_id: "vip".into(),
            coins: 0,
        };
        let paid = SuccessfulPayment {
            currency: "XTR".into(),
            total_amount: 250,
            invoice_payload: payload.seal(&key),
            telegram_payment_charge_id: "stx9".into(),
            subscription_expiration_date: Some(1_800_000_000),
            is_recurring: true,
            is_first_recurring: false,
        };
        let event = payment_event(7, &paid, &payload, &Catalog::builtin(), 1_797_000_000);
        assert_eq!(event.envelope.occurred_at, 1_797_000_000_000);
        assert_eq!(
            event.envelope.event_id,
            payment_event_id("StarsPaymentReceived", "stx9")
        );
        let surge_schemas::Payload::StarsPaymentReceived(p) = event.payload else {
            panic!("a payment");
        };
        assert_eq!(p.subscription.as_deref(), Some("vip"));
        assert_eq!(p.subscription_expires_at, Some(1_800_000_000_000));
        assert!(p.recurring);
        let first = SuccessfulPayment {
            is_first_recurring: true,
            ..paid
        };
        let event = payment_event(7, &first, &payload, &Catalog::builtin(), 1_797_000_000);
        let surge_schemas::Payload::StarsPaymentReceived(p) = event.payload else {
            panic!("a payment");
        };
        assert!(
            !p.recurring,
            "the first payment of a subscription is not a renewal"
        );
    }
}
