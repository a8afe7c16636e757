//! Telegram Stars payments through the real binary, against the fake Bot API: an invoice link
//! made to Telegram's rules, pre-checkout verdicts answered within Telegram's 10 s, a payment
//! credited exactly once (duplicate updates, SIGKILLs of the write side and of the processors),
//! refunds taken back exactly once whichever reports them, the webhook's secret token, and the
//! Bot API failing a purchase.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::message::OwnedMessage;
use serde_json::{Value, json};
use sqlx::Row;
use surge_projections::naming;
use surge_testkit::bot_api::{
    FakeBotApi, PRE_CHECKOUT_WINDOW, SUBSCRIPTION_PERIOD, Subscription, Webhook,
    refunded_payment_update, successful_payment_update,
};

use crate::fold::fold_topic;
use crate::helpers::{
    BOT_TOKEN, Options, TestApp, header, init_data, json as body, pg_pool, spawn_app_with, start,
};
use crate::projected::{active_version, assert_projections_equal_fold, wait_caught_up};

const SECRET: &str = "test_secret-1";
const OPERATOR: &str = "op-token";
/// How long a test waits for something the system does on its own (a busy 2-core machine).
const DEADLINE: Duration = Duration::from_secs(60);

/// The write API's options for a Bot API at `api_url`, with `secret` for its webhook.
fn writer_options(api_url: &str, secret: Option<&str>) -> Options {
    let mut env = vec![
        ("SURGE_TELEGRAM_API_URL", api_url.to_owned()),
        ("SURGE_OPERATOR_TOKEN", OPERATOR.to_owned()),
        ("SURGE_USER_RATE_PER_SEC", "1000".to_owned()),
        ("SURGE_USER_BURST", "1000".to_owned()),
    ];
    if let Some(secret) = secret {
        env.push(("SURGE_TELEGRAM_WEBHOOK_SECRET", secret.to_owned()));
    }
    Options {
        env,
        ..Options::default()
    }
}

/// `role` (`process` or `query-api`) of test `id`, tuned for a busy machine and for restarts.
fn started(id: &str, role: &'static str) -> TestApp {
    let env = match role {
        "process" => vec![
            ("SURGE_PROCESS_BATCH_WAIT_MS", "5".to_owned()),
            ("SURGE_PROCESS_FETCH_WAIT_MS", "20".to_owned()),
            ("SURGE_PROCESS_SESSION_TIMEOUT_MS", "6000".to_owned()),
            ("SURGE_PROCESS_MAX_POLL_INTERVAL_MS", "10000".to_owned()),
        ],
        _ => vec![("SURGE_CONSISTENCY_WAIT_MS", "20000".to_owned())],
    };
    crate::helpers::started(
        id,
        Options {
            role: Some(role),
            env,
            ..Options::default()
        },
    )
}

fn webhook_of(app: &TestApp, secret: Option<&str>) -> Webhook {
    Webhook {
        url: format!(
            "{}/telegram/webhook",
            app.webhook_url
                .as_ref()
                .expect("the write API serves a webhook")
        ),
        secret: secret.map(str::to_owned),
    }
}

/// A write API on the fake Bot API, with processors and a query API when asked.
struct Shop {
    fake: FakeBotApi,
    writer: TestApp,
    hook: Webhook,
    processor: Option<TestApp>,
    query: Option<TestApp>,
}

/// A purchase's invoice, as `POST /v1/purchases` made it.
struct Invoice {
    response: Value,
    link: String,
    payload: String,
}

async fn shop(pipeline: bool) -> Shop {
    shop_with(pipeline, Vec::new()).await
}

