//! A fake of Telegram's Bot API for tests, and a driver that sends Telegram-shaped updates to a
//! webhook. No test can reach Telegram; this stands in for it.
//!
//! What it models:
//! - The transport: `<url>/bot<token>/<method>`, any HTTP verb, parameters from the query string
//!   and a JSON or `application/x-www-form-urlencoded` body (form values are strings; numbers,
//!   booleans and JSON-serialized arrays inside them are read as Telegram reads them). Method
//!   names are case-insensitive. Answers are `{"ok":true,"result":…}` or
//!   `{"ok":false,"error_code":N,"description":…[,"parameters":{"retry_after":S}]}` with HTTP
//!   status N. A wrong token is 401 `Unauthorized`, an unknown method 404 `Not Found`.
//! - `createInvoiceLink`: title 1–32 characters, description 1–255 characters, payload 1–128
//!   bytes; for `XTR` no provider token and exactly one price with a positive amount;
//!   `subscription_period` only with `XTR` and only 2592000. Other currencies need a provider
//!   token. The link is `https://t.me/$<random slug>`; its parameters are kept per link.
//! - `answerPreCheckoutQuery`: only for queries this fake issued, once each, `error_message`
//!   required when `ok` is false, and at most 10 s after the query was sent.
//! - `refundStarPayment`: only charges made with [`FakeBotApi::pay`], by the same user, once.
//! - `sendMessage`: `chat_id` and 1–4096 characters of `text`; every chat is a private chat.
//! - Updates: `pre_checkout_query`, and `message` with `successful_payment` or
//!   `refunded_payment`, posted with the `X-Telegram-Bot-Api-Secret-Token` header.
//!
//! What it does not model: any other method or field (photos, tips, shipping, entities,
//! keyboards, business connections), Telegram's real limits on Star amounts, flood control
//! unless injected with [`FakeBotApi::fail_next`], chats other than private, per-chat message
//! ids, webhook redelivery or ordering, and the buyer's side (nothing pays unless a test calls
//! [`FakeBotApi::pay`]). The texts of `QUERY_ID_INVALID`, `CHARGE_NOT_FOUND`,
//! `CHARGE_ALREADY_REFUNDED`, the too-old query, `message text is empty` and `message is too
//! long` are Telegram's; the other `Bad Request:` reasons are this fake's own wording.
//! A call is processed when it arrives; [`FakeBotApi::delay_next`] only holds back its answer,
//! as when Telegram did the work but the reply was slow.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode, Uri, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// How long Telegram waits for `answerPreCheckoutQuery`.
pub const PRE_CHECKOUT_WINDOW: Duration = Duration::from_secs(10);
/// The only `subscription_period` Telegram accepts (30 days).
pub const SUBSCRIPTION_PERIOD: i64 = 2_592_000;

static MESSAGE_IDS: AtomicI64 = AtomicI64::new(1);

/// One request the fake answered.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub params: Value,
    pub at: Instant,
    /// The body the fake answered with.
    pub answered: Value,
}

/// A payment made with [`FakeBotApi::pay`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charge {
    pub user_id: i64,
    pub total_amount: i64,
    pub invoice_payload: String,
    pub subscription: bool,
    pub refunded: bool,
}

/// The subscription fields of a `successful_payment`.
#[derive(Clone, Copy, Debug)]
pub struct Subscription {
    pub expiration_date: i64,
    /// The first payment of the subscription, not a renewal.
    pub first: bool,
}

/// Where the system under test receives updates, and the `secret_token` it gave `setWebhook`.
#[derive(Clone, Debug)]
pub struct Webhook {
    pub url: String,
    pub secret: Option<String>,
}

impl Webhook {
    /// POSTs `update` as Telegram does; panics when the webhook cannot be reached.
    pub async fn send(&self, update: &Value) -> reqwest::Response {
        let mut request = reqwest::Client::new().post(&self.url).json(update);
        if let Some(secret) = &self.secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        let sent = request.send().await;
        sent.unwrap_or_else(|e| panic!("posting an update to the webhook {}: {e}", self.url))
    }
}

