//! Length bounds of initData's fields, at the limits Telegram itself documents and keeps (a name
//! of 64 characters, a username of 32, a `startapp` parameter of 512). Telegram signed them, but
//! a leaked bot token or a buggy client must not make a backend store or show whatever it is
//! given; the fields' content rules are the event contract's (`surge_schemas::rules`).

use crate::{AuthError, InitData, WebAppUser};

/// Each field and its most characters.
const FIRST_NAME: usize = 64;
const LAST_NAME: usize = 64;
const USERNAME: usize = 32;
const LANGUAGE_CODE: usize = 35;
const PHOTO_URL: usize = 512;
const START_PARAM: usize = 512;
const QUERY_ID: usize = 128;
const CHAT_TYPE: usize = 32;
const CHAT_INSTANCE: usize = 64;

/// Refuses a field longer than Telegram sends.
pub(crate) fn check(data: &InitData) -> Result<(), AuthError> {
    let InitData {
        user,
        auth_date: _,
        start_param,
        query_id,
        chat_type,
        chat_instance,
    } = data;
    let WebAppUser {
        id: _,
        first_name,
        last_name,
        username,
        language_code,
        is_premium: _,
        is_bot: _,
        photo_url,
        allows_write_to_pm: _,
    } = user;
    bound("user.first_name", Some(first_name), FIRST_NAME)?;
    bound("user.last_name", last_name.as_ref(), LAST_NAME)?;
    bound("user.username", username.as_ref(), USERNAME)?;
    bound("user.language_code", language_code.as_ref(), LANGUAGE_CODE)?;
    bound("user.photo_url", photo_url.as_ref(), PHOTO_URL)?;
    bound("start_param", start_param.as_ref(), START_PARAM)?;
    bound("query_id", query_id.as_ref(), QUERY_ID)?;
    bound("chat_type", chat_type.as_ref(), CHAT_TYPE)?;
    bound("chat_instance", chat_instance.as_ref(), CHAT_INSTANCE)
}

fn bound(field: &'static str, value: Option<&String>, max_chars: usize) -> Result<(), AuthError> {
    match value {
        Some(v) if v.chars().count() > max_chars => {
            Err(AuthError::FieldTooLong { field, max_chars })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> InitData {
        InitData {
            user: WebAppUser {
                id: 1,
                first_name: "я".repeat(FIRST_NAME),
                last_name: None,
                username: Some("u".repeat(USERNAME)),
                language_code: Some("en".into()),
                is_premium: false,
                is_bot: false,
                photo_url: None,
                allows_write_to_pm: false,
            },
            auth_date: 1,
            start_param: Some("s".repeat(START_PARAM)),
            query_id: None,
            chat_type: None,
            chat_instance: None,
        }
    }

    type Spoil = fn(&mut InitData);

    #[test]
    fn fields_at_telegrams_limits_pass_and_one_more_character_does_not() {
        assert_eq!(check(&data()), Ok(()));
        let spoilers: [(Spoil, &str); 4] = [
            (|d| d.user.first_name.push('я'), "user.first_name"),
            (
                |d| d.user.username = Some("u".repeat(USERNAME + 1)),
                "user.username",
            ),
            (
                |d| d.start_param = Some("s".repeat(START_PARAM + 1)),
                "start_param",
            ),
            (
                |d| d.chat_instance = Some("1".repeat(CHAT_INSTANCE + 1)),
                "chat_instance",
            ),
        ];
        for (spoil, field) in spoilers {
            let mut d = data();
            spoil(&mut d);
            let err = check(&d).unwrap_err();
            assert!(
                matches!(err, AuthError::FieldTooLong { field: f, .. } if f == field),
                "{err:?}"
            );
            assert_eq!(err.code(), "init_data_field_too_long");
        }
    }
}