/// [`shop`] with these variables added to the write API's.
async fn shop_with(pipeline: bool, env: Vec<(&'static str, String)>) -> Shop {
    let fake = FakeBotApi::start(BOT_TOKEN).await;
    let mut options = writer_options(fake.url(), Some(SECRET));
    options.env.extend(env);
    let writer = spawn_app_with(options).await;
    let hook = webhook_of(&writer, Some(SECRET));
    let (processor, query) = if pipeline {
        (
            Some(started(&writer.id, "process")),
            Some(started(&writer.id, "query-api")),
        )
    } else {
        (None, None)
    };
    Shop {
        fake,
        writer,
        hook,
        processor,
        query,
    }
}

impl Shop {
    async fn purchase(&self, user: i64, item: &str) -> reqwest::Response {
        self.writer
            .write("POST", "/v1/purchases", user, json!({ "item_id": item }))
            .await
    }

    /// `POST /v1/purchases` of `item` by `user`, accepted, and the payload the invoice carries.
    async fn buy(&self, user: i64, item: &str) -> Invoice {
        let response = self.purchase(user, item).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 202, "purchase of {item} by {user}: {text}");
        let response: Value = serde_json::from_str(&text).unwrap();
        let link = response["invoice_link"].as_str().unwrap().to_owned();
        let params = self
            .fake
            .invoice(&link)
            .unwrap_or_else(|| panic!("the fake made no invoice link {link}"));
        let payload = params["payload"].as_str().unwrap().to_owned();
        Invoice {
            response,
            link,
            payload,
        }
    }

    /// Sends a pre-checkout query; the webhook answers 200 only after the query was answered.
    async fn pre_checkout(&self, user: i64, stars: i64, payload: &str) -> (bool, Option<String>) {
        let update_id = self.fake.next_update_id();
        let (response, query_id) = self
            .fake
            .pre_checkout(&self.hook, update_id, user, stars, payload)
            .await;
        assert_eq!(response.status(), 200, "pre-checkout update {update_id}");
        let (ok, message, elapsed) = self
            .fake
            .pre_checkout_answer(&query_id)
            .expect("the query was answered before the webhook returned");
        assert!(
            elapsed < PRE_CHECKOUT_WINDOW,
            "answered after {elapsed:?}, beyond Telegram's {PRE_CHECKOUT_WINDOW:?}"
        );
        if !ok {
            assert!(
                message.as_deref().is_some_and(|m| !m.trim().is_empty()),
                "a refusal says why"
            );
        }
        (ok, message)
    }

    /// The buyer pays `invoice` (`stars`): the charge id and the update Telegram sends.
    fn pay(&self, user: i64, stars: i64, invoice: &Invoice) -> (String, Value) {
        let charge = self.fake.pay(user, stars, &invoice.payload, false);
        let update = successful_payment_update(
            self.fake.next_update_id(),
            user,
            stars,
            &invoice.payload,
            &charge,
            None,
        );
        (charge, update)
    }

    /// Sends `update` to the webhook, expecting 200 `{"ok":true}`.
    async fn deliver(&self, update: &Value) {
        deliver_to(&self.hook, update).await;
    }

    /// The whole purchase of `item` by `user`: invoice, approved pre-checkout, payment update.
    async fn buy_and_pay(&self, user: i64, item: &str, stars: i64) -> (Invoice, String) {
        let invoice = self.buy(user, item).await;
        let (ok, message) = self.pre_checkout(user, stars, &invoice.payload).await;
        assert!(ok, "pre-checkout of {item} by {user} refused: {message:?}");
        let (charge, update) = self.pay(user, stars, &invoice);
        self.deliver(&update).await;
        (invoice, charge)
    }

    async fn refund(&self, charge: &str) -> reqwest::Response {
        self.writer
            .request("POST", "/v1/admin/refunds")
            .header("authorization", format!("Bearer {OPERATOR}"))
            .json(&json!({ "telegram_payment_charge_id": charge }))
            .send()
            .await
            .expect("the write API answers")
    }

    async fn caught_up(&self) {
        let processor = self.processor.as_ref().expect("a processor");
        wait_caught_up(&self.writer, &[processor]).await;
    }

    /// `GET /v1/me` of `user` (after [`Shop::caught_up`]).
    async fn me(&self, user: i64) -> Value {
        let query = self.query.as_ref().expect("a query API");
        let response = query
            .request("GET", "/v1/me")
            .header("authorization", format!("tma {}", init_data(user)))
            .send()
            .await
            .expect("the query API answers");
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    /// `user`'s all-time leaderboard score, as the query API serves it.
    async fn score(&self, user: i64) -> Value {
        let query = self.query.as_ref().expect("a query API");
        let response = query
            .request("GET", "/v1/leaderboard/all")
            .header("authorization", format!("tma {}", init_data(user)))
            .send()
            .await
            .expect("the query API answers");
        assert_eq!(response.status(), 200);
        body(response).await["me"]["score"].clone()
    }
}

async fn deliver_to(hook: &Webhook, update: &Value) {
    let response = hook.send(update).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "update {}: {text}", update["update_id"]);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"ok": true})
    );
}

/// Every `(kind, amount)` of `user`'s ledger in the active wallets version, oldest first.
async fn ledger(app: &TestApp, user: i64) -> Vec<(String, i64)> {
    let pool = pg_pool(&app.id).await;
    let wallets = naming::table_prefix("wallets", active_version(app, "wallets").await);
    sqlx::query(&format!(
        "SELECT kind, amount FROM {wallets}_ledger WHERE user_id = $1 ORDER BY seq"
    ))
    .bind(user)
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("kind"), r.get("amount")))
    .collect()
}

/// The topic's records of `event_type` (e.g. `StarsPaymentReceived`).
fn of_type(records: &[OwnedMessage], event_type: &str) -> usize {
    records
        .iter()
        .filter(|r| header(r, "surge-event-type").is_some_and(|t| t.ends_with(event_type)))
        .count()
}

/// `payload` with one character changed to another of the same alphabet.
fn tampered(payload: &str, at: usize) -> String {
    let mut chars: Vec<char> = payload.chars().collect();
    chars[at] = match chars[at] {
        'A' => 'B',
        '0' => '1',
        c if c.is_ascii_digit() => '0',
        _ => 'A',
    };
    chars.into_iter().collect()
}

/// `payload` whose last base64url character has its lowest bit flipped: 16 MAC bytes end in a
/// character of which only the top 2 bits count, so a lenient decoder reads the same MAC.
fn non_canonical_end(payload: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = *payload.as_bytes().last().unwrap();
    let index = ALPHABET.iter().position(|&c| c == last).unwrap();
    let mut changed = payload[..payload.len() - 1].to_owned();
    changed.push(char::from(ALPHABET[index ^ 1]));
    changed
}

