//! HMAC-mode signing of initData for development, tests and load generation.
//!
//! Produces exactly what a Telegram client would send for a bot whose token
//! you hold: URL-encoded `key=value` pairs including the `user` JSON,
//! `auth_date` and the `hash`. Never needed in production request handling.

use crate::WebAppUser;
use crate::hmac::{compute, keyed_mac};

/// Signs initData in HMAC mode for development, tests and load generation.
///
/// ```
/// use surge_telegram_auth::{InitDataBuilder, Validator, WebAppUser};
/// use secrecy::SecretString;
/// use std::time::Duration;
///
/// let user = WebAppUser {
///     id: 5_000_000_000, first_name: "Zoë".into(), last_name: None, username: None,
///     language_code: Some("en".into()), is_premium: false, is_bot: false,
///     photo_url: None, allows_write_to_pm: true,
/// };
/// let token = "123456:TEST-token";
/// let init_data = InitDataBuilder::new(user, 1_700_000_000).start_param("ref_42").sign(token);
/// let v = Validator::hmac(&SecretString::from(token), Duration::from_secs(3600));
/// let data = v.validate(&init_data, 1_700_000_010).unwrap();
/// assert_eq!(data.user.id, 5_000_000_000);
/// assert_eq!(data.start_param.as_deref(), Some("ref_42"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct InitDataBuilder {
    user: WebAppUser,
    auth_date: i64,
    start_param: Option<String>,
    query_id: Option<String>,
    chat_type: Option<String>,
    chat_instance: Option<String>,
}

impl InitDataBuilder {
    /// initData for `user`, issued at Unix time `auth_date` (seconds).
    pub fn new(user: WebAppUser, auth_date: i64) -> Self {
        Self {
            user,
            auth_date,
            start_param: None,
            query_id: None,
            chat_type: None,
            chat_instance: None,
        }
    }

    /// Sets `start_param` (the `startapp` deep-link parameter).
    pub fn start_param(mut self, start_param: impl Into<String>) -> Self {
        self.start_param = Some(start_param.into());
        self
    }

    /// Sets `query_id`.
    pub fn query_id(mut self, query_id: impl Into<String>) -> Self {
        self.query_id = Some(query_id.into());
        self
    }

    /// Sets `chat_type` (`private`, `group`, `supergroup`, `channel`, `sender`).
    pub fn chat_type(mut self, chat_type: impl Into<String>) -> Self {
        self.chat_type = Some(chat_type.into());
        self
    }

    /// Sets `chat_instance`.
    pub fn chat_instance(mut self, chat_instance: impl Into<String>) -> Self {
        self.chat_instance = Some(chat_instance.into());
        self
    }

    /// The signed, URL-encoded initData query string for the bot owning
    /// `bot_token` (pass it after `tma ` in an `Authorization` header).
    #[must_use]
    pub fn sign(&self, bot_token: &str) -> String {
        let user = serde_json::to_string(&self.user).expect("WebAppUser always serializes");
        let auth_date = self.auth_date.to_string();
        let mut pairs: Vec<(&str, &str)> = vec![("auth_date", &auth_date), ("user", &user)];
        let optional = [
            ("chat_instance", &self.chat_instance),
            ("chat_type", &self.chat_type),
            ("query_id", &self.query_id),
            ("start_param", &self.start_param),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                pairs.push((key, value));
            }
        }
        sign_pairs(&pairs, bot_token)
    }
}

/// Signs arbitrary (decoded) pairs: appends `hash` computed over all given
/// pairs. Order of `pairs` is kept in the output; duplicates are not checked.
pub(crate) fn sign_pairs(pairs: &[(&str, &str)], bot_token: &str) -> String {
    let mut sorted = pairs.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let data_check_string = sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("\n");
    let hash = hex::encode(compute(
        &keyed_mac(bot_token.as_bytes()),
        &data_check_string,
    ));
    let mut out = String::new();
    for (k, v) in pairs.iter().chain([&("hash", hash.as_str())]) {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&encode(k));
        out.push('=');
        out.push_str(&encode(v));
    }
    out
}

/// Percent-encodes like `encodeURIComponent` does for these values: spaces
/// become `%20` (not `+`) so that naive decoders agree too.
fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::{encode, sign_pairs};

    #[test]
    fn encoding_is_unambiguous() {
        assert_eq!(encode("a b+c&d=e%f"), "a%20b%2Bc%26d%3De%25f");
        assert_eq!(encode("{\"x\":\"Ж\"}"), "%7B%22x%22%3A%22%D0%96%22%7D");
    }

    #[test]
    fn sign_pairs_reproduces_published_hash() {
        // init-data-golang's validate_test.go vector, re-signed from its decoded pairs.
        let user = r#"{"id":279058397,"first_name":"Vladislav","last_name":"Kibenko","username":"vdkfrost","language_code":"ru","is_premium":true}"#;
        let out = sign_pairs(
            &[
                ("query_id", "AAHdF6IQAAAAAN0XohDhrOrc"),
                ("user", user),
                ("auth_date", "1662771648"),
            ],
            "5768337691:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8",
        );
        assert!(
            out.ends_with("&hash=c501b71e775f74ce10e377dea85a7ea24ecd640b223ea86dfe453e0eaed2e2b2"),
            "{out}"
        );
        assert!(out.starts_with("query_id=AAHdF6IQAAAAAN0XohDhrOrc&user=%7B%22id%22%3A279058397"));
    }
}
