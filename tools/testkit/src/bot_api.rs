//! A fake of Telegram's Bot API for tests, and a driver that sends Telegram-shaped updates to a
//! webhook. No test can reach Telegram; this stands in for it.
//!
//! What it models:
//! - The transport: `<url>/bot<token>/<method>`, any HTTP verb, parameters from the query string
//!   and a JSON or `application/x-www-form-urlencoded` body (form values are strings; numbers,
//!   booleans and JSON-serialized arrays and objects inside them are read as Telegram reads
//!   them). Method names are case-insensitive. Answers are `{"ok":true,"result":…}` or
//!   `{"ok":false,"error_code":N,"description":…[,"parameters":{"retry_after":S}]}` with HTTP
//!   status N. A wrong token is 401 `Unauthorized`, an unknown method 404 `Not Found`.
//! - `createInvoiceLink`: title 1–32 characters, description 1–255 characters, payload 1–128
//!   bytes; for `XTR` no provider token and exactly one price with a positive amount;
//!   `subscription_period` only with `XTR` and only 2592000. Other currencies need a provider
//!   token. The link is `https://t.me/$<random slug>`; its parameters are kept per link.
//! - `answerPreCheckoutQuery`: only for queries this fake issued, once each, `error_message`
//!   required when `ok` is false, and at most 10 s after the query was sent.
//! - `refundStarPayment`: only charges made with [`FakeBotApi::pay`], by the same user, once.
//! - `sendMessage`: `chat_id` and 1–4096 characters of `text`, optional `reply_markup` and
//!   `allow_paid_broadcast`. Every integer `chat_id` is a chat that exists: zero or positive a
//!   private chat, negative a group; any other `chat_id` is `chat not found`. `reply_markup` is
//!   an inline keyboard (`{"inline_keyboard":[[button,…],…]}`) whose buttons have a 1–64
//!   character `text` and exactly one of `url` or `web_app` (`{"url":"https://…"}`). A chat
//!   [`FakeBotApi::block`]ed answers 403. Then Telegram's flood limits ([`Limits`], its real
//!   values unless [`FakeBotApi::set_limits`] changes them): at most `global_per_sec` messages
//!   in any sliding second (paid broadcasts count against `paid_per_sec` instead, in the same
//!   window), one per `per_chat` to a private chat and `group_per_minute` in any sliding minute
//!   to a group. Past one, the call is answered 429 with `retry_after` the whole seconds,
//!   rounded up, until it would have been accepted. Checks run in that order (bad request,
//!   blocked, flood); only accepted messages ([`FakeBotApi::messages`]) count against a limit.
//! - Updates: `pre_checkout_query`, and `message` with `successful_payment` or
//!   `refunded_payment`, posted with the `X-Telegram-Bot-Api-Secret-Token` header.
//!
//! What it does not model: any other method or field (photos, tips, shipping, entities,
//! `parse_mode`, reply keyboards, inline buttons other than `url` and `web_app`, business
//! connections), Telegram's real limits on Star amounts, flood control on methods other than
//! `sendMessage` unless injected with [`FakeBotApi::fail_next`], that Telegram's limits are soft
//! (it may allow a burst, or answer a longer `retry_after`; this fake's windows are exact),
//! supergroups and channels (every negative id is a plain group), chats that do not exist,
//! per-chat message ids, webhook redelivery or ordering, and the buyer's side (nothing pays
//! unless a test calls [`FakeBotApi::pay`]). The texts of `QUERY_ID_INVALID`,
//! `CHARGE_NOT_FOUND`, `CHARGE_ALREADY_REFUNDED`, the too-old query, `message text is empty`,
//! `message is too long`, `chat not found`, `can't parse reply keyboard markup JSON object`,
//! `Too Many Requests: retry after N`, `Forbidden: bot was blocked by the user` and `Forbidden:
//! bot was kicked from the group chat` are Telegram's; the other `Bad Request:` reasons are this
//! fake's own wording. A call is processed when it arrives; [`FakeBotApi::delay_next`] and
//! [`FakeBotApi::delay_all`] only hold back its answer, as when Telegram did the work but the
//! reply was slow.