#[tokio::test]
async fn a_purchase_makes_a_stars_invoice_is_approved_in_time_and_credits_the_coins() {
    let shop = shop(true).await;
    let user = 101;

    let catalog = shop
        .writer
        .request("GET", "/v1/catalog")
        .send()
        .await
        .unwrap();
    assert_eq!(catalog.status(), 200);
    let catalog = body(catalog).await;
    assert_eq!(catalog["currency"], "XTR");
    let items: BTreeMap<String, Value> = catalog["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["id"].as_str().unwrap().to_owned(), i.clone()))
        .collect();
    assert_eq!(
        items.keys().map(String::as_str).collect::<Vec<_>>(),
        ["coins_1000", "full_energy", "starter_pack", "vip"]
    );
    assert_eq!(items["coins_1000"]["stars"], 50);
    assert_eq!(items["coins_1000"]["grants"], json!({"coins": 1000}));
    assert_eq!(items["starter_pack"]["stars"], 100);
    assert_eq!(items["starter_pack"]["once"], true);
    assert_eq!(items["vip"]["stars"], 250);

    let invoice = shop.buy(user, "coins_1000").await;
    assert_eq!(invoice.response["item_id"], "coins_1000");
    assert_eq!(invoice.response["stars"], 50);
    assert!(invoice.response["purchase_id"].is_string());
    assert!(invoice.response["event_id"].is_string());
    assert!(invoice.response["position"].is_string());
    let calls = shop.fake.calls_to("createInvoiceLink");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].answered["result"], json!(invoice.link));
    let params = shop.fake.invoice(&invoice.link).unwrap();
    assert_eq!(params["currency"], "XTR");
    let prices = params["prices"].as_array().expect("prices, an array");
    assert_eq!(prices.len(), 1, "{params}");
    assert_eq!(prices[0]["amount"], 50);
    assert!(
        params
            .get("provider_token")
            .is_none_or(|t| t.is_null() || t.as_str() == Some("")),
        "no provider token for Stars: {params}"
    );
    assert!(params.get("subscription_period").is_none_or(Value::is_null));
    assert!(
        !invoice.payload.is_empty() && invoice.payload.len() <= 128,
        "{}",
        invoice.payload
    );

    let (ok, message) = shop.pre_checkout(user, 50, &invoice.payload).await;
    assert!(ok, "the genuine payload is approved: {message:?}");
    let (charge, update) = shop.pay(user, 50, &invoice);
    shop.deliver(&update).await;
    let records = shop.writer.read_all();
    assert_eq!(of_type(&records, "StarsPaymentReceived"), 1);
    assert_eq!(of_type(&records, "PurchaseStarted"), 1);

    // A subscription: a 30-day invoice, paid, appended, granting no coins.
    let vip = shop.buy(user, "vip").await;
    let params = shop.fake.invoice(&vip.link).unwrap();
    assert_eq!(
        params["subscription_period"], SUBSCRIPTION_PERIOD,
        "{params}"
    );
    assert_eq!(params["prices"][0]["amount"], 250);
    let (ok, message) = shop.pre_checkout(user, 250, &vip.payload).await;
    assert!(ok, "{message:?}");
    let charge_vip = shop.fake.pay(user, 250, &vip.payload, true);
    let expiration_date = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + SUBSCRIPTION_PERIOD;
    let first = Subscription {
        expiration_date,
        first: true,
    };
    let update = successful_payment_update(
        shop.fake.next_update_id(),
        user,
        250,
        &vip.payload,
        &charge_vip,
        Some(first),
    );
    shop.deliver(&update).await;
    assert_eq!(of_type(&shop.writer.read_all(), "StarsPaymentReceived"), 2);

    shop.caught_up().await;
    let me = shop.me(user).await;
    assert_eq!(me["wallet"]["balance"], 1000, "{me}");
    assert_eq!(me["wallet"]["entries"], 1);
    assert_eq!(me["wallet"]["latest"][0]["kind"], "purchase");
    assert_eq!(me["wallet"]["latest"][0]["amount"], 1000);
    assert_eq!(
        ledger(&shop.writer, user).await,
        [("purchase".into(), 1000)]
    );
    assert_eq!(shop.score(user).await, 1000);
    assert!(!shop.fake.charge(&charge).unwrap().refunded);
}

#[tokio::test]
async fn pre_checkout_refuses_tampered_foreign_mispriced_and_already_owned_invoices() {
    let shop = shop(false).await;
    let (a, b) = (201, 202);
    let mine = shop.buy(a, "coins_1000").await;
    let theirs = shop.buy(b, "coins_1000").await;

    // One character changed: the coins the payload names, the MAC's last character (a
    // non-canonical base64 ending that decodes to the same bytes in a lenient decoder).
    let coins_at = mine.payload.match_indices('.').nth(2).unwrap().0 + 1;
    assert_eq!(
        &mine.payload[coins_at..coins_at + 4],
        "1000",
        "{}",
        mine.payload
    );
    let last = mine.payload.len() - 1;
    assert!(last > coins_at + 10);
    for (what, payload) in [
        ("coins changed", tampered(&mine.payload, coins_at)),
        ("MAC changed", tampered(&mine.payload, last - 3)),
        ("MAC's unused bits set", non_canonical_end(&mine.payload)),
        (
            "user changed",
            mine.payload
                .replacen(&format!(".{a}."), &format!(".{b}."), 1),
        ),
    ] {
        assert_ne!(payload, mine.payload);
        let (ok, message) = shop.pre_checkout(a, 50, &payload).await;
        assert!(!ok, "{what}: {payload} approved");
        let (ok, _) = shop.pre_checkout(b, 50, &payload).await;
        assert!(!ok, "{what}: {payload} approved for {b}");
        eprintln!("{what}: {message:?}");
    }
    let (ok, message) = shop.pre_checkout(a, 50, &theirs.payload).await;
    assert!(!ok, "user {b}'s payload approved for {a}");
    eprintln!("foreign: {message:?}");
    for wrong in [49, 51, 5000] {
        let (ok, _) = shop.pre_checkout(a, wrong, &mine.payload).await;
        assert!(!ok, "approved at {wrong} Stars");
    }
    let (ok, message) = shop.pre_checkout(a, 50, &mine.payload).await;
    assert!(ok, "the genuine payload at its price: {message:?}");

    // A once-only item: two invoices, the first approved, so the second is held off, then paid,
    // so the second is refused as owned, and no third invoice is made.
    let first = shop.buy(a, "starter_pack").await;
    let second = shop.buy(a, "starter_pack").await;
    let (ok, message) = shop.pre_checkout(a, 100, &first.payload).await;
    assert!(ok, "{message:?}");
    let (ok, _) = shop.pre_checkout(a, 100, &second.payload).await;
    assert!(
        !ok,
        "a second purchase of a once-only item approved while one is held"
    );
    let (charge, update) = shop.pay(a, 100, &first);
    shop.deliver(&update).await;
    let (ok, message) = shop.pre_checkout(a, 100, &second.payload).await;
    assert!(!ok, "an owned once-only item approved again");
    eprintln!("owned: {message:?}");
    let links = shop.fake.calls_to("createInvoiceLink").len();
    let before = shop.writer.record_count();
    let again = shop.purchase(a, "starter_pack").await;
    assert_eq!(again.status(), 409);
    assert_eq!(body(again).await["error"]["code"], "already_owned");
    assert_eq!(shop.fake.calls_to("createInvoiceLink").len(), links);
    assert_eq!(
        shop.writer.record_count(),
        before,
        "a refused purchase appends nothing"
    );
    // Another user still may, and an unknown item is not for sale.
    shop.buy(b, "starter_pack").await;
    // A payment whose payload is not genuine is answered (redelivering cannot help) and
    // appends nothing.
    let before = shop.writer.record_count();
    let forged = Invoice {
        response: Value::Null,
        link: String::new(),
        payload: tampered(&mine.payload, coins_at),
    };
    let (_, update) = shop.pay(a, 50, &forged);
    shop.deliver(&update).await;
    assert_eq!(
        shop.writer.record_count(),
        before,
        "a forged payment appended"
    );
    let unknown = shop.purchase(a, "no_such_item").await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(body(unknown).await["error"]["code"], "unknown_item");
    assert!(!shop.fake.charge(&charge).unwrap().refunded);
}

