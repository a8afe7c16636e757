//! `surge dev`'s demo Mini App: the page `npm --prefix demo run build` writes, where the APIs
//! are, and, for a plain browser outside Telegram, initData signed for a user it picks. Only
//! `surge dev` serves this, and it signs only with the development bot token: with a real bot's
//! token anyone reaching the port could act as any user.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use surge_http::ApiError;
use surge_telegram_auth::{InitDataBuilder, WebAppUser};
use tower_http::services::ServeDir;

use crate::settings::DEV_BOT_TOKEN;

#[derive(Clone)]
pub(crate) struct DemoConfig {
    /// The write and query APIs as the browser reaches them.
    pub(crate) write_url: String,
    pub(crate) query_url: String,
    pub(crate) bot_token: SecretString,
}

impl DemoConfig {
    /// Whether this process may sign initData for a browser: only with the development token.
    fn signs(&self) -> bool {
        self.bot_token.expose_secret() == DEV_BOT_TOKEN
    }
}

pub(crate) fn app(dir: &Path, config: DemoConfig) -> Router {
    let page = if dir.join("index.html").is_file() {
        Router::new().fallback_service(ServeDir::new(dir))
    } else {
        tracing::warn!(
            dir = %dir.display(),
            "The demo Mini App is not built; run `npm --prefix demo ci && npm --prefix demo run build` (scripts/dev.sh does)."
        );
        Router::new().fallback(not_built)
    };
    Router::new()
        .route("/config.json", get(config_json))
        .route("/dev/init-data", post(sign))
        .with_state(config)
        .merge(page)
}

async fn not_built() -> impl IntoResponse {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Html(
            "<h1>The demo Mini App is not built</h1>\
             <p>Run <code>npm --prefix demo ci &amp;&amp; npm --prefix demo run build</code> \
             (<code>scripts/dev.sh</code> does) and reload.</p>",
        ),
    )
}

/// What the page needs to find the APIs: they listen on ports of their own.
async fn config_json(State(config): State<DemoConfig>) -> impl IntoResponse {
    Json(json!({
        "write_url": config.write_url,
        "query_url": config.query_url,
        "dev_init_data": config.signs(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignRequest {
    user_id: i64,
    first_name: Option<String>,
    start_param: Option<String>,
}

/// `POST /dev/init-data {"user_id", "first_name"?, "start_param"?}`: `{"init_data"}` signed with
/// the development token, as Telegram would hand it to the Mini App. What the APIs accept of it
/// (names, start parameters) they still check themselves.
async fn sign(
    State(config): State<DemoConfig>,
    Json(request): Json<SignRequest>,
) -> Result<impl IntoResponse, ApiError> {
    if !config.signs() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "dev_signing_disabled",
            "surge dev signs initData only with the development bot token; inside Telegram the \
             Mini App sends Telegram.WebApp.initData",
        ));
    }
    if request.user_id <= 0 {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "user_id must be a positive Telegram user id",
        ));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let user = WebAppUser {
        id: request.user_id,
        first_name: request.first_name.unwrap_or_else(|| "Dev".to_owned()),
        last_name: None,
        username: None,
        language_code: Some("en".to_owned()),
        is_premium: false,
        is_bot: false,
        photo_url: None,
        allows_write_to_pm: true,
    };
    let mut builder = InitDataBuilder::new(user, now);
    if let Some(start_param) = request.start_param {
        builder = builder.start_param(start_param);
    }
    let init_data = builder.sign(config.bot_token.expose_secret());
    Ok(Json(json!({ "init_data": init_data })))
}