use std::collections::{HashMap, HashSet, VecDeque};
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

/// The flood limits `sendMessage` enforces. [`Limits::default`] is Telegram's; a test scales
/// them with struct update syntax, e.g.
/// `Limits { global_per_sec: 200, per_chat: Duration::from_millis(100), ..Limits::default() }`.
/// A count of `u32::MAX` or a `per_chat` of zero lifts that limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Messages accepted in any sliding second, over all chats (without `allow_paid_broadcast`).
    pub global_per_sec: u32,
    /// The least time between two messages accepted for one private chat (positive `chat_id`).
    pub per_chat: Duration,
    /// Messages accepted in any sliding minute for one group (negative `chat_id`).
    pub group_per_minute: u32,
    /// Messages with `allow_paid_broadcast: true` accepted in any sliding second; they do not
    /// count against `global_per_sec`, nor the others against this.
    pub paid_per_sec: u32,
}

impl Default for Limits {
    /// 30 messages a second, one a second to a chat, 20 a minute to a group, and 1000 a second
    /// as paid broadcasts.
    fn default() -> Self {
        Self {
            global_per_sec: 30,
            per_chat: Duration::from_secs(1),
            group_per_minute: 20,
            paid_per_sec: 1000,
        }
    }
}

/// One message `sendMessage` accepted.
#[derive(Clone, Debug)]
pub struct Message {
    pub chat_id: i64,
    pub text: String,
    /// The inline keyboard, as an object even when it was sent as a JSON string.
    pub reply_markup: Option<Value>,
    /// Sent with `allow_paid_broadcast: true`.
    pub paid: bool,
    /// When the fake accepted it.
    pub at: Instant,
}

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

type Answer = Result<Value, Fault>;
type PreCheckoutAnswer = (bool, Option<String>, Duration);

struct Query {
    sent: Instant,
    answer: Option<PreCheckoutAnswer>,
}

/// A refusal: an injected one or a method's own.
struct Fault {
    code: u16,
    description: String,
    retry_after: Option<u64>,
}

impl Fault {
    fn new(code: u16, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            retry_after: None,
        }
    }

    /// `{"ok":false,"error_code":…,"description":…[,"parameters":{"retry_after":…}]}`.
    fn body(&self) -> Value {
        let mut body =
            json!({"ok": false, "error_code": self.code, "description": self.description});
        if let Some(seconds) = self.retry_after {
            body["parameters"] = json!({"retry_after": seconds});
        }
        body
    }
}

/// The accepted messages' times the flood limits look back on, oldest first.
#[derive(Default)]
struct Flood {
    limits: Limits,
    free: VecDeque<Instant>,
    paid: VecDeque<Instant>,
    /// The last message to each private chat.
    private: HashMap<i64, Instant>,
    groups: HashMap<i64, VecDeque<Instant>>,
}

impl Flood {
    /// How long until a message to `chat_id` fits every limit: zero when it fits now.
    fn wait(&mut self, chat_id: i64, paid: bool, now: Instant) -> Duration {
        let limits = self.limits;
        let overall = if paid {
            window_wait(&mut self.paid, limits.paid_per_sec, SECOND, now)
        } else {
            window_wait(&mut self.free, limits.global_per_sec, SECOND, now)
        };
        let chat = if chat_id < 0 {
            let group = self.groups.entry(chat_id).or_default();
            window_wait(group, limits.group_per_minute, MINUTE, now)
        } else {
            self.private.get(&chat_id).map_or(Duration::ZERO, |&last| {
                (last + limits.per_chat).saturating_duration_since(now)
            })
        };
        overall.max(chat)
    }

    /// Counts a message accepted `now` against the limits.
    fn record(&mut self, chat_id: i64, paid: bool, now: Instant) {
        let overall = if paid { &mut self.paid } else { &mut self.free };
        overall.push_back(now);
        if chat_id < 0 {
            self.groups.entry(chat_id).or_default().push_back(now);
        } else {
            self.private.insert(chat_id, now);
        }
    }
}

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