#[tokio::test]
async fn a_payment_delivered_again_is_credited_once() {
    let shop = shop(true).await;
    let user = 301;
    let invoice = shop.buy(user, "coins_1000").await;
    let (ok, message) = shop.pre_checkout(user, 50, &invoice.payload).await;
    assert!(ok, "{message:?}");
    let (charge, first) = shop.pay(user, 50, &invoice);
    assert!(shop.fake.charge(&charge).is_some());
    // The same update twice (Telegram got no 2xx), and the same charge in a new update.
    shop.deliver(&first).await;
    shop.deliver(&first).await;
    let mut renewed = first.clone();
    renewed["update_id"] = json!(shop.fake.next_update_id());
    shop.deliver(&renewed).await;
    let records = shop.writer.read_all();
    // Once: the write side recorded the charge after its append, so neither is appended again.
    assert_eq!(of_type(&records, "StarsPaymentReceived"), 1);

    shop.caught_up().await;
    assert_eq!(
        ledger(&shop.writer, user).await,
        [("purchase".into(), 1000)]
    );
    let me = shop.me(user).await;
    assert_eq!(me["wallet"]["balance"], 1000, "{me}");
    assert_eq!(shop.score(user).await, 1000);
    let expected = fold_topic(&shop.writer, records.len()).await;
    assert_projections_equal_fold(&shop.writer, &expected).await;
}

