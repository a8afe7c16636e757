//! Published vectors from init-data-golang (validate_test.go,
//! validate_third_party_test.go and README), copied verbatim.

use std::time::Duration;

use secrecy::SecretString;

use crate::{AuthError, DEFAULT_MAX_AGE, Validator, telegram_production_key, telegram_test_key};

/// validate_test.go: `validateTestInitData` / `validateTestToken`.
const V1_INIT_DATA: &str = "query_id=AAHdF6IQAAAAAN0XohDhrOrc&user=%7B%22id%22%3A279058397%2C%22first_name%22%3A%22Vladislav%22%2C%22last_name%22%3A%22Kibenko%22%2C%22username%22%3A%22vdkfrost%22%2C%22language_code%22%3A%22ru%22%2C%22is_premium%22%3Atrue%7D&auth_date=1662771648&hash=c501b71e775f74ce10e377dea85a7ea24ecd640b223ea86dfe453e0eaed2e2b2";
const V1_TOKEN: &str = "5768337691:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8";
const V1_AUTH_DATE: i64 = 1_662_771_648;

/// README "Validation" example: HMAC over data that carries `signature`.
const V2_INIT_DATA: &str = "user=%7B%22id%22%3A279058397%2C%22first_name%22%3A%22Vladislav%20%2B%20-%20%3F%20%5C%2F%22%2C%22last_name%22%3A%22Kibenko%22%2C%22username%22%3A%22vdkfrost%22%2C%22language_code%22%3A%22ru%22%2C%22is_premium%22%3Atrue%2C%22allows_write_to_pm%22%3Atrue%2C%22photo_url%22%3A%22https%3A%5C%2F%5C%2Ft.me%5C%2Fi%5C%2Fuserpic%5C%2F320%5C%2F4FPEE4tmP3ATHa57u6MqTDih13LTOiMoKoLDRG4PnSA.svg%22%7D&chat_instance=8134722200314281151&chat_type=private&auth_date=1733509682&signature=TYJxVcisqbWjtodPepiJ6ghziUL94-KNpG8Pau-X7oNNLNBM72APCpi_RKiUlBvcqo5L-LAxIc3dnTzcZX_PDg&hash=a433d8f9847bd6addcc563bff7cc82c89e97ea0d90c11fe5729cae6796a36d73";
const V2_TOKEN: &str = "7342037359:AAHI25ES9xCOMPokpYoz-p8XVrZUdygo2J4";
const V2_AUTH_DATE: i64 = 1_733_509_682;

/// validate_third_party_test.go: `_validateThirdPartyTestInitData`, verified
/// there with `ValidateThirdParty`, i.e. the production key.
const V3_INIT_DATA: &str = "user=%7B%22id%22%3A279058397%2C%22first_name%22%3A%22Vladislav%20%2B%20-%20%3F%20%5C%2F%22%2C%22last_name%22%3A%22Kibenko%22%2C%22username%22%3A%22vdkfrost%22%2C%22language_code%22%3A%22ru%22%2C%22is_premium%22%3Atrue%2C%22allows_write_to_pm%22%3Atrue%2C%22photo_url%22%3A%22https%3A%5C%2F%5C%2Ft.me%5C%2Fi%5C%2Fuserpic%5C%2F320%5C%2F4FPEE4tmP3ATHa57u6MqTDih13LTOiMoKoLDRG4PnSA.svg%22%7D&chat_instance=8134722200314281151&chat_type=private&auth_date=1733584787&hash=2174df5b000556d044f3f020384e879c8efcab55ddea2ced4eb752e93e7080d6&signature=zL-ucjNyREiHDE8aihFwpfR9aggP2xiAo3NSpfe-p7IbCisNlDKlo7Kb6G4D0Ao2mBrSgEk4maLSdv6MLIlADQ";
const V3_BOT_ID: i64 = 7_342_037_359;
const V3_AUTH_DATE: i64 = 1_733_584_787;

fn hmac(token: &str) -> Validator {
    Validator::hmac(&SecretString::from(token), DEFAULT_MAX_AGE)
}

#[test]
fn v1_hmac_valid_shortly_after_issue() {
    let data = hmac(V1_TOKEN)
        .validate(V1_INIT_DATA, V1_AUTH_DATE + 5)
        .unwrap();
    assert_eq!(data.auth_date, V1_AUTH_DATE);
    assert_eq!(data.query_id.as_deref(), Some("AAHdF6IQAAAAAN0XohDhrOrc"));
    assert_eq!(data.start_param, None);
    assert_eq!(data.user.id, 279_058_397);
    assert_eq!(data.user.first_name, "Vladislav");
    assert_eq!(data.user.last_name.as_deref(), Some("Kibenko"));
    assert_eq!(data.user.username.as_deref(), Some("vdkfrost"));
    assert_eq!(data.user.language_code.as_deref(), Some("ru"));
    assert!(data.user.is_premium);
}

#[test]
fn v1_hmac_expired_with_real_clock() {
    let v = hmac(V1_TOKEN);
    let err = v.validate_now(V1_INIT_DATA).unwrap_err();
    assert_eq!(err.code(), "expired", "{err}");
    // Exactly at the 24 h boundary it is still accepted; one second later not.
    let day = 24 * 60 * 60;
    assert!(v.validate(V1_INIT_DATA, V1_AUTH_DATE + day).is_ok());
    assert_eq!(
        v.validate(V1_INIT_DATA, V1_AUTH_DATE + day + 1),
        Err(AuthError::Expired {
            age_secs: day + 1,
            max_age_secs: day
        })
    );
}

