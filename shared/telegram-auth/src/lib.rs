//! Validation and signing of Telegram Mini App `initData`.
//!
//! A Mini App authenticates each request with
//! `Authorization: tma <initData>`, where initData is the raw
//! `window.Telegram.WebApp.initData` query string. This crate checks it
//! exactly as Telegram documents
//! (<https://core.telegram.org/bots/webapps#validating-data-received-via-the-mini-app>):
//!
//! * **HMAC mode** ([`Validator::hmac`]), for the bot's own backend:
//!   `secret_key = HMAC-SHA256("WebAppData", bot_token)`, and `hash` must
//!   equal `hex(HMAC-SHA256(secret_key, data_check_string))` where the
//!   data-check-string is all fields except `hash` (including `signature`),
//!   sorted by key, as `key=value` lines joined by `\n`. Compared in
//!   constant time.
//! * **Ed25519 mode** ([`Validator::ed25519`]), for third parties holding
//!   only the bot id: `signature` (base64url) must be Telegram's Ed25519
//!   signature of `"<bot_id>:WebAppData\n"` + the fields except `hash` and
//!   `signature`. Keys: [`telegram_production_key`], [`telegram_test_key`].
//!
//! Both modes then require a decimal `auth_date` no older than the
//! configured maximum age (default [`DEFAULT_MAX_AGE`], 24 h) and at most
//! [`DEFAULT_CLOCK_SKEW`] (60 s, configurable) in the future, and a `user`
//! JSON object with a positive 64-bit `id`, and fields no longer than Telegram sends (a name of
//! 64 characters, a `start_param` of 512). Repeated keys are rejected.
//!
//! Every failure is an [`AuthError`] with a stable [`AuthError::code`]; all
//! are "401 Unauthorized" for an HTTP caller. Messages never contain the bot
//! token. [`InitDataBuilder`] signs initData for development and load tests.
//!
//! ```
//! use surge_telegram_auth::{parse_authorization, Validator, DEFAULT_MAX_AGE};
//! use secrecy::SecretString;
//!
//! let validator = Validator::hmac(
//!     &SecretString::from("5768337691:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8"),
//!     DEFAULT_MAX_AGE,
//! );
//! let header = "tma query_id=AAHdF6IQAAAAAN0XohDhrOrc&user=%7B%22id%22%3A279058397%2C%22first_name%22%3A%22Vladislav%22%2C%22last_name%22%3A%22Kibenko%22%2C%22username%22%3A%22vdkfrost%22%2C%22language_code%22%3A%22ru%22%2C%22is_premium%22%3Atrue%7D&auth_date=1662771648&hash=c501b71e775f74ce10e377dea85a7ea24ecd640b223ea86dfe453e0eaed2e2b2";
//! let init_data = parse_authorization(header).unwrap();
//! let data = validator.validate(init_data, 1_662_771_700).unwrap();
//! assert_eq!(data.user.id, 279_058_397);
//! // The same data a year later:
//! let err = validator.validate(init_data, 1_694_307_648).unwrap_err();
//! assert_eq!(err.code(), "expired");
//! ```

mod ed25519;
mod error;
mod header;
mod hmac;
mod limits;
mod parse;
mod sign;
mod types;
mod validator;

pub use ed25519::{
    TELEGRAM_PRODUCTION_PUBLIC_KEY, TELEGRAM_PRODUCTION_PUBLIC_KEY_HEX, TELEGRAM_TEST_PUBLIC_KEY,
    TELEGRAM_TEST_PUBLIC_KEY_HEX, telegram_production_key, telegram_test_key,
};
pub use error::AuthError;
pub use header::{SCHEME, parse_authorization};
pub use sign::InitDataBuilder;
pub use types::{InitData, WebAppUser};
pub use validator::{DEFAULT_CLOCK_SKEW, DEFAULT_MAX_AGE, Validator};