#[tokio::test]
async fn payments_whose_write_api_is_killed_around_the_append_are_credited_once() {
    let fake = FakeBotApi::start(BOT_TOKEN).await;
    let first = spawn_app_with(writer_options(fake.url(), Some(SECRET))).await;
    let id = first.id.clone();
    let users: Vec<i64> = (401..=416).collect();
    let shop = Shop {
        hook: webhook_of(&first, Some(SECRET)),
        fake,
        writer: first,
        processor: None,
        query: None,
    };
    let mut payments = Vec::new();
    for &user in &users {
        let invoice = shop.buy(user, "coins_1000").await;
        let (ok, message) = shop.pre_checkout(user, 50, &invoice.payload).await;
        assert!(ok, "{message:?}");
        let (charge, update) = shop.pay(user, 50, &invoice);
        payments.push((user, charge, update));
    }

    // Every payment sent at once, and the write API killed as soon as one was answered or
    // appended: some are appended and answered, some appended and not answered, some not
    // appended at all.
    let deliveries: Vec<_> = payments
        .iter()
        .enumerate()
        .map(|(i, (_, _, update))| {
            let hook = shop.hook.clone();
            let update = update.clone();
            tokio::spawn(async move {
                // Staggered, so the kill finds them at different stages.
                tokio::time::sleep(Duration::from_millis(4 * i as u64)).await;
                let mut request = reqwest::Client::new().post(&hook.url).json(&update);
                if let Some(secret) = &hook.secret {
                    request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
                }
                request.send().await.map(|r| r.status().as_u16()).ok()
            })
        })
        .collect();
    let since = Instant::now();
    // Reading the topic blocks this task's thread, so it is looked at only when no answer
    // came for a while.
    while !deliveries.iter().any(|d| d.is_finished())
        && (since.elapsed() < Duration::from_secs(5)
            || of_type(&shop.writer.read_all(), "StarsPaymentReceived") == 0)
    {
        assert!(
            since.elapsed() < DEADLINE,
            "no payment reached the topic:\n{}",
            shop.writer.logs()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let Shop {
        fake, writer: dead, ..
    } = shop;
    dead.kill(); // SIGKILL: no answer, no record written after the append
    let mut answered = 0;
    for delivery in deliveries {
        if delivery.await.unwrap() == Some(200) {
            answered += 1;
        }
    }
    let second = crate::helpers::started(&id, writer_options(fake.url(), Some(SECRET)));
    let appended = of_type(&second.read_all(), "StarsPaymentReceived");
    eprintln!(
        "killed with {answered} of {} payments answered, {appended} appended",
        users.len()
    );
    assert!(
        appended >= answered,
        "a payment answered 200 was not appended"
    );

    // Telegram redelivers every update (it got no 2xx for some), and one charge comes again
    // in a new update.
    let hook = webhook_of(&second, Some(SECRET));
    for (_, _, update) in &payments {
        deliver_to(&hook, update).await;
    }
    let mut again = payments[0].2.clone();
    again["update_id"] = json!(fake.next_update_id());
    deliver_to(&hook, &again).await;
    let records = second.read_all();
    assert!(of_type(&records, "StarsPaymentReceived") >= users.len());

    let processor = started(&id, "process");
    wait_caught_up(&second, &[&processor]).await;
    let expected = fold_topic(&second, records.len()).await;
    for &user in &users {
        assert_eq!(
            ledger(&second, user).await,
            [("purchase".into(), 1000)],
            "user {user}"
        );
        assert_eq!(expected[&user].balance, 1000, "user {user} in the fold");
    }
    assert_projections_equal_fold(&second, &expected).await;

    // The second instance knows every charge: an operator can refund any of them.
    let shop = Shop {
        hook,
        fake,
        writer: second,
        processor: Some(processor),
        query: None,
    };
    for (_, charge, _) in &payments {
        assert_eq!(
            shop.refund(charge).await.status(),
            202,
            "refund of {charge}"
        );
    }
}

#[tokio::test]
async fn payments_and_refunds_are_applied_once_across_sigkills_of_the_processors() {
    let mut shop = shop(true).await;
    let users = 501..=506;
    let mut coins = Vec::new();
    for user in users.clone() {
        let (invoice, charge) = shop.buy_and_pay(user, "coins_1000", 50).await;
        coins.push((user, invoice, charge));
    }
    // The processors die mid-stream, are restarted, and die again.
    let fresh = started(&shop.writer.id, "process");
    std::mem::replace(shop.processor.as_mut().unwrap(), fresh).kill();
    for user in users.clone().filter(|u| u % 2 == 1) {
        shop.buy_and_pay(user, "starter_pack", 100).await;
    }
    // Refunds of every even user's coins, by the operator, then by Telegram's update.
    for (user, invoice, charge) in coins.iter().filter(|(u, ..)| u % 2 == 0) {
        assert_eq!(shop.refund(charge).await.status(), 202);
        let update = refunded_payment_update(
            shop.fake.next_update_id(),
            *user,
            50,
            &invoice.payload,
            charge,
        );
        shop.deliver(&update).await;
    }
    let fresh = started(&shop.writer.id, "process");
    std::mem::replace(shop.processor.as_mut().unwrap(), fresh).kill();
    // Redelivered payments (a refunded one among them), as Telegram does after a missing 2xx.
    for (user, invoice, charge) in coins.iter().filter(|(u, ..)| u % 3 == 0) {
        let update = successful_payment_update(
            shop.fake.next_update_id(),
            *user,
            50,
            &invoice.payload,
            charge,
            None,
        );
        shop.deliver(&update).await;
    }
    let fresh = started(&shop.writer.id, "process");
    std::mem::replace(shop.processor.as_mut().unwrap(), fresh).kill();
    shop.caught_up().await;

    let count = shop.writer.record_count() as usize;
    let expected = fold_topic(&shop.writer, count).await;
    assert_projections_equal_fold(&shop.writer, &expected).await;
    for user in users {
        let (balance, kinds) = if user % 2 == 0 {
            (
                0,
                vec![("purchase".to_owned(), 1000), ("refund".to_owned(), -1000)],
            )
        } else {
            (
                11_000,
                vec![
                    ("purchase".to_owned(), 1000),
                    ("purchase".to_owned(), 10_000),
                ],
            )
        };
        assert_eq!(
            ledger(&shop.writer, user).await,
            kinds,
            "user {user}'s ledger"
        );
        assert_eq!(expected[&user].balance, balance, "user {user} in the fold");
        assert_eq!(
            shop.me(user).await["wallet"]["balance"],
            balance,
            "user {user}"
        );
    }
}

#[tokio::test]
async fn a_refund_is_applied_once_whoever_reports_it_and_makes_a_once_only_item_buyable() {
    let shop = shop(true).await;
    let user = 601;
    let (invoice, charge) = shop.buy_and_pay(user, "coins_1000", 50).await;
    let (pack, pack_charge) = shop.buy_and_pay(user, "starter_pack", 100).await;
    assert_eq!(shop.purchase(user, "starter_pack").await.status(), 409);

    let response = shop.refund(&charge).await;
    assert_eq!(response.status(), 202);
    let refunded = body(response).await;
    assert_eq!(refunded["refunded"], true);
    assert_eq!(refunded["already_refunded"], false);
    assert!(refunded["event_id"].is_string() && refunded["position"].is_string());
    assert!(shop.fake.charge(&charge).unwrap().refunded);
    let calls = shop.fake.calls_to("refundStarPayment");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].params["telegram_payment_charge_id"], json!(charge));
    assert_eq!(calls[0].params["user_id"], json!(user));
    shop.caught_up().await;
    assert_eq!(shop.me(user).await["wallet"]["balance"], 10_000);

    // Again: Telegram says the charge is already refunded; the same event, not appended again.
    let again = shop.refund(&charge).await;
    assert_eq!(again.status(), 202);
    let again = body(again).await;
    assert_eq!(again["refunded"], true);
    assert_eq!(again["already_refunded"], true);
    assert_eq!(
        again["event_id"], refunded["event_id"],
        "one event id per refund"
    );
    let refusal = &shop.fake.calls_to("refundStarPayment")[1].answered;
    assert!(
        refusal["description"]
            .as_str()
            .is_some_and(|d| d.contains("CHARGE_ALREADY_REFUNDED")),
        "{refusal}"
    );
    // And Telegram's own report of it.
    let update = refunded_payment_update(
        shop.fake.next_update_id(),
        user,
        50,
        &invoice.payload,
        &charge,
    );
    shop.deliver(&update).await;
    shop.deliver(&update).await;

    // The once-only item: refunded, it can be bought again.
    let response = shop.refund(&pack_charge).await;
    assert_eq!(response.status(), 202);
    assert_eq!(body(response).await["already_refunded"], false);
    let rebuy = shop.purchase(user, "starter_pack").await;
    assert_eq!(
        rebuy.status(),
        202,
        "a refunded once-only item is buyable again"
    );
    drop(pack);

    // Unknown charge, no token, wrong token.
    let unknown = shop.refund("stxnope").await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(body(unknown).await["error"]["code"], "unknown_charge");
    let before = shop.writer.record_count();
    for token in [None, Some("Bearer wrong")] {
        let mut request = shop
            .writer
            .request("POST", "/v1/admin/refunds")
            .json(&json!({ "telegram_payment_charge_id": charge }));
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        let status = request.send().await.unwrap().status().as_u16();
        assert!(matches!(status, 401 | 403), "{token:?}: {status}");
    }
    assert_eq!(shop.writer.record_count(), before);
    assert_eq!(shop.fake.calls_to("refundStarPayment").len(), 3);

    shop.caught_up().await;
    let records = shop.writer.read_all();
    // One per refunded charge: a refund the write side recorded is not appended again.
    assert_eq!(of_type(&records, "StarsPaymentRefunded"), 2);
    assert_eq!(
        ledger(&shop.writer, user).await,
        [
            ("purchase".into(), 1000),
            ("purchase".into(), 10_000),
            ("refund".into(), -1000),
            ("refund".into(), -10_000),
        ]
    );
    let me = shop.me(user).await;
    assert_eq!(me["wallet"]["balance"], 0, "{me}");
    assert_eq!(shop.score(user).await, 0);
    let expected = fold_topic(&shop.writer, records.len()).await;
    assert_projections_equal_fold(&shop.writer, &expected).await;
}