#[test]
fn v1_appended_garbage_and_other_token_fail() {
    // Go test: validateTestInitData + "abc" -> ErrSignInvalid.
    let garbage = format!("{V1_INIT_DATA}abc");
    let err = hmac(V1_TOKEN).validate(&garbage, V1_AUTH_DATE).unwrap_err();
    assert_eq!(err, AuthError::MalformedHash);
    let err = hmac(V2_TOKEN)
        .validate(V1_INIT_DATA, V1_AUTH_DATE)
        .unwrap_err();
    assert_eq!(err, AuthError::InvalidHash);
}

#[test]
fn v2_hmac_keeps_signature_in_data_check_string() {
    let v = hmac(V2_TOKEN);
    let data = v.validate(V2_INIT_DATA, V2_AUTH_DATE + 1).unwrap();
    assert_eq!(data.user.id, 279_058_397);
    assert_eq!(data.user.first_name, "Vladislav + - ? /");
    assert!(data.user.allows_write_to_pm);
    assert_eq!(
        data.user.photo_url.as_deref(),
        Some("https://t.me/i/userpic/320/4FPEE4tmP3ATHa57u6MqTDih13LTOiMoKoLDRG4PnSA.svg")
    );
    assert_eq!(data.chat_type.as_deref(), Some("private"));
    assert_eq!(data.chat_instance.as_deref(), Some("8134722200314281151"));

    // Dropping `signature` changes the data-check-string: the hash no longer matches.
    let (before, after) = V2_INIT_DATA.split_once("&signature=").unwrap();
    let without_signature = format!("{before}&{}", after.split_once('&').unwrap().1);
    assert!(!without_signature.contains("signature"));
    assert_eq!(
        v.validate(&without_signature, V2_AUTH_DATE + 1),
        Err(AuthError::InvalidHash)
    );
    // Tampering with `signature` is caught by the HMAC as well.
    let tampered = V2_INIT_DATA.replace("signature=TYJx", "signature=AYJx");
    assert_eq!(
        v.validate(&tampered, V2_AUTH_DATE + 1),
        Err(AuthError::InvalidHash)
    );
}

#[test]
fn v3_ed25519_production_key_valid() {
    let v = Validator::ed25519(V3_BOT_ID, telegram_production_key(), DEFAULT_MAX_AGE);
    let data = v.validate(V3_INIT_DATA, V3_AUTH_DATE + 30).unwrap();
    assert_eq!(data.auth_date, V3_AUTH_DATE);
    assert_eq!(data.user.id, 279_058_397);
    assert_eq!(data.user.first_name, "Vladislav + - ? /");
    assert_eq!(data.chat_type.as_deref(), Some("private"));
    // Go test TestValidateThirdPartyExpired: too old with a real clock.
    assert_eq!(v.validate_now(V3_INIT_DATA).unwrap_err().code(), "expired");
}

#[test]
fn v3_ed25519_wrong_key_or_bot_fails() {
    let now = V3_AUTH_DATE + 30;
    let test_env = Validator::ed25519(V3_BOT_ID, telegram_test_key(), DEFAULT_MAX_AGE);
    assert_eq!(
        test_env.validate(V3_INIT_DATA, now),
        Err(AuthError::InvalidSignature)
    );
    let other_bot = Validator::ed25519(V3_BOT_ID + 1, telegram_production_key(), DEFAULT_MAX_AGE);
    assert_eq!(
        other_bot.validate(V3_INIT_DATA, now),
        Err(AuthError::InvalidSignature)
    );
    // Go test TestValidateThirdPartySignInvalid: appended "a" breaks it.
    let prod = Validator::ed25519(V3_BOT_ID, telegram_production_key(), DEFAULT_MAX_AGE);
    let err = prod.validate(&format!("{V3_INIT_DATA}a"), now).unwrap_err();
    assert!(
        matches!(
            err,
            AuthError::MalformedSignature | AuthError::InvalidSignature
        ),
        "{err:?}"
    );
    // `hash` is not covered by the signature, so changing it is harmless here.
    let rehashed = V3_INIT_DATA.replace("hash=2174df5b", "hash=0000df5b");
    assert!(prod.validate(&rehashed, now).is_ok());
    // The README's HMAC vector is real Telegram data, so its `signature`
    // verifies too (data-check-string without `hash` and `signature`).
    let data = prod.validate(V2_INIT_DATA, V2_AUTH_DATE).unwrap();
    assert_eq!(data.auth_date, V2_AUTH_DATE);
}

#[test]
fn v3_ed25519_tolerates_padding_and_needs_fresh_data() {
    let v = Validator::ed25519(
        V3_BOT_ID,
        telegram_production_key(),
        Duration::from_secs(60),
    );
    let padded = format!("{V3_INIT_DATA}%3D%3D");
    assert!(v.validate(&padded, V3_AUTH_DATE).is_ok());
    assert_eq!(
        v.validate(V3_INIT_DATA, V3_AUTH_DATE + 61)
            .unwrap_err()
            .code(),
        "expired"
    );
}