/// How long until `times` (oldest first) holds fewer than `limit` instants younger than
/// `window`; the older ones are dropped.
fn window_wait(
    times: &mut VecDeque<Instant>,
    limit: u32,
    window: Duration,
    now: Instant,
) -> Duration {
    while times
        .front()
        .is_some_and(|&t| now.saturating_duration_since(t) >= window)
    {
        times.pop_front();
    }
    match (times.len() + 1).saturating_sub(limit as usize) {
        0 => Duration::ZERO,
        leaving => (times[leaving - 1] + window).saturating_duration_since(now),
    }
}

/// Telegram's 429 for a call that would be accepted after `wait`.
fn too_many_requests(wait: Duration) -> Fault {
    let seconds = wait.as_nanos().div_ceil(1_000_000_000).max(1) as u64;
    Fault {
        retry_after: Some(seconds),
        ..Fault::new(429, format!("Too Many Requests: retry after {seconds}"))
    }
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    invoices: HashMap<String, Value>,
    queries: HashMap<String, Query>,
    charges: HashMap<String, Charge>,
    faults: HashMap<String, VecDeque<Fault>>,
    delays: HashMap<String, VecDeque<Duration>>,
    /// Added to every `sendMessage` answer's delay.
    send_delay: Duration,
    messages: Vec<Message>,
    blocked: HashSet<i64>,
    flood: Flood,
    /// Calls answered 429.
    throttled: usize,
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

    /// Every later `sendMessage` answer is held back `delay` (on top of any
    /// [`delay_next`](Self::delay_next)), as Telegram's round trip; zero unless set. The message
    /// is accepted or refused, and counted, when the call arrives.
    pub fn delay_all(&self, delay: Duration) {
        self.state().send_delay = delay;
    }

    /// The flood limits `sendMessage` enforces from now on; messages already accepted still
    /// count against them.
    ///
    /// # Panics
    /// When a count is zero (no message could ever be accepted).
    pub fn set_limits(&self, limits: Limits) {
        assert!(
            limits.global_per_sec > 0 && limits.group_per_minute > 0 && limits.paid_per_sec > 0,
            "fake Bot API: every count in {limits:?} must be at least 1"
        );
        self.state().flood.limits = limits;
    }

    /// `sendMessage` to `chat_id` answers 403 until [`unblock`](Self::unblock): for a user,
    /// `Forbidden: bot was blocked by the user`; for a group, `… kicked from the group chat`.
    pub fn block(&self, chat_id: i64) {
        self.state().blocked.insert(chat_id);
    }

    /// Undoes [`block`](Self::block).
    pub fn unblock(&self, chat_id: i64) {
        self.state().blocked.remove(&chat_id);
    }

    /// How many calls were answered 429 `Too Many Requests`, by the flood limits or by
    /// [`fail_next`](Self::fail_next).
    pub fn throttled(&self) -> usize {
        self.state().throttled
    }

    /// Every message `sendMessage` accepted, in order of acceptance.
    pub fn messages(&self) -> Vec<Message> {
        self.state().messages.clone()
    }

    /// The messages accepted for `chat_id`.
    pub fn messages_to(&self, chat_id: i64) -> Vec<Message> {
        let state = self.state();
        let to_chat = state.messages.iter().filter(|m| m.chat_id == chat_id);
        to_chat.cloned().collect()
    }

    /// The accepted messages once there are at least `n`; panics after `timeout`.
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<Message> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let state = self.state();
                if state.messages.len() >= n {
                    return state.messages.clone();
                }
                assert!(
                    Instant::now() < deadline,
                    "fake Bot API: {n} accepted message(s) expected within {timeout:?}, got {} \
                     ({} call(s) answered 429)",
                    state.messages.len(),
                    state.throttled
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
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
    let path = uri.path();
    let (token, method) = path
        .strip_prefix("/bot")
        .and_then(|p| p.split_once('/'))
        .unwrap_or(("", path));
    let params = parse_params(&uri, &headers, &body);
    let key = method.to_ascii_lowercase();
    let (answered, delay) = {
        let mut state = shared.state.lock().expect("fake Bot API state");
        // Taken under the lock, so that the calls' (and messages') instants never go back.
        let at = Instant::now();
        let authorized = token == shared.token;
        let fault = authorized
            .then(|| state.faults.get_mut(&key)?.pop_front())
            .flatten();
        let mut delay = authorized
            .then(|| state.delays.get_mut(&key)?.pop_front())
            .flatten()
            .unwrap_or_default();
        if key == "sendmessage" {
            delay += state.send_delay;
        }
        let answered = match (authorized, fault, &params) {
            (false, ..) => Fault::new(401, "Unauthorized").body(),
            (true, Some(f), _) => f.body(),
            (true, None, Err(e)) => bad(e).body(),
            (true, None, Ok(p)) => match state.dispatch(&key, p, at) {
                Ok(result) => json!({"ok": true, "result": result}),
                Err(f) => f.body(),
            },
        };
        if answered["error_code"] == 429 {
            state.throttled += 1;
        }
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
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let status = answered["error_code"].as_u64().unwrap_or(200) as u16;
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        axum::Json(answered),
    )
        .into_response()
}

fn bad(reason: impl std::fmt::Display) -> Fault {
    Fault::new(400, format!("Bad Request: {reason}"))
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

fn boolean(p: &Map<String, Value>, name: &str) -> Option<bool> {
    match p.get(name)? {
        Value::String(s) => s.parse().ok(),
        v => v.as_bool(),
    }
}

fn required<T>(value: Option<T>, name: &str) -> Result<T, Fault> {
    value.ok_or_else(|| bad(format_args!("{name} is empty")))
}

fn length(count: usize, max: usize, name: &str, unit: &str) -> Result<(), Fault> {
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
            "sendmessage" => self.send_message(p, at),
            _ => Err(Fault::new(404, "Not Found")),
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
        required(p.get("ok"), "ok")?;
        let ok = boolean(p, "ok").ok_or_else(|| bad("ok must be a Boolean"))?;
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

    fn send_message(&mut self, p: &Map<String, Value>, at: Instant) -> Answer {
        let chat_id = chat_id(p)?;
        let text = text(p, "text").unwrap_or_default();
        if text.trim().is_empty() {
            return Err(bad("message text is empty"));
        }
        if text.chars().count() > 4096 {
            return Err(bad("message is too long"));
        }
        let reply_markup = reply_markup(p)?;
        let paid = match p.get("allow_paid_broadcast") {
            None | Some(Value::Null) => false,
            Some(_) => boolean(p, "allow_paid_broadcast")
                .ok_or_else(|| bad("allow_paid_broadcast must be a Boolean"))?,
        };
        if self.blocked.contains(&chat_id) {
            return Err(Fault::new(403, blocked(chat_id)));
        }
        let wait = self.flood.wait(chat_id, paid, at);
        if !wait.is_zero() {
            return Err(too_many_requests(wait));
        }
        self.flood.record(chat_id, paid, at);
        let message_id = MESSAGE_IDS.fetch_add(1, Ordering::Relaxed);
        let kind = if chat_id < 0 { "group" } else { "private" };
        let mut result = json!({"message_id": message_id, "date": unix_now(),
            "chat": {"id": chat_id, "type": kind}, "text": text});
        if let Some(markup) = &reply_markup {
            result["reply_markup"] = markup.clone();
        }
        self.messages.push(Message {
            chat_id,
            text: text.to_owned(),
            reply_markup,
            paid,
            at,
        });
        Ok(result)
    }
}

/// `chat_id`: any integer is a chat (negative a group), anything else a chat that is not found.
fn chat_id(p: &Map<String, Value>) -> Result<i64, Fault> {
    match p.get("chat_id") {
        None | Some(Value::Null) => Err(bad("chat_id is empty")),
        Some(Value::String(s)) if s.is_empty() => Err(bad("chat_id is empty")),
        Some(_) => int(p, "chat_id").ok_or_else(|| bad("chat not found")),
    }
}

/// Telegram's 403 description for a chat that blocked (or kicked) the bot.
fn blocked(chat_id: i64) -> &'static str {
    if chat_id < 0 {
        "Forbidden: bot was kicked from the group chat"
    } else {
        "Forbidden: bot was blocked by the user"
    }
}

/// `reply_markup` when present, read from JSON inside a form value as `prices` is: an inline
/// keyboard, an array of rows of buttons.
fn reply_markup(p: &Map<String, Value>) -> Result<Option<Value>, Fault> {
    let markup = match p.get("reply_markup") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
        Some(v) => v.clone(),
    };
    if !markup.is_object() {
        return Err(bad("can't parse reply keyboard markup JSON object"));
    }
    let rows = markup["inline_keyboard"].as_array().ok_or_else(|| {
        bad("reply_markup must be an inline keyboard: {\"inline_keyboard\": [[button, …], …]}")
    })?;
    for row in rows {
        let row = row
            .as_array()
            .ok_or_else(|| bad("each row of inline_keyboard must be an array of buttons"))?;
        row.iter().try_for_each(inline_button)?;
    }
    Ok(Some(markup))
}