type Answer = Result<Value, (u16, String)>;
type PreCheckoutAnswer = (bool, Option<String>, Duration);

struct Query {
    sent: Instant,
    answer: Option<PreCheckoutAnswer>,
}

struct Fault {
    code: u16,
    description: String,
    retry_after: Option<u64>,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    invoices: HashMap<String, Value>,
    queries: HashMap<String, Query>,
    charges: HashMap<String, Charge>,
    faults: HashMap<String, VecDeque<Fault>>,
    delays: HashMap<String, VecDeque<Duration>>,
}

struct Shared {
    token: String,
    state: Mutex<State>,
}

/// The fake server; it stops when dropped.
pub struct FakeBotApi {
    url: String,
    shared: Arc<Shared>,
    update_ids: AtomicI64,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeBotApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeBotApi {
    /// Serves the fake on `127.0.0.1` at a free port, accepting `token` only.
    pub async fn start(token: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake Bot API");
        let url = format!(
            "http://{}",
            listener.local_addr().expect("fake Bot API address")
        );
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            state: Mutex::default(),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("fake Bot API server");
        });
        Self {
            url,
            shared,
            update_ids: AtomicI64::new(1),
            server,
        }
    }

    /// The base URL, e.g. `http://127.0.0.1:PORT` (what `SURGE_TELEGRAM_API_URL` is set to).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `<url>/bot<token>/<method>`.
    pub fn method_url(&self, method: &str) -> String {
        format!("{}/bot{}/{method}", self.url, self.shared.token)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().expect("fake Bot API state")
    }

    /// The next call of `method` answers `error_code` with `description` (and `retry_after`).
    /// Calls queue: injecting twice fails the next two calls.
    pub fn fail_next(
        &self,
        method: &str,
        error_code: u16,
        description: &str,
        retry_after: Option<u64>,
    ) {
        let fault = Fault {
            code: error_code,
            description: description.to_owned(),
            retry_after,
        };
        self.state()
            .faults
            .entry(method.to_ascii_lowercase())
            .or_default()
            .push_back(fault);
    }

    /// The next call of `method` is processed at once but answered after `delay`.
    pub fn delay_next(&self, method: &str, delay: Duration) {
        self.state()
            .delays
            .entry(method.to_ascii_lowercase())
            .or_default()
            .push_back(delay);
    }

    /// Every call so far, in order of arrival.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// The calls of `method` so far.
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        let state = self.state();
        state
            .calls
            .iter()
            .filter(|c| c.method.eq_ignore_ascii_case(method))
            .cloned()
            .collect()
    }

    /// The first call of `method`, waiting up to `timeout` for it.
    pub async fn wait_for_call(&self, method: &str, timeout: Duration) -> Call {
        self.wait_for_calls(method, 1, timeout).await.swap_remove(0)
    }

    /// The calls of `method` once there are at least `n`; panics after `timeout`.
    pub async fn wait_for_calls(&self, method: &str, n: usize, timeout: Duration) -> Vec<Call> {
        let deadline = Instant::now() + timeout;
        loop {
            let calls = self.calls_to(method);
            if calls.len() >= n {
                return calls;
            }
            assert!(
                Instant::now() < deadline,
                "fake Bot API: {n} call(s) of {method} expected within {timeout:?}, got {}",
                calls.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The parameters `link` was created with.
    pub fn invoice(&self, link: &str) -> Option<Value> {
        self.state().invoices.get(link).cloned()
    }

    /// How `query_id` was answered: `ok`, `error_message`, and how long after it was sent.
    pub fn pre_checkout_answer(&self, query_id: &str) -> Option<PreCheckoutAnswer> {
        self.state().queries.get(query_id)?.answer.clone()
    }

    /// Makes `query_id` look sent `by` earlier, to test the 10 s limit without waiting.
    pub fn age_pre_checkout(&self, query_id: &str, by: Duration) {
        let mut state = self.state();
        let query = state
            .queries
            .get_mut(query_id)
            .expect("a pre-checkout query the fake issued");
        query.sent = query
            .sent
            .checked_sub(by)
            .expect("an instant that far back");
    }

    /// A fresh `update_id`, increasing.
    pub fn next_update_id(&self) -> i64 {
        self.update_ids.fetch_add(1, Ordering::Relaxed)
    }

    /// A `pre_checkout_query` update and its id, which `answerPreCheckoutQuery` then accepts
    /// (the 10 s start now).
    pub fn pre_checkout_query(
        &self,
        update_id: i64,
        user_id: i64,
        currency: &str,
        total_amount: i64,
        invoice_payload: &str,
    ) -> (Value, String) {
        let id = (uuid::Uuid::new_v4().as_u128() as u64 >> 1).to_string();
        self.state().queries.insert(
            id.clone(),
            Query {
                sent: Instant::now(),
                answer: None,
            },
        );
        let query = json!({"id": id, "from": user(user_id), "currency": currency,
            "total_amount": total_amount, "invoice_payload": invoice_payload});
        (
            json!({"update_id": update_id, "pre_checkout_query": query}),
            id,
        )
    }

    /// Issues an `XTR` pre-checkout query and posts it to `webhook`.
    pub async fn pre_checkout(
        &self,
        webhook: &Webhook,
        update_id: i64,
        user_id: i64,
        total_amount: i64,
        invoice_payload: &str,
    ) -> (reqwest::Response, String) {
        let (update, id) =
            self.pre_checkout_query(update_id, user_id, "XTR", total_amount, invoice_payload);
        (webhook.send(&update).await, id)
    }

    /// Records a payment by `user_id` and returns its new `telegram_payment_charge_id`.
    pub fn pay(
        &self,
        user_id: i64,
        total_amount: i64,
        invoice_payload: &str,
        subscription: bool,
    ) -> String {
        let id = format!("stxfake{}", uuid::Uuid::new_v4().simple());
        let charge = Charge {
            user_id,
            total_amount,
            invoice_payload: invoice_payload.to_owned(),
            subscription,
            refunded: false,
        };
        self.state().charges.insert(id.clone(), charge);
        id
    }

    /// The payment `charge_id`, refunded or not.
    pub fn charge(&self, charge_id: &str) -> Option<Charge> {
        self.state().charges.get(charge_id).cloned()
    }
}

/// A `message` update with a `successful_payment` in Stars.
pub fn successful_payment_update(
    update_id: i64,
    user_id: i64,
    total_amount: i64,
    invoice_payload: &str,
    charge_id: &str,
    subscription: Option<Subscription>,
) -> Value {
    let mut payment = json!({"currency": "XTR", "total_amount": total_amount,
        "invoice_payload": invoice_payload, "telegram_payment_charge_id": charge_id,
        "provider_payment_charge_id": ""});
    if let Some(s) = subscription {
        payment["subscription_expiration_date"] = json!(s.expiration_date);
        payment["is_recurring"] = json!(true);
        if s.first {
            payment["is_first_recurring"] = json!(true);
        }
    }
    message_update(update_id, user_id, "successful_payment", payment)
}

/// A `message` update with a `refunded_payment` in Stars.
pub fn refunded_payment_update(
    update_id: i64,
    user_id: i64,
    total_amount: i64,
    invoice_payload: &str,
    charge_id: &str,
) -> Value {
    let payment = json!({"currency": "XTR", "total_amount": total_amount,
        "invoice_payload": invoice_payload, "telegram_payment_charge_id": charge_id});
    message_update(update_id, user_id, "refunded_payment", payment)
}

fn user(id: i64) -> Value {
    json!({"id": id, "is_bot": false, "first_name": "Test", "language_code": "en"})
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn message_update(update_id: i64, user_id: i64, field: &str, content: Value) -> Value {
    let message_id = MESSAGE_IDS.fetch_add(1, Ordering::Relaxed);
    json!({"update_id": update_id, "message": {"message_id": message_id, "from": user(user_id),
        "chat": {"id": user_id, "type": "private", "first_name": "Test"}, "date": unix_now(),
        field: content}})
}

async fn handle(
    AxumState(shared): AxumState<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let path = uri.path();
    let (token, method) = path
        .strip_prefix("/bot")
        .and_then(|p| p.split_once('/'))
        .unwrap_or(("", path));
    let params = parse_params(&uri, &headers, &body);
    let key = method.to_ascii_lowercase();
    let (answered, delay) = {
        let mut state = shared.state.lock().expect("fake Bot API state");
        let authorized = token == shared.token;
        let fault = authorized
            .then(|| state.faults.get_mut(&key)?.pop_front())
            .flatten();
        let delay = authorized
            .then(|| state.delays.get_mut(&key)?.pop_front())
            .flatten();
        let answered = match (authorized, fault, &params) {
            (false, ..) => error(401, "Unauthorized", None),
            (true, Some(f), _) => error(f.code, &f.description, f.retry_after),
            (true, None, Err(e)) => error(400, &bad(e).1, None),
            (true, None, Ok(p)) => match state.dispatch(&key, p, at) {
                Ok(result) => json!({"ok": true, "result": result}),
                Err((code, description)) => error(code, &description, None),
            },
        };
        let params = Value::Object(params.unwrap_or_default());
        let (method, answer) = (method.to_owned(), answered.clone());
        state.calls.push(Call {
            method,
            params,
            at,
            answered: answer,
        });
        (answered, delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let status = answered["error_code"].as_u64().unwrap_or(200) as u16;
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        axum::Json(answered),
    )
        .into_response()
}

fn error(code: u16, description: &str, retry_after: Option<u64>) -> Value {
    let mut body = json!({"ok": false, "error_code": code, "description": description});
    if let Some(seconds) = retry_after {
        body["parameters"] = json!({"retry_after": seconds});
    }
    body
}

fn bad(reason: impl std::fmt::Display) -> (u16, String) {
    (400, format!("Bad Request: {reason}"))
}

fn parse_params(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, String> {
    let form = |bytes: &[u8], params: &mut Map<String, Value>| {
        params.extend(
            form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))),
        );
    };
    let mut params = Map::new();
    form(uri.query().unwrap_or_default().as_bytes(), &mut params);
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/json") {
        match serde_json::from_slice(body) {
            Ok(Value::Object(fields)) => params.extend(fields),
            _ => return Err("the body is not a JSON object".to_owned()),
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        form(body, &mut params);
    } else if !body.is_empty() {
        return Err(format!("unsupported Content-Type {content_type:?}"));
    }
    Ok(params)
}

fn text<'a>(p: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    p.get(name)?.as_str()
}

fn int(p: &Map<String, Value>, name: &str) -> Option<i64> {
    match p.get(name)? {
        Value::String(s) => s.parse().ok(),
        v => v.as_i64(),
    }
}

fn required<T>(value: Option<T>, name: &str) -> Result<T, (u16, String)> {
    value.ok_or_else(|| bad(format_args!("{name} is empty")))
}

fn length(count: usize, max: usize, name: &str, unit: &str) -> Result<(), (u16, String)> {
    let fits = (1..=max).contains(&count);
    fits.then_some(())
        .ok_or_else(|| bad(format_args!("{name} must be 1-{max} {unit}")))
}

impl State {
    fn dispatch(&mut self, method: &str, p: &Map<String, Value>, at: Instant) -> Answer {
        match method {
            "createinvoicelink" => self.create_invoice_link(p),
            "answerprecheckoutquery" => self.answer_pre_checkout_query(p, at),
            "refundstarpayment" => self.refund_star_payment(p),
            "sendmessage" => send_message(p),
            _ => Err((404, "Not Found".to_owned())),
        }
    }

    fn create_invoice_link(&mut self, p: &Map<String, Value>) -> Answer {
        let title = required(text(p, "title"), "title")?;
        length(title.chars().count(), 32, "title", "characters")?;
        let description = required(text(p, "description"), "description")?;
        length(
            description.chars().count(),
            255,
            "description",
            "characters",
        )?;
        let payload = required(text(p, "payload"), "payload")?;
        length(payload.len(), 128, "payload", "bytes")?;
        let currency = required(text(p, "currency"), "currency")?;
        let prices = match required(p.get("prices"), "prices")? {
            Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
            v => v.clone(),
        };
        let prices = prices
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| bad("prices must be a non-empty array"))?;
        let mut amounts = Vec::new();
        for price in prices {
            let (label, amount) = (price["label"].as_str(), price["amount"].as_i64());
            let (Some(_), Some(amount)) = (label.filter(|l| !l.is_empty()), amount) else {
                return Err(bad("each price must be a LabeledPrice {label, amount}"));
            };
            amounts.push(amount);
        }
        let provider_token = text(p, "provider_token").unwrap_or_default();
        if currency == "XTR" {
            if !provider_token.is_empty() {
                return Err(bad(
                    "provider_token must be empty for payments in Telegram Stars",
                ));
            }
            if amounts.len() != 1 || amounts[0] <= 0 {
                return Err(bad(
                    "payments in Telegram Stars need exactly one price with a positive amount",
                ));
            }
        } else if provider_token.is_empty() {
            return Err(bad("PAYMENT_PROVIDER_INVALID"));
        }
        if p.get("subscription_period").is_some_and(|v| !v.is_null())
            && (currency != "XTR" || int(p, "subscription_period") != Some(SUBSCRIPTION_PERIOD))
        {
            return Err(bad("SUBSCRIPTION_PERIOD_INVALID"));
        }
        let link = format!("https://t.me/${}", uuid::Uuid::new_v4().simple());
        self.invoices.insert(link.clone(), Value::Object(p.clone()));
        Ok(Value::String(link))
    }

    fn answer_pre_checkout_query(&mut self, p: &Map<String, Value>, at: Instant) -> Answer {
        let id = required(text(p, "pre_checkout_query_id"), "pre_checkout_query_id")?;
        let query = self.queries.get_mut(id).filter(|q| q.answer.is_none());
        let query = query.ok_or_else(|| bad("QUERY_ID_INVALID"))?;
        let ok = match required(p.get("ok"), "ok")? {
            Value::String(s) => s.parse().ok(),
            v => v.as_bool(),
        };
        let ok = ok.ok_or_else(|| bad("ok must be a Boolean"))?;
        let error_message = text(p, "error_message")
            .filter(|m| !m.is_empty())
            .map(str::to_owned);
        if !ok && error_message.is_none() {
            return Err(bad("error_message is empty"));
        }
        let elapsed = at.saturating_duration_since(query.sent);
        if elapsed > PRE_CHECKOUT_WINDOW {
            return Err(bad(
                "query is too old and response timeout expired or query ID is invalid",
            ));
        }
        query.answer = Some((ok, error_message, elapsed));
        Ok(Value::Bool(true))
    }

    fn refund_star_payment(&mut self, p: &Map<String, Value>) -> Answer {
        let user_id = required(int(p, "user_id"), "user_id")?;
        let id = required(
            text(p, "telegram_payment_charge_id"),
            "telegram_payment_charge_id",
        )?;
        let charge = self.charges.get_mut(id).filter(|c| c.user_id == user_id);
        let charge = charge.ok_or_else(|| bad("CHARGE_NOT_FOUND"))?;
        if charge.refunded {
            return Err(bad("CHARGE_ALREADY_REFUNDED"));
        }
        charge.refunded = true;
        Ok(Value::Bool(true))
    }
}