#[tokio::test]
async fn the_webhook_reads_only_updates_with_its_secret_token() {
    let shop = shop(false).await;
    let user = 701;
    let invoice = shop.buy(user, "coins_1000").await;
    let before = shop.writer.record_count();
    let calls = shop.fake.calls().len();
    let (_, update) = shop.pay(user, 50, &invoice);
    let (query, query_id) = shop.fake.pre_checkout_query(
        shop.fake.next_update_id(),
        user,
        "XTR",
        50,
        &invoice.payload,
    );
    for (secret, code) in [
        (Some("wrong_secret"), "invalid_webhook_secret"),
        (Some("test_secret-"), "invalid_webhook_secret"),
        (None, "webhook_secret_required"),
    ] {
        let hook = webhook_of(&shop.writer, secret);
        for update in [&update, &query] {
            let response = hook.send(update).await;
            assert_eq!(response.status(), 401, "{secret:?}");
            assert_eq!(body(response).await["error"]["code"], code);
        }
    }
    assert_eq!(shop.writer.record_count(), before, "nothing appended");
    assert_eq!(shop.fake.calls().len(), calls, "no Bot API call");
    assert!(shop.fake.pre_checkout_answer(&query_id).is_none());
    // Refused, the update was not remembered as handled: with the secret, it is.
    shop.deliver(&update).await;
    assert_eq!(
        of_type(&shop.writer.read_all(), "StarsPaymentReceived"),
        1,
        "the update refused for its secret is handled once it carries it"
    );

    let fake = FakeBotApi::start(BOT_TOKEN).await;
    let closed = spawn_app_with(writer_options(fake.url(), None)).await;
    let before = closed.record_count();
    for secret in [Some(SECRET), None] {
        let response = webhook_of(&closed, secret).send(&update).await;
        assert_eq!(response.status(), 403);
        assert_eq!(body(response).await["error"]["code"], "webhook_disabled");
    }
    assert_eq!(closed.record_count(), before);
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn a_purchase_the_bot_api_refuses_or_cannot_take_appends_nothing() {
    let shop = shop(false).await;
    let user = 801;
    let before = shop.writer.record_count();
    shop.fake.fail_next(
        "createInvoiceLink",
        400,
        "Bad Request: CURRENCY_TOTAL_AMOUNT_INVALID",
        None,
    );
    let refused = shop.purchase(user, "coins_1000").await;
    assert_eq!(refused.status(), 502);
    let refused = body(refused).await;
    assert_eq!(refused["error"]["code"], "telegram_refused", "{refused}");
    assert_eq!(shop.fake.calls_to("createInvoiceLink").len(), 1);
    assert_eq!(shop.writer.record_count(), before, "nothing appended");
    // The next one goes through.
    shop.buy(user, "coins_1000").await;
    assert_eq!(shop.writer.record_count(), before + 1);

    let offline = spawn_app_with(writer_options("http://127.0.0.1:9", Some(SECRET))).await;
    let before = offline.record_count();
    let response = offline
        .write(
            "POST",
            "/v1/purchases",
            user,
            json!({ "item_id": "coins_1000" }),
        )
        .await;
    assert_eq!(response.status(), 503);
    let unavailable = body(response).await;
    assert_eq!(
        unavailable["error"]["code"], "telegram_unavailable",
        "{unavailable}"
    );
    assert_eq!(offline.record_count(), before, "nothing appended");
}

#[tokio::test]
async fn a_refunded_once_only_item_can_be_paid_for_again_at_once() {
    let shop = shop(false).await;
    let user = 901;
    let (_, charge) = shop.buy_and_pay(user, "starter_pack", 100).await;
    let response = shop.refund(&charge).await;
    assert_eq!(response.status(), 202);
    let again = shop.buy(user, "starter_pack").await;
    let (ok, message) = shop.pre_checkout(user, 100, &again.payload).await;
    assert!(
        ok,
        "the pre-checkout of a refunded once-only item bought again was refused: {message:?}"
    );
}

#[tokio::test]
async fn a_payment_redelivered_after_its_refund_does_not_make_the_item_owned_again() {
    let shop = shop(false).await;
    let user = 902;
    let invoice = shop.buy(user, "starter_pack").await;
    let (ok, message) = shop.pre_checkout(user, 100, &invoice.payload).await;
    assert!(ok, "{message:?}");
    let (charge, update) = shop.pay(user, 100, &invoice);
    shop.deliver(&update).await;
    assert_eq!(shop.refund(&charge).await.status(), 202);
    // Telegram redelivers the payment (e.g. its 2xx was lost to a killed write API): the same
    // charge, already refunded.
    let mut redelivered = update.clone();
    redelivered["update_id"] = json!(shop.fake.next_update_id());
    shop.deliver(&redelivered).await;
    let response = shop.purchase(user, "starter_pack").await;
    assert_eq!(
        response.status(),
        202,
        "a refunded item is owned again after its payment was redelivered: {}",
        response.text().await.unwrap()
    );
}

#[tokio::test]
async fn a_payment_its_refund_and_a_refill_keep_their_rules_with_the_write_api_on_redis_cluster() {
    let cluster = vec![(
        "SURGE_REDIS_CLUSTER_URLS",
        surge_testkit::redis_cluster_urls(),
    )];
    let shop = shop_with(false, cluster).await;
    // Users whose keys live on each of the three masters (slots 2100, 6289, 14423).
    for user in [906, 903, 905] {
        let (_, charge) = shop.buy_and_pay(user, "starter_pack", 100).await;
        let owned = shop.purchase(user, "starter_pack").await;
        assert_eq!(
            owned.status(),
            409,
            "a once-only item {user} owns, bought again"
        );
        assert_eq!(shop.refund(&charge).await.status(), 202);
        let again = shop.buy(user, "starter_pack").await;
        let (ok, message) = shop.pre_checkout(user, 100, &again.payload).await;
        assert!(ok, "refunded, the item is buyable again: {message:?}");

        let tap = |count: i64| {
            shop.writer
                .write("POST", "/v1/taps", user, json!({ "count": count }))
        };
        assert_eq!(tap(1000).await.status(), 202);
        let invoice = shop.buy(user, "full_energy").await;
        let (ok, message) = shop.pre_checkout(user, 10, &invoice.payload).await;
        assert!(ok, "{message:?}");
        let (_, update) = shop.pay(user, 10, &invoice);
        shop.deliver(&update).await;
        assert_eq!(tap(1000).await.status(), 202, "the refill filled the bar");
        let mut again = update.clone();
        again["update_id"] = json!(shop.fake.next_update_id());
        shop.deliver(&again).await;
        assert_eq!(tap(500).await.status(), 429, "a second refill");
    }
}

impl Shop {
    /// `GET /v1/me/purchases` of `user`, waiting for `token` when given.
    async fn purchases(&self, user: i64, token: Option<&str>) -> Value {
        let query = self.query.as_ref().expect("a query API");
        let mut request = query
            .request("GET", "/v1/me/purchases")
            .header("authorization", format!("tma {}", init_data(user)));
        if let Some(token) = token {
            request = request.header("x-consistency-token", token);
        }
        let response = request.send().await.expect("the query API answers");
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).unwrap()
    }
}

