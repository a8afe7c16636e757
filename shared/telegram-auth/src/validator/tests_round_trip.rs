//! Ed25519 forgeries, the Authorization header, and sign/validate round trips.

use std::time::Duration;

use ed25519_dalek::{Signer, SigningKey};

use super::tests_forgery::{HOUR, NOW, TOKEN, signed, validator};
use crate::parse::parse_query;
use crate::{AuthError, InitData, InitDataBuilder, Validator, WebAppUser, parse_authorization};

#[test]
fn bad_or_missing_ed25519_signature() {
    let sk = SigningKey::from_bytes(&[7; 32]);
    let v = Validator::ed25519(42, sk.verifying_key(), Duration::from_secs(HOUR as u64));
    let body = format!(
        "auth_date={NOW}&user={}",
        "%7B%22id%22%3A5000000000%2C%22first_name%22%3A%22Bo%22%7D"
    );
    let fields = parse_query(&body).unwrap();
    let message = crate::ed25519::signed_message(42, &fields);
    let sig = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        sk.sign(message.as_bytes()).to_bytes(),
    );

    let good = format!("{body}&signature={sig}&hash=ignored");
    assert_eq!(v.validate(&good, NOW).unwrap().user.id, 5_000_000_000);
    assert_eq!(v.validate(&body, NOW), Err(AuthError::MissingSignature));
    assert_eq!(
        v.validate(&format!("{body}&signature=%21%21"), NOW),
        Err(AuthError::MalformedSignature)
    );
    let flipped = if sig.starts_with('A') {
        sig.replacen('A', "B", 1)
    } else {
        format!("A{}", &sig[1..])
    };
    assert_eq!(
        v.validate(&format!("{body}&signature={flipped}"), NOW),
        Err(AuthError::InvalidSignature)
    );
    let tampered = good.replacen("first_name%22%3A%22Bo", "first_name%22%3A%22Bob", 1);
    assert_eq!(v.validate(&tampered, NOW), Err(AuthError::InvalidSignature));
    // Signed by someone else's key.
    let other = SigningKey::from_bytes(&[8; 32])
        .sign(message.as_bytes())
        .to_bytes();
    let other = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, other);
    assert_eq!(
        v.validate(&format!("{body}&signature={other}"), NOW),
        Err(AuthError::InvalidSignature)
    );
    // HMAC-signed data is not acceptable in Ed25519 mode.
    assert_eq!(
        v.validate(&signed(NOW), NOW),
        Err(AuthError::MissingSignature)
    );
}

#[test]
fn malformed_authorization_header() {
    let full = signed(NOW);
    let header = format!("tma {full}");
    let init_data = parse_authorization(&header).unwrap();
    assert!(validator().validate(init_data, NOW).is_ok());
    assert_eq!(
        parse_authorization(""),
        Err(AuthError::MissingAuthorization)
    );
    for header in [
        format!("Bearer {full}"),
        full.clone(),
        "tma".to_owned(),
        format!("tma {full} extra"),
    ] {
        assert_eq!(
            parse_authorization(&header),
            Err(AuthError::MalformedAuthorization)
        );
    }
}

#[test]
fn round_trip_big_id_unicode_and_start_param() {
    let user = WebAppUser {
        id: 9_007_199_254_740_993, // > 2^53: must survive JSON without float rounding
        first_name: "Владислав 🚀 \"Q\" \\ / + & = ? # %".into(),
        last_name: Some("Müller-Łukasz 李".into()),
        username: Some("v_123".into()),
        language_code: Some("uk".into()),
        is_premium: true,
        is_bot: false,
        photo_url: Some("https://t.me/i/userpic/320/a.svg?x=1&y=2".into()),
        allows_write_to_pm: true,
    };
    let init_data = InitDataBuilder::new(user.clone(), NOW)
        .start_param("ref-AbC_9")
        .query_id("AAHdF6IQAAAAAN0XohDhrOrc")
        .chat_type("private")
        .chat_instance("-8134722200314281151")
        .sign(TOKEN);
    assert!(
        !init_data.contains(' ') && !init_data.contains('+'),
        "{init_data}"
    );
    let data = validator()
        .validate(
            parse_authorization(&format!("tma {init_data}")).unwrap(),
            NOW + 5,
        )
        .unwrap();
    assert_eq!(
        data,
        InitData {
            user,
            auth_date: NOW,
            start_param: Some("ref-AbC_9".into()),
            query_id: Some("AAHdF6IQAAAAAN0XohDhrOrc".into()),
            chat_type: Some("private".into()),
            chat_instance: Some("-8134722200314281151".into()),
        }
    );
    assert!(data.user.id > i64::from(u32::MAX));
}

#[test]
fn validator_debug_redacts_secret() {
    let text = format!("{:?}", validator());
    assert!(
        text.contains("REDACTED") && !text.contains("AAFake"),
        "{text}"
    );
}