fn send_message(p: &Map<String, Value>) -> Answer {
    let chat_id = required(int(p, "chat_id"), "chat_id")?;
    let text = text(p, "text").unwrap_or_default();
    if text.trim().is_empty() {
        return Err(bad("message text is empty"));
    }
    if text.chars().count() > 4096 {
        return Err(bad("message is too long"));
    }
    let message_id = MESSAGE_IDS.fetch_add(1, Ordering::Relaxed);
    Ok(json!({"message_id": message_id, "date": unix_now(),
        "chat": {"id": chat_id, "type": "private"}, "text": text}))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "123456:test-token";

    async fn call(fake: &FakeBotApi, method: &str, body: Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(fake.method_url(method))
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    fn assert_bad(answer: &(u16, Value), reason: &str) {
        assert_eq!(answer.0, 400, "{answer:?}");
        assert_eq!(answer.1["error_code"], 400);
        let description = answer.1["description"].as_str().unwrap();
        assert!(
            description.starts_with("Bad Request: ") && description.contains(reason),
            "{answer:?}"
        );
    }

    fn invoice() -> Value {
        json!({"title": "100 taps", "description": "A pack", "payload": "order-1", "currency": "XTR",
            "prices": [{"label": "Pack", "amount": 50}]})
    }

    #[tokio::test]
    async fn create_invoice_link_keeps_good_params_and_refuses_bad_ones() {
        let fake = FakeBotApi::start(TOKEN).await;
        let (status, body) = call(&fake, "createInvoiceLink", invoice()).await;
        assert_eq!(status, 200, "{body}");
        let link = body["result"].as_str().unwrap();
        assert!(link.starts_with("https://t.me/$"), "{link}");
        assert_eq!(fake.invoice(link), Some(invoice()));
        let mut monthly = invoice();
        monthly["subscription_period"] = json!(SUBSCRIPTION_PERIOD);
        assert_eq!(call(&fake, "createInvoiceLink", monthly).await.0, 200);

        let cases = [
            ("payload", json!("x".repeat(129)), "payload"),
            ("title", json!(""), "title"),
            (
                "prices",
                json!([{"label": "a", "amount": 1}, {"label": "b", "amount": 2}]),
                "exactly one price",
            ),
            (
                "prices",
                json!([{"label": "a", "amount": 0}]),
                "positive amount",
            ),
            (
                "provider_token",
                json!("284685063:TEST:abc"),
                "provider_token",
            ),
            (
                "subscription_period",
                json!(86_400),
                "SUBSCRIPTION_PERIOD_INVALID",
            ),
        ];
        for (field, value, reason) in cases {
            let mut params = invoice();
            params[field] = value;
            assert_bad(&call(&fake, "createInvoiceLink", params).await, reason);
        }
        assert_eq!(fake.calls_to("createinvoicelink").len(), 8);
    }

    #[tokio::test]
    async fn a_charge_is_refunded_once_and_only_for_its_user() {
        let fake = FakeBotApi::start(TOKEN).await;
        let charge = fake.pay(42, 50, "order-1", false);
        let refund = |user_id: i64, charge: &str| json!({"user_id": user_id, "telegram_payment_charge_id": charge});
        assert_bad(
            &call(&fake, "refundStarPayment", refund(43, &charge)).await,
            "CHARGE_NOT_FOUND",
        );
        assert_eq!(
            call(&fake, "refundStarPayment", refund(42, &charge)).await,
            (200, json!({"ok": true, "result": true}))
        );
        assert!(fake.charge(&charge).unwrap().refunded);
        assert_bad(
            &call(&fake, "refundStarPayment", refund(42, &charge)).await,
            "CHARGE_ALREADY_REFUNDED",
        );
        assert_bad(
            &call(&fake, "refundStarPayment", refund(42, "stxunknown")).await,
            "CHARGE_NOT_FOUND",
        );
    }

    #[tokio::test]
    async fn updates_reach_the_webhook_and_a_query_is_answered_once_within_ten_seconds() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let hook = axum::Router::new().route(
            "/hook",
            axum::routing::post(
                move |headers: HeaderMap, axum::Json(update): axum::Json<Value>| async move {
                    let secret = headers
                        .get("x-telegram-bot-api-secret-token")
                        .map(|v| v.to_str().unwrap().to_owned());
                    record.lock().unwrap().push((secret, update));
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, hook).await.unwrap() });
        let fake = FakeBotApi::start(TOKEN).await;
        let webhook = Webhook {
            url,
            secret: Some("s3cret".to_owned()),
        };

        let (response, id) = fake
            .pre_checkout(&webhook, fake.next_update_id(), 42, 50, "order-1")
            .await;
        assert_eq!(response.status(), 200);
        let answer = json!({"pre_checkout_query_id": id, "ok": false});
        assert_bad(
            &call(&fake, "answerPreCheckoutQuery", answer).await,
            "error_message",
        );
        let answer = json!({"pre_checkout_query_id": id, "ok": true});
        assert_eq!(
            call(&fake, "answerPreCheckoutQuery", answer.clone())
                .await
                .0,
            200
        );
        let (ok, message, after) = fake.pre_checkout_answer(&id).unwrap();
        assert!(ok && message.is_none() && after < PRE_CHECKOUT_WINDOW);
        assert_bad(
            &call(&fake, "answerPreCheckoutQuery", answer).await,
            "QUERY_ID_INVALID",
        );
        let unknown = json!({"pre_checkout_query_id": "1", "ok": true});
        assert_bad(
            &call(&fake, "answerPreCheckoutQuery", unknown).await,
            "QUERY_ID_INVALID",
        );
        let (_, late) = fake.pre_checkout_query(fake.next_update_id(), 42, "XTR", 50, "order-2");
        fake.age_pre_checkout(&late, Duration::from_secs(11));
        let answer = json!({"pre_checkout_query_id": late, "ok": true});
        assert_bad(
            &call(&fake, "answerPreCheckoutQuery", answer).await,
            "query is too old",
        );

        let charge = fake.pay(42, 50, "order-1", true);
        let first = Some(Subscription {
            expiration_date: unix_now() + SUBSCRIPTION_PERIOD,
            first: true,
        });
        webhook
            .send(&successful_payment_update(
                7, 42, 50, "order-1", &charge, first,
            ))
            .await;
        Webhook {
            secret: None,
            ..webhook
        }
        .send(&refunded_payment_update(8, 42, 50, "order-1", &charge))
        .await;
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0].0.as_deref(), Some("s3cret"));
        assert_eq!(seen[0].1["pre_checkout_query"]["id"], json!(id));
        assert_eq!(seen[0].1["pre_checkout_query"]["from"]["id"], 42);
        let paid = &seen[1].1["message"]["successful_payment"];
        assert_eq!(
            (
                paid["telegram_payment_charge_id"].as_str(),
                paid["is_first_recurring"].as_bool()
            ),
            (Some(&*charge), Some(true))
        );
        assert_eq!(seen[2].0, None);
        assert_eq!(seen[2].1["message"]["refunded_payment"]["total_amount"], 50);
    }

    #[tokio::test]
    async fn injected_faults_and_delays_apply_to_the_next_call_only() {
        let fake = FakeBotApi::start(TOKEN).await;
        fake.fail_next(
            "sendMessage",
            429,
            "Too Many Requests: retry after 3",
            Some(3),
        );
        let message = json!({"chat_id": 42, "text": "hi"});
        let (status, body) = call(&fake, "sendMessage", message.clone()).await;
        assert_eq!(
            (status, &body["parameters"]["retry_after"]),
            (429, &json!(3)),
            "{body}"
        );
        fake.delay_next("sendMessage", Duration::from_millis(200));
        let started = Instant::now();
        let (status, body) = call(&fake, "sendMessage", message).await;
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(
            (
                status,
                &body["result"]["chat"]["id"],
                &body["result"]["text"]
            ),
            (200, &json!(42), &json!("hi"))
        );
        let form = reqwest::Client::new()
            .post(fake.method_url("sendMessage"))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("chat_id=7&text=")
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), 400);
        assert_eq!(
            fake.wait_for_calls("sendMessage", 3, Duration::from_secs(1))
                .await[2]
                .params["chat_id"],
            "7"
        );
    }

    #[tokio::test]
    async fn a_wrong_token_is_unauthorized_and_an_unknown_method_not_found() {
        let fake = FakeBotApi::start(TOKEN).await;
        let wrong = reqwest::Client::new()
            .post(format!("{}/bot1:wrong/sendMessage", fake.url()))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        let body: Value = wrong.json().await.unwrap();
        assert_eq!(
            body,
            json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
        );
        let (status, body) = call(&fake, "getStarGifts", json!({})).await;
        assert_eq!((status, &body["description"]), (404, &json!("Not Found")));
        assert_eq!(
            fake.wait_for_call("getStarGifts", Duration::from_secs(1))
                .await
                .answered,
            body
        );
    }

    #[tokio::test]
    #[should_panic(expected = "refundStarPayment")]
    async fn waiting_for_a_call_that_never_comes_names_the_method() {
        let fake = FakeBotApi::start(TOKEN).await;
        fake.wait_for_call("refundStarPayment", Duration::from_millis(50))
            .await;
    }
}