/// A button with a 1–64 character `text` and exactly one of `url` or `web_app` (`https://`).
fn inline_button(button: &Value) -> Result<(), Fault> {
    let text = button["text"].as_str().unwrap_or_default();
    length(text.chars().count(), 64, "button text", "characters")?;
    let field = |name| button.get(name).filter(|v| !v.is_null());
    match (field("url"), field("web_app")) {
        (Some(url), None) => {
            let url = url.as_str().filter(|u| !u.is_empty());
            url.ok_or_else(|| bad("a button's url must be a non-empty string"))?;
        }
        (None, Some(web_app)) => {
            let url = web_app["url"].as_str().unwrap_or_default();
            if !url.starts_with("https://") {
                return Err(bad(format_args!(
                    "a button's web_app url must start with https://, not {url:?}"
                )));
            }
        }
        _ => return Err(bad("a button needs exactly one of url or web_app")),
    }
    Ok(())
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

    fn message(chat_id: i64) -> Value {
        json!({"chat_id": chat_id, "text": "hi"})
    }

    fn paid(chat_id: i64) -> Value {
        json!({"chat_id": chat_id, "text": "hi", "allow_paid_broadcast": true})
    }

    async fn send(fake: &FakeBotApi, chat_id: i64) -> (u16, Value) {
        call(fake, "sendMessage", message(chat_id)).await
    }

    fn assert_too_many(answer: &(u16, Value), retry_after: u64) {
        let description = format!("Too Many Requests: retry after {retry_after}");
        let expected = json!({"ok": false, "error_code": 429, "description": description,
            "parameters": {"retry_after": retry_after}});
        assert_eq!(answer, &(429, expected));
    }

    async fn sleep_until(at: Instant) {
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
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
        assert_eq!((fake.throttled(), fake.messages().len()), (1, 0));
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

    #[tokio::test]
    async fn the_31st_message_in_a_second_waits_until_the_window_slides() {
        let fake = FakeBotApi::start(TOKEN).await;
        for chat_id in 1..=30 {
            assert_eq!(send(&fake, chat_id).await.0, 200);
        }
        let refused = send(&fake, 31).await;
        let first = fake.messages()[0].at;
        assert!(first.elapsed() < SECOND, "31 calls took over a second");
        assert_too_many(&refused, 1);
        assert_eq!((fake.messages().len(), fake.throttled()), (30, 1));
        sleep_until(first + SECOND).await;
        assert_eq!(send(&fake, 31).await.0, 200);
        assert_eq!(fake.messages_to(31).len(), 1);
    }

    #[tokio::test]
    async fn a_private_chat_gets_one_message_per_per_chat() {
        let fake = FakeBotApi::start(TOKEN).await;
        assert_eq!(send(&fake, 7).await.0, 200);
        assert_too_many(&send(&fake, 7).await, 1);

        let per_chat = Duration::from_millis(2500);
        fake.set_limits(Limits {
            per_chat,
            ..Limits::default()
        });
        assert_eq!(send(&fake, 8).await.0, 200);
        assert_too_many(&send(&fake, 8).await, 3);

        let per_chat = Duration::from_millis(300);
        fake.set_limits(Limits {
            global_per_sec: 200,
            per_chat,
            ..Limits::default()
        });
        assert_eq!(send(&fake, 42).await.0, 200);
        assert_too_many(&send(&fake, 42).await, 1);
        assert_eq!(send(&fake, 43).await.0, 200);
        sleep_until(fake.messages_to(42)[0].at + per_chat).await;
        assert_eq!(send(&fake, 42).await.0, 200);
        let chats: Vec<i64> = fake.messages().iter().map(|m| m.chat_id).collect();
        assert_eq!(chats, [7, 8, 42, 43, 42]);
        assert_eq!(fake.throttled(), 3);
    }

    #[tokio::test]
    async fn a_group_gets_twenty_messages_a_minute() {
        let fake = FakeBotApi::start(TOKEN).await;
        for _ in 0..20 {
            let (status, body) = send(&fake, -100).await;
            assert_eq!(
                (status, &body["result"]["chat"]["type"]),
                (200, &json!("group"))
            );
        }
        assert_too_many(&send(&fake, -100).await, 60);
        assert_eq!(send(&fake, -101).await.0, 200);
        assert_eq!(send(&fake, 100).await.0, 200);
        assert_eq!(fake.messages_to(-100).len(), 20);
        assert_eq!(fake.messages().len(), 22);
    }

    #[tokio::test]
    async fn paid_broadcasts_count_against_the_paid_limit_only() {
        let fake = FakeBotApi::start(TOKEN).await;
        fake.set_limits(Limits {
            global_per_sec: 2,
            per_chat: Duration::ZERO,
            group_per_minute: 20,
            paid_per_sec: 3,
        });
        assert_eq!(send(&fake, 1).await.0, 200);
        assert_eq!(send(&fake, 2).await.0, 200);
        assert_too_many(&send(&fake, 3).await, 1);
        for chat_id in 3..=5 {
            assert_eq!(call(&fake, "sendMessage", paid(chat_id)).await.0, 200);
        }
        assert_too_many(&call(&fake, "sendMessage", paid(6)).await, 1);
        let first = fake.messages()[0].at;
        assert!(first.elapsed() < SECOND, "7 calls took over a second");
        let paid: Vec<bool> = fake.messages().iter().map(|m| m.paid).collect();
        assert_eq!(paid, [false, false, true, true, true]);
        assert_eq!(fake.throttled(), 2);
    }

    #[tokio::test]
    async fn a_blocked_chat_is_forbidden_and_gets_no_message() {
        let fake = FakeBotApi::start(TOKEN).await;
        fake.block(42);
        fake.block(-5);
        let forbidden = |description: &str| {
            let body = json!({"ok": false, "error_code": 403, "description": description});
            (403, body)
        };
        assert_eq!(
            send(&fake, 42).await,
            forbidden("Forbidden: bot was blocked by the user")
        );
        assert_eq!(
            send(&fake, -5).await,
            forbidden("Forbidden: bot was kicked from the group chat")
        );
        assert!(fake.messages().is_empty());
        fake.unblock(42);
        assert_eq!(send(&fake, 42).await.0, 200);
        assert_eq!(fake.messages_to(42).len(), 1);
    }

    #[tokio::test]
    async fn chat_ids_and_inline_keyboards_are_read_as_telegram_reads_them() {
        let fake = FakeBotApi::start(TOKEN).await;
        let keyboard = json!({"inline_keyboard": [
            [{"text": "Play", "web_app": {"url": "https://app.example/"}}],
            [{"text": "News", "url": "https://t.me/surge"},
                {"text": "x".repeat(64), "url": "tg://resolve?domain=surge"}],
        ]});
        let mut with_keyboard = message(1);
        with_keyboard["reply_markup"] = keyboard.clone();
        let (status, body) = call(&fake, "sendMessage", with_keyboard).await;
        assert_eq!((status, &body["result"]["reply_markup"]), (200, &keyboard));
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("chat_id", "2")
            .append_pair("text", "hi")
            .append_pair("reply_markup", &keyboard.to_string())
            .append_pair("allow_paid_broadcast", "true")
            .finish();
        let form = reqwest::Client::new()
            .post(fake.method_url("sendMessage"))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), 200);
        let sent = json!({"chat_id": "3", "text": "hi", "reply_markup": keyboard.to_string()});
        assert_eq!(call(&fake, "sendMessage", sent).await.0, 200);
        assert_eq!(send(&fake, 0).await.0, 200);
        let messages = fake.messages();
        let read: Vec<_> = messages
            .iter()
            .map(|m| (m.chat_id, m.reply_markup.as_ref(), m.paid))
            .collect();
        assert_eq!(
            read,
            [
                (1, Some(&keyboard), false),
                (2, Some(&keyboard), true),
                (3, Some(&keyboard), false),
                (0, None, false)
            ]
        );

        let mut maybe = paid(10);
        maybe["allow_paid_broadcast"] = json!("maybe");
        let cases = [
            (json!({"chat_id": "@surge", "text": "hi"}), "chat not found"),
            (json!({"chat_id": 1.5, "text": "hi"}), "chat not found"),
            (json!({"text": "hi"}), "chat_id is empty"),
            (maybe, "allow_paid_broadcast must be a Boolean"),
        ];
        for (params, reason) in cases {
            assert_bad(&call(&fake, "sendMessage", params).await, reason);
        }
        let unparsed = "can't parse reply keyboard markup JSON object";
        let one_of = "exactly one of url or web_app";
        let tme = "https://t.me/surge";
        let markups = [
            (json!("{not json"), unparsed),
            (json!([[]]), unparsed),
            (json!({"keyboard": [["a"]]}), "must be an inline keyboard"),
            (
                json!({"inline_keyboard": [{"text": "a", "url": tme}]}),
                "row",
            ),
        ];
        let buttons = [
            (json!({"text": "", "url": tme}), "button text must be 1-64"),
            (
                json!({"text": "x".repeat(65), "url": tme}),
                "button text must be 1-64",
            ),
            (json!({"text": "a", "callback_data": "1"}), one_of),
            (
                json!({"text": "a", "url": tme, "web_app": {"url": tme}}),
                one_of,
            ),
            (
                json!({"text": "a", "url": ""}),
                "url must be a non-empty string",
            ),
            (
                json!({"text": "a", "web_app": {"url": "http://app.example"}}),
                "https://",
            ),
            (json!({"text": "a", "web_app": {}}), "https://"),
        ];
        let buttons = buttons.map(|(b, reason)| (json!({"inline_keyboard": [[b]]}), reason));
        for (markup, reason) in markups.into_iter().chain(buttons) {
            let mut params = message(10);
            params["reply_markup"] = markup.clone();
            assert_bad(&call(&fake, "sendMessage", params).await, reason);
            let form = json!({"chat_id": "10", "text": "hi", "reply_markup": markup.to_string()});
            assert_bad(&call(&fake, "sendMessage", form).await, reason);
        }
        assert_eq!((fake.messages().len(), fake.throttled()), (4, 0));
    }

    #[tokio::test]
    async fn delay_all_holds_back_answers_of_messages_already_accepted() {
        let fake = FakeBotApi::start(TOKEN).await;
        // Long enough that an undelayed call (below) answers within it on a loaded machine.
        let delay = Duration::from_secs(1);
        fake.delay_all(delay);
        let url = fake.method_url("sendMessage");
        let sent = tokio::spawn(async move {
            let response = reqwest::Client::new().post(url).json(&message(42)).send();
            response.await.unwrap().status()
        });
        let accepted = fake.wait_for_messages(1, Duration::from_secs(5)).await[0].at;
        assert_eq!(sent.await.unwrap(), 200);
        assert!(accepted.elapsed() >= delay);
        fake.delay_all(Duration::ZERO);
        let started = Instant::now();
        assert_eq!(send(&fake, 43).await.0, 200);
        assert!(started.elapsed() < delay);
    }

    #[tokio::test]
    #[should_panic(expected = "3 accepted message(s) expected")]
    async fn waiting_for_messages_that_never_come_says_how_many() {
        let fake = FakeBotApi::start(TOKEN).await;
        assert_eq!(send(&fake, 42).await.0, 200);
        fake.wait_for_messages(3, Duration::from_millis(50)).await;
    }
}
