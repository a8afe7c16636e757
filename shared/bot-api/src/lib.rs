//! A small client of Telegram's Bot API (<https://core.telegram.org/bots/api>): the methods Surge
//! calls, typed, and Telegram's answer shape, `{"ok":true,"result":…}` or
//! `{"ok":false,"error_code":…,"description":…,"parameters":{"retry_after":…}}`.
//!
//! Methods are called as `POST <api url>/bot<token>/<method>` with a JSON body, as Telegram
//! documents, so `SURGE_TELEGRAM_API_URL` can point at a local Bot API server or a test double.
//! The token is part of every URL, so errors never carry the URL (reqwest's are stripped of it)
//! and `Debug` shows no token.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Telegram's own Bot API server.
pub const TELEGRAM_API_URL: &str = "https://api.telegram.org";

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum BotApiError {
    /// Telegram answered `ok: false`.
    #[error("Telegram refused {method}: {code} {description}")]
    Refused {
        method: &'static str,
        code: u16,
        description: String,
        /// `parameters.retry_after` of a 429: seconds before any call may be retried.
        retry_after: Option<u64>,
    },
    /// No answer, or one that is not the Bot API's shape; the call may or may not have landed.
    #[error("the Bot API did not answer {method}: {reason}")]
    Unreachable {
        method: &'static str,
        reason: String,
    },
}

impl BotApiError {
    /// Whether Telegram's description contains `text` (e.g. `CHARGE_ALREADY_REFUNDED`).
    pub fn says(&self, text: &str) -> bool {
        matches!(self, BotApiError::Refused { description, .. } if description.contains(text))
    }
}

/// A client bound to one bot token. Cheap to clone.
#[derive(Clone)]
pub struct BotApi {
    http: reqwest::Client,
    base: String,
    token: SecretString,
}

impl std::fmt::Debug for BotApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotApi")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// `createInvoiceLink`'s parameters for a Telegram Stars invoice (currency `XTR`, no provider
/// token, exactly one price).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StarsInvoice {
    pub title: String,
    pub description: String,
    /// 1–128 bytes, returned in the pre-checkout query and the payment.
    pub payload: String,
    pub label: String,
    pub stars: i64,
    /// `Some(2592000)` for a monthly subscription.
    pub subscription_period: Option<i64>,
}

/// A `sendMessage` to a chat, with an optional inline button that opens the Mini App.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage<'a> {
    pub chat_id: i64,
    pub text: &'a str,
    /// The label and the `https://` URL of a `web_app` button.
    pub web_app_button: Option<(&'a str, &'a str)>,
    /// `allow_paid_broadcast`: up to 1,000 messages a second, for 0.1 Star each.
    pub paid_broadcast: bool,
}

#[derive(Deserialize)]
struct Answer {
    ok: bool,
    result: Option<Value>,
    error_code: Option<u16>,
    description: Option<String>,
    parameters: Option<Parameters>,
}

#[derive(Deserialize)]
struct Parameters {
    retry_after: Option<u64>,
}

impl BotApi {
    /// A client of the Bot API at `base` (e.g. [`TELEGRAM_API_URL`]); every call gives up after
    /// `timeout`.
    pub fn new(base: &str, token: SecretString, timeout: Duration) -> BotApi {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()
            .expect("a reqwest client with timeouts builds");
        BotApi {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        }
    }

    /// Calls `method` with `params` and decodes its `result`.
    pub async fn call<R: DeserializeOwned>(
        &self,
        method: &'static str,
        params: &impl Serialize,
    ) -> Result<R, BotApiError> {
        let unreachable = |reason: String| BotApiError::Unreachable { method, reason };
        let url = format!("{}/bot{}/{method}", self.base, self.token.expose_secret());
        let response = self
            .http
            .post(url)
            .json(params)
            .send()
            .await
            .map_err(|e| unreachable(e.without_url().to_string()))?;
        let status = response.status();
        let answer: Answer = response
            .json()
            .await
            .map_err(|e| unreachable(format!("HTTP {status}: {}", e.without_url())))?;
        if answer.ok {
            let result = answer.result.unwrap_or(Value::Null);
            return serde_json::from_value(result)
                .map_err(|e| unreachable(format!("an unexpected result: {e}")));
        }
        Err(BotApiError::Refused {
            method,
            code: answer.error_code.unwrap_or(status.as_u16()),
            description: answer.description.unwrap_or_default(),
            retry_after: answer.parameters.and_then(|p| p.retry_after),
        })
    }

