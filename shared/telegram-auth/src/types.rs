//! The validated initData and the Telegram user it describes.

use serde::{Deserialize, Serialize};

/// The fields of a validated initData that the backend uses.
///
/// Only produced by [`crate::Validator`] after the hash or signature, the
/// freshness of `auth_date` and the `user` object have all been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitData {
    /// The user who opened the Mini App.
    pub user: WebAppUser,
    /// Unix time (seconds) at which Telegram issued the initData.
    pub auth_date: i64,
    /// The `startapp` / `start_param` deep-link parameter, if any.
    pub start_param: Option<String>,
    /// Query id for `answerWebAppQuery`, if any.
    pub query_id: Option<String>,
    /// Type of the chat the app was opened from (`private`, `group`, ...).
    pub chat_type: Option<String>,
    /// Global identifier of the chat the app was opened from.
    pub chat_instance: Option<String>,
}

/// A Telegram user as described in initData's `user` JSON.
///
/// Unknown JSON fields are ignored, since Telegram keeps adding fields.
/// `id` is 64-bit: Telegram user ids exceed 32 bits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebAppUser {
    /// Telegram user id (always positive for accepted data).
    pub id: i64,
    /// First name.
    pub first_name: String,
    /// Last name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Username without `@`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// IETF language tag of the user's client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_code: Option<String>,
    /// Whether the user has Telegram Premium.
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_premium: bool,
    /// Whether the user is a bot.
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_bot: bool,
    /// URL of the user's profile photo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo_url: Option<String>,
    /// Whether the user allowed the bot to message them.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allows_write_to_pm: bool,
}

// serde's `skip_serializing_if` passes a reference.
fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use super::WebAppUser;

    #[test]
    fn user_json_ignores_unknown_fields_and_keeps_big_ids() {
        let json = r#"{"id":7342037359,"first_name":"Ana","added_to_attachment_menu":true,"is_premium":true,"future":{"x":1}}"#;
        let u: WebAppUser = serde_json::from_str(json).unwrap();
        assert_eq!(u.id, 7_342_037_359);
        assert!(u.is_premium && !u.is_bot && !u.allows_write_to_pm);
        assert_eq!(u.last_name, None);
    }

    #[test]
    fn user_json_round_trips_compactly() {
        let u = WebAppUser {
            id: 1,
            first_name: "A".into(),
            last_name: None,
            username: Some("a".into()),
            language_code: None,
            is_premium: false,
            is_bot: false,
            photo_url: None,
            allows_write_to_pm: true,
        };
        let json = serde_json::to_string(&u).unwrap();
        assert_eq!(
            json,
            r#"{"id":1,"first_name":"A","username":"a","allows_write_to_pm":true}"#
        );
        assert_eq!(serde_json::from_str::<WebAppUser>(&json).unwrap(), u);
    }
}