/// Every row of the active `purchases` version's payments, by charge id:
/// (user, item, Stars, coins, refunded).
async fn stored_payments(app: &TestApp) -> BTreeMap<String, (i64, String, i64, i64, bool)> {
    let pool = pg_pool(&app.id).await;
    let table = naming::table_prefix("purchases", active_version(app, "purchases").await);
    sqlx::query(&format!(
        "SELECT telegram_payment_charge_id AS c, user_id, item_id, stars, coins,
                refunded_at IS NOT NULL AS refunded
         FROM {table}_payments WHERE paid_at IS NOT NULL"
    ))
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get("c"),
            (
                r.get("user_id"),
                r.get("item_id"),
                r.get("stars"),
                r.get("coins"),
                r.get("refunded"),
            ),
        )
    })
    .collect()
}

/// The same, folded straight from the topic's payment events.
async fn folded_payments(app: &TestApp) -> BTreeMap<String, (i64, String, i64, i64, bool)> {
    let (codec, _registry) = app.codec().await;
    let mut records = app.read_records(app.record_count() as usize);
    records.sort_by_key(|r| (rdkafka::Message::partition(r), rdkafka::Message::offset(r)));
    let mut paid = BTreeMap::new();
    let mut refunded = std::collections::BTreeSet::new();
    for record in records {
        let event = codec
            .decode(rdkafka::Message::payload(&record).unwrap())
            .await
            .unwrap();
        match event.payload {
            surge_schemas::Payload::StarsPaymentReceived(p) => {
                paid.entry(p.telegram_payment_charge_id).or_insert((
                    event.envelope.user_id,
                    p.item_id,
                    p.stars,
                    p.coins,
                    false,
                ));
            }
            surge_schemas::Payload::StarsPaymentRefunded(r) => {
                refunded.insert(r.telegram_payment_charge_id);
            }
            _ => {}
        }
    }
    for (charge, row) in &mut paid {
        row.4 = refunded.contains(charge);
    }
    paid
}