    /// `createInvoiceLink` in Telegram Stars: the link the Mini App opens with `openInvoice`.
    pub async fn create_stars_invoice_link(
        &self,
        invoice: &StarsInvoice,
    ) -> Result<String, BotApiError> {
        let mut params = json!({
            "title": invoice.title,
            "description": invoice.description,
            "payload": invoice.payload,
            "currency": "XTR",
            "prices": [{ "label": invoice.label, "amount": invoice.stars }],
        });
        if let Some(period) = invoice.subscription_period {
            params["subscription_period"] = json!(period);
        }
        self.call("createInvoiceLink", &params).await
    }

    /// `answerPreCheckoutQuery`: `Ok(())` to let the payment through, `Err(message)` to refuse it
    /// with a message Telegram shows the user.
    pub async fn answer_pre_checkout_query(
        &self,
        query_id: &str,
        verdict: Result<(), &str>,
    ) -> Result<(), BotApiError> {
        let params = match verdict {
            Ok(()) => json!({ "pre_checkout_query_id": query_id, "ok": true }),
            Err(message) => json!({
                "pre_checkout_query_id": query_id,
                "ok": false,
                "error_message": message,
            }),
        };
        self.call::<bool>("answerPreCheckoutQuery", &params)
            .await
            .map(drop)
    }

    /// `sendMessage`.
    pub async fn send_message(&self, message: &OutgoingMessage<'_>) -> Result<(), BotApiError> {
        let mut params = json!({ "chat_id": message.chat_id, "text": message.text });
        if let Some((label, url)) = message.web_app_button {
            params["reply_markup"] = json!({
                "inline_keyboard": [[{ "text": label, "web_app": { "url": url } }]],
            });
        }
        if message.paid_broadcast {
            params["allow_paid_broadcast"] = json!(true);
        }
        self.call::<Value>("sendMessage", &params).await.map(drop)
    }

    /// `refundStarPayment`.
    pub async fn refund_star_payment(
        &self,
        user_id: i64,
        charge_id: &str,
    ) -> Result<(), BotApiError> {
        let params = json!({ "user_id": user_id, "telegram_payment_charge_id": charge_id });
        self.call::<bool>("refundStarPayment", &params)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Json;
    use axum::extract::Path;
    use axum::http::StatusCode;
    use axum::routing::post;

    /// A server answering every method with `answer` (and its status), recording the path.
    async fn server(status: StatusCode, answer: Value) -> String {
        let app = axum::Router::new().route(
            "/{bot}/{method}",
            post(move |Path((bot, method)): Path<(String, String)>| {
                let answer = answer.clone();
                async move {
                    let mut answer = answer;
                    if answer["result"] == "echo" {
                        answer["result"] = json!(format!("{bot}/{method}"));
                    }
                    (status, Json(answer))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    fn client(url: &str) -> BotApi {
        BotApi::new(url, "123:secret".to_owned().into(), Duration::from_secs(5))
    }

    #[tokio::test]
    async fn methods_are_called_at_bot_token_slash_method() {
        let url = server(StatusCode::OK, json!({ "ok": true, "result": "echo" })).await;
        let called: String = client(&url).call("getMe", &json!({})).await.unwrap();
        assert_eq!(called, "bot123:secret/getMe");
    }

    #[tokio::test]
    async fn a_refusal_keeps_telegrams_code_description_and_retry_after() {
        let answer = json!({
            "ok": false, "error_code": 429, "description": "Too Many Requests: retry after 7",
            "parameters": { "retry_after": 7 },
        });
        let url = server(StatusCode::TOO_MANY_REQUESTS, answer).await;
        let err = client(&url)
            .refund_star_payment(1, "stx")
            .await
            .unwrap_err();
        match &err {
            BotApiError::Refused {
                method,
                code,
                retry_after,
                ..
            } => assert_eq!(
                (*method, *code, *retry_after),
                ("refundStarPayment", 429, Some(7))
            ),
            other => panic!("{other:?}"),
        }
        assert!(err.says("Too Many Requests"));
    }

    #[tokio::test]
    async fn no_error_or_debug_output_shows_the_token() {
        let api = client("http://127.0.0.1:9");
        let err = api.call::<bool>("getMe", &json!({})).await.unwrap_err();
        assert!(matches!(err, BotApiError::Unreachable { .. }), "{err:?}");
        for shown in [err.to_string(), format!("{err:?}"), format!("{api:?}")] {
            assert!(!shown.contains("secret"), "{shown}");
        }
        let html = server(StatusCode::BAD_GATEWAY, json!("not the Bot API")).await;
        let err = client(&html)
            .call::<bool>("getMe", &json!({}))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("502"), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
