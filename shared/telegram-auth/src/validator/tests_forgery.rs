//! One test per HMAC-mode forgery class (shared helpers live here too).

use std::time::Duration;

use secrecy::SecretString;

use crate::sign::sign_pairs;
use crate::{AuthError, InitDataBuilder, Validator, WebAppUser};

pub(super) const TOKEN: &str = "123456789:AAFakeTokenForTests-only_abcdefghij";
const OTHER_TOKEN: &str = "987654321:AAAnotherBotToken-xyz_0123456789";
pub(super) const NOW: i64 = 1_750_000_000;
pub(super) const HOUR: i64 = 3600;

pub(super) fn validator() -> Validator {
    Validator::hmac(&SecretString::from(TOKEN), Duration::from_secs(HOUR as u64))
}

fn user() -> WebAppUser {
    WebAppUser {
        id: 7_342_037_359,
        first_name: "Ana".into(),
        last_name: None,
        username: Some("ana".into()),
        language_code: Some("pt-br".into()),
        is_premium: false,
        is_bot: false,
        photo_url: None,
        allows_write_to_pm: true,
    }
}

pub(super) fn signed(auth_date: i64) -> String {
    InitDataBuilder::new(user(), auth_date)
        .start_param("promo_1")
        .sign(TOKEN)
}

/// Validates with the HMAC validator and checks the error never leaks the token.
fn reject(init_data: &str, now: i64) -> AuthError {
    let err = validator().validate(init_data, now).unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains(TOKEN) && !text.contains("AAFakeToken"),
        "{text}"
    );
    err
}

fn user_json(id: &str) -> String {
    format!(r#"{{"id":{id},"first_name":"Ana"}}"#)
}

#[test]
fn baseline_is_accepted() {
    let data = validator().validate(&signed(NOW), NOW).unwrap();
    assert_eq!(data.user, user());
    assert_eq!(data.start_param.as_deref(), Some("promo_1"));
}

#[test]
fn missing_hash() {
    let full = signed(NOW);
    let (without, _) = full.split_once("&hash=").unwrap();
    assert_eq!(reject(without, NOW), AuthError::MissingHash);
    assert_eq!(reject("", NOW), AuthError::MissingHash);
}

#[test]
fn wrong_hash() {
    let full = signed(NOW);
    let (body, hash) = full.split_once("&hash=").unwrap();
    let flipped: String = hash
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 10 {
                if c == '0' { '1' } else { '0' }
            } else {
                c
            }
        })
        .collect();
    assert_eq!(
        reject(&format!("{body}&hash={flipped}"), NOW),
        AuthError::InvalidHash
    );
    let zeros = "0".repeat(64);
    assert_eq!(
        reject(&format!("{body}&hash={zeros}"), NOW),
        AuthError::InvalidHash
    );
    assert_eq!(
        reject(&format!("{body}&hash=xyz"), NOW),
        AuthError::MalformedHash
    );
    assert_eq!(
        reject(&format!("{body}&hash={hash}0"), NOW),
        AuthError::MalformedHash
    );
}

#[test]
fn another_bots_token() {
    let forged = InitDataBuilder::new(user(), NOW).sign(OTHER_TOKEN);
    assert_eq!(reject(&forged, NOW), AuthError::InvalidHash);
}

#[test]
fn stale_auth_date() {
    assert!(validator().validate(&signed(NOW - HOUR), NOW).is_ok());
    let err = reject(&signed(NOW - HOUR - 1), NOW);
    assert_eq!(
        err,
        AuthError::Expired {
            age_secs: HOUR + 1,
            max_age_secs: HOUR
        }
    );
    assert_eq!(err.code(), "expired");
}

#[test]
fn future_auth_date() {
    assert!(validator().validate(&signed(NOW + 60), NOW).is_ok());
    let err = reject(&signed(NOW + 61), NOW);
    assert_eq!(
        err,
        AuthError::AuthDateInFuture {
            ahead_secs: 61,
            skew_secs: 60
        }
    );
    let strict = validator().with_clock_skew(Duration::ZERO);
    assert!(strict.validate(&signed(NOW), NOW).is_ok());
    assert_eq!(
        strict.validate(&signed(NOW + 1), NOW).unwrap_err().code(),
        "auth_date_in_future"
    );
}

#[test]
fn missing_or_non_numeric_auth_date() {
    let user = user_json("42");
    let missing = sign_pairs(&[("user", &user)], TOKEN);
    assert_eq!(reject(&missing, NOW), AuthError::MissingAuthDate);
    for bad in [
        "",
        "abc",
        "1750000000.5",
        "-1750000000",
        "+1750000000",
        " 1750000000",
        "0",
        "1e9",
        "99999999999999999999",
    ] {
        let q = sign_pairs(&[("auth_date", bad), ("user", &user)], TOKEN);
        assert_eq!(reject(&q, NOW), AuthError::MalformedAuthDate, "{bad:?}");
    }
}

#[test]
fn unparsable_or_invalid_user() {
    let now = NOW.to_string();
    let check = |user: &str| {
        reject(
            &sign_pairs(&[("auth_date", &now), ("user", user)], TOKEN),
            NOW,
        )
    };
    for bad in [
        "{not json",
        "",
        "null",
        "[]",
        r#"{"first_name":"Ana"}"#,
        r#"{"id":"42","first_name":"Ana"}"#,
        r#"{"id":42}"#,
        r#"{"id":1.5,"first_name":"Ana"}"#,
        r#"{"id":99999999999999999999,"first_name":"Ana"}"#,
    ] {
        assert_eq!(check(bad), AuthError::MalformedUser, "{bad}");
    }
    assert_eq!(check(&user_json("0")), AuthError::InvalidUserId);
    assert_eq!(check(&user_json("-5")), AuthError::InvalidUserId);
    assert!(
        validator()
            .validate(
                &sign_pairs(&[("auth_date", &now), ("user", &user_json("42"))], TOKEN),
                NOW
            )
            .is_ok()
    );
}

#[test]
fn missing_user() {
    let q = sign_pairs(&[("auth_date", &NOW.to_string()), ("query_id", "q")], TOKEN);
    assert_eq!(reject(&q, NOW), AuthError::MissingUser);
}

#[test]
fn duplicate_keys() {
    let full = signed(NOW);
    let evil_user = "%7B%22id%22%3A1%2C%22first_name%22%3A%22Eve%22%7D";
    let hash = full.rsplit_once("&hash=").unwrap().1;
    for forged in [
        format!("{full}&user={evil_user}"),
        format!("user={evil_user}&{full}"),
        format!("{full}&auth_date={NOW}"),
        format!("{full}&hash={hash}"),
        format!("{full}&start_param=promo_1"),
    ] {
        let err = reject(&forged, NOW);
        assert_eq!(err.code(), "duplicate_key", "{forged}");
    }
}

#[test]
fn tampered_fields_after_signing() {
    let full = signed(NOW);
    for (from, to) in [
        ("start_param=promo_1", "start_param=promo_2"),
        ("%22id%22%3A7342037359", "%22id%22%3A7342037358"),
        (
            &format!("auth_date={NOW}") as &str,
            &format!("auth_date={}", NOW + 1),
        ),
        ("%22ana%22", "%22eve%22"),
    ] {
        assert!(full.contains(from), "{from} not in {full}");
        let forged = full.replacen(from, to, 1);
        assert_eq!(reject(&forged, NOW), AuthError::InvalidHash, "{from}");
    }
    let added = full.replacen("&hash=", "&query_id=x&hash=", 1);
    assert_eq!(reject(&added, NOW), AuthError::InvalidHash);
}