#[tokio::test]
async fn purchases_are_read_back_with_their_token_and_a_rebuild_of_them_equals_the_topic() {
    let shop = shop(true).await;
    let user = 1001;
    // Opened, not paid: the purchase's own token shows it at once.
    let pending = shop.buy(user, "starter_pack").await;
    let token = pending.response["position"].as_str().unwrap();
    let seen = shop.purchases(user, Some(token)).await;
    let purchase_id = pending.response["purchase_id"].as_str().unwrap();
    let mine = seen["purchases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["purchase_id"] == purchase_id)
        .unwrap_or_else(|| panic!("the purchase is not read back with its token: {seen}"));
    assert_eq!(mine["status"], "started", "{mine}");
    assert_eq!(mine["stars"], 100);

    // Paid and refunded coins, a paid subscription with its expiry.
    let (coins, coins_charge) = shop.buy_and_pay(user, "coins_1000", 50).await;
    assert_eq!(shop.refund(&coins_charge).await.status(), 202);
    let vip = shop.buy(user, "vip").await;
    let (ok, message) = shop.pre_checkout(user, 250, &vip.payload).await;
    assert!(ok, "{message:?}");
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + SUBSCRIPTION_PERIOD;
    let vip_charge = shop.fake.pay(user, 250, &vip.payload, true);
    let subscription = Subscription {
        expiration_date: expires,
        first: true,
    };
    shop.deliver(&successful_payment_update(
        shop.fake.next_update_id(),
        user,
        250,
        &vip.payload,
        &vip_charge,
        Some(subscription),
    ))
    .await;
    shop.caught_up().await;

    let seen = shop.purchases(user, None).await;
    let status_of = |invoice: &Invoice| {
        let id = &invoice.response["purchase_id"];
        seen["purchases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["purchase_id"] == *id)
            .map(|p| p["status"].clone())
    };
    assert_eq!(status_of(&pending), Some(json!("started")), "{seen}");
    assert_eq!(status_of(&coins), Some(json!("refunded")), "{seen}");
    assert_eq!(status_of(&vip), Some(json!("paid")), "{seen}");
    let payments = seen["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 2, "{seen}");
    let refunded = payments
        .iter()
        .find(|p| p["telegram_payment_charge_id"] == coins_charge.as_str())
        .unwrap();
    assert!(refunded["refunded_at"].is_string(), "{refunded}");
    assert_eq!(refunded["coins"], 1000);
    let plans = seen["subscriptions"].as_array().unwrap();
    assert_eq!(plans.len(), 1, "{seen}");
    assert_eq!(plans[0]["plan"], "vip");
    assert_eq!(plans[0]["active"], true, "{seen}");

    // Operators see the day's Stars.
    let query = shop.query.as_ref().unwrap();
    let revenue = query
        .request("GET", "/v1/stats/revenue?days=2")
        .send()
        .await
        .unwrap();
    assert_eq!(revenue.status(), 403, "closed without an operator token");

    // A rebuild of purchases equals a fold of the topic, as the first build did.
    let first = stored_payments(&shop.writer).await;
    assert_eq!(first, folded_payments(&shop.writer).await);
    assert_eq!(first.len(), 2);
    let output = shop
        .writer
        .cli("replay")
        .args([
            "purchases",
            "--drop-grace-secs",
            "2",
            "--handover-timeout-secs",
            "60",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("purchases v2 is active in place of v1"),
        "surge replay purchases failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(active_version(&shop.writer, "purchases").await, 2);
    assert_eq!(stored_payments(&shop.writer).await, first);
    let again = shop.purchases(user, None).await;
    assert_eq!(again["payments"], seen["payments"]);
}

#[tokio::test]
async fn operators_read_stars_revenue_per_day() {
    let fake = FakeBotApi::start(BOT_TOKEN).await;
    let writer = spawn_app_with(writer_options(fake.url(), Some(SECRET))).await;
    let processor = started(&writer.id, "process");
    let query = start(
        &writer.id,
        Options {
            role: Some("query-api"),
            env: vec![
                ("SURGE_CONSISTENCY_WAIT_MS", "20000".to_owned()),
                ("SURGE_OPERATOR_TOKEN", OPERATOR.to_owned()),
            ],
            ..Options::default()
        },
    )
    .unwrap();
    let shop = Shop {
        hook: webhook_of(&writer, Some(SECRET)),
        fake,
        writer,
        processor: Some(processor),
        query: Some(query),
    };
    shop.buy_and_pay(1101, "coins_1000", 50).await;
    let (_, charge) = shop.buy_and_pay(1102, "starter_pack", 100).await;
    assert_eq!(shop.refund(&charge).await.status(), 202);
    shop.caught_up().await;
    let response = shop
        .query
        .as_ref()
        .unwrap()
        .request("GET", "/v1/stats/revenue?days=2")
        .header("authorization", format!("Bearer {OPERATOR}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let revenue = body(response).await;
    assert_eq!(revenue["currency"], "XTR");
    // Summed over today and yesterday, so a run across midnight (UTC) holds too.
    let days = revenue["days"].as_array().unwrap();
    let total = |field: &str| days.iter().map(|d| d[field].as_i64().unwrap()).sum::<i64>();
    assert_eq!(total("stars_paid"), 150, "{revenue}");
    assert_eq!(total("stars_refunded"), 100, "{revenue}");
    assert_eq!((total("payments"), total("refunds")), (2, 1), "{revenue}");
}

#[tokio::test]
async fn a_bought_energy_refill_fills_the_bar_once_however_often_it_is_reported() {
    let shop = shop(false).await;
    let user = 1201;
    let tap = |count: i64| {
        shop.writer
            .write("POST", "/v1/taps", user, json!({ "count": count }))
    };
    let drained = tap(1000).await;
    assert_eq!(drained.status(), 202);
    assert!(body(drained).await["energy"]["left"].as_u64().unwrap() < 10);
    let invoice = shop.buy(user, "full_energy").await;
    let (ok, message) = shop.pre_checkout(user, 10, &invoice.payload).await;
    assert!(ok, "{message:?}");
    let (_, update) = shop.pay(user, 10, &invoice);
    shop.deliver(&update).await;
    // Full again: a whole bar of taps is accepted at once.
    let refilled = tap(1000).await;
    assert_eq!(refilled.status(), 202, "the refill did not fill the bar");
    // The same payment reported again, in a new update: no second refill.
    let mut again = update.clone();
    again["update_id"] = json!(shop.fake.next_update_id());
    shop.deliver(&again).await;
    let refused = tap(500).await;
    assert_eq!(
        refused.status(),
        429,
        "a redelivered payment refilled the bar twice"
    );
    assert_eq!(body(refused).await["error"]["code"], "out_of_energy");
}
