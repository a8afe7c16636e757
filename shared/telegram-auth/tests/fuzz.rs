//! Property-based fuzzing of the initData check: arbitrary headers and query strings never panic
//! and are either accepted or refused with an error code, and whatever a Telegram client could
//! sign (any Unicode in any field) validates back to exactly what was signed, or is refused for
//! a field longer than Telegram sends. `PROPTEST_CASES=100000 cargo test -p surge-telegram-auth
//! --test fuzz` runs longer (the default is proptest's 256 cases per property).

use proptest::prelude::*;
use secrecy::SecretString;
use surge_telegram_auth::{AuthError, InitDataBuilder, Validator, WebAppUser, parse_authorization};

const TOKEN: &str = "7000000042:AAfuzz-token";
const NOW: i64 = 1_800_000_000;

fn validator() -> Validator {
    Validator::hmac(
        &SecretString::from(TOKEN),
        std::time::Duration::from_secs(3600),
    )
}

/// Pieces a hostile query string is made of: separators, escapes (valid, broken, non-UTF-8),
/// the keys the validator reads, JSON fragments and any Unicode.
fn query_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("&".to_owned()),
        Just("=".to_owned()),
        Just("+".to_owned()),
        Just("%".to_owned()),
        "%[0-9A-Fa-f]{2}",
        "%[0-9A-Za-z]{0,2}",
        Just("user=".to_owned()),
        Just("hash=".to_owned()),
        Just("auth_date=".to_owned()),
        Just("signature=".to_owned()),
        Just("%7B%22id%22%3A".to_owned()),
        "[0-9]{1,20}",
        "[a-f0-9]{64}",
        any::<String>(),
    ]
}

fn user() -> impl Strategy<Value = WebAppUser> {
    let text = || any::<String>();
    let opt = || proptest::option::of(any::<String>());
    (
        1..i64::MAX,
        text(),
        (opt(), opt(), opt(), opt()),
        any::<[bool; 3]>(),
    )
        .prop_map(
            |(id, first_name, (last_name, username, language_code, photo_url), flags)| WebAppUser {
                id,
                first_name,
                last_name,
                username,
                language_code,
                is_premium: flags[0],
                is_bot: flags[1],
                photo_url,
                allows_write_to_pm: flags[2],
            },
        )
}

proptest! {
    #[test]
    fn arbitrary_headers_never_panic(header in any::<String>()) {
        if let Ok(init_data) = parse_authorization(&header) {
            let _ = validator().validate(init_data, NOW);
        }
    }

    #[test]
    fn arbitrary_query_strings_are_accepted_or_refused_with_a_code(
        pieces in proptest::collection::vec(query_piece(), 0..24),
    ) {
        let query = pieces.concat();
        match validator().validate(&query, NOW) {
            Ok(data) => prop_assert!(data.user.id > 0),
            Err(error) => prop_assert!(!error.code().is_empty()),
        }
    }

    #[test]
    fn whatever_telegram_signs_validates_back_to_it(
        user in user(),
        start_param in proptest::option::of(any::<String>()),
        chat_type in proptest::option::of(any::<String>()),
    ) {
        let mut builder = InitDataBuilder::new(user.clone(), NOW);
        if let Some(p) = &start_param {
            builder = builder.start_param(p.clone());
        }
        if let Some(t) = &chat_type {
            builder = builder.chat_type(t.clone());
        }
        match validator().validate(&builder.sign(TOKEN), NOW) {
            Ok(data) => {
                prop_assert_eq!(data.user, user);
                prop_assert_eq!(data.start_param, start_param);
                prop_assert_eq!(data.chat_type, chat_type);
            }
            Err(AuthError::FieldTooLong { .. }) => {}
            Err(error) => prop_assert!(false, "signed data refused: {error:?}"),
        }
    }
}
