//! Ed25519 ("third-party") mode: anyone who knows the bot id can verify
//! initData signed by Telegram, without the bot token.
//!
//! The data-check-string is `"<bot_id>:WebAppData\n"` followed by every field
//! except `hash` and `signature`, sorted by key, as `key=value` lines. The
//! `signature` field is the base64url (unpadded; padding tolerated) Ed25519
//! signature of it under Telegram's public key.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, VerifyingKey};

use crate::AuthError;
use crate::parse::Fields;

/// Telegram's production-environment Ed25519 public key, hex-encoded.
pub const TELEGRAM_PRODUCTION_PUBLIC_KEY_HEX: &str =
    "e7bf03a2fa4602af4580703d88dda5bb59f32ed8b02a56c187fe7d34caed242d";
/// Telegram's test-environment Ed25519 public key, hex-encoded.
pub const TELEGRAM_TEST_PUBLIC_KEY_HEX: &str =
    "40055058a4ee38156a06562e52eece92a771bcd8346a8c4615cb7376eddf72ec";

/// Telegram's production-environment Ed25519 public key bytes.
pub const TELEGRAM_PRODUCTION_PUBLIC_KEY: [u8; 32] = [
    0xe7, 0xbf, 0x03, 0xa2, 0xfa, 0x46, 0x02, 0xaf, 0x45, 0x80, 0x70, 0x3d, 0x88, 0xdd, 0xa5, 0xbb,
    0x59, 0xf3, 0x2e, 0xd8, 0xb0, 0x2a, 0x56, 0xc1, 0x87, 0xfe, 0x7d, 0x34, 0xca, 0xed, 0x24, 0x2d,
];
/// Telegram's test-environment Ed25519 public key bytes.
pub const TELEGRAM_TEST_PUBLIC_KEY: [u8; 32] = [
    0x40, 0x05, 0x50, 0x58, 0xa4, 0xee, 0x38, 0x15, 0x6a, 0x06, 0x56, 0x2e, 0x52, 0xee, 0xce, 0x92,
    0xa7, 0x71, 0xbc, 0xd8, 0x34, 0x6a, 0x8c, 0x46, 0x15, 0xcb, 0x73, 0x76, 0xed, 0xdf, 0x72, 0xec,
];

/// Telegram's production-environment public key, ready for [`crate::Validator::ed25519`].
pub fn telegram_production_key() -> VerifyingKey {
    VerifyingKey::from_bytes(&TELEGRAM_PRODUCTION_PUBLIC_KEY)
        .expect("Telegram's production key is a valid Ed25519 point")
}

/// Telegram's test-environment public key, ready for [`crate::Validator::ed25519`].
pub fn telegram_test_key() -> VerifyingKey {
    VerifyingKey::from_bytes(&TELEGRAM_TEST_PUBLIC_KEY)
        .expect("Telegram's test key is a valid Ed25519 point")
}

/// Fields excluded from the Ed25519 data-check-string.
const EXCLUDED: &[&str] = &["hash", "signature"];

/// The exact message Telegram signs for `bot_id`.
pub(crate) fn signed_message(bot_id: i64, fields: &Fields) -> String {
    let mut message = format!("{bot_id}:WebAppData\n");
    message.push_str(&fields.data_check_string(EXCLUDED));
    message
}

/// Checks the `signature` field of `fields` against `key` for `bot_id`.
pub(crate) fn verify(bot_id: i64, key: &VerifyingKey, fields: &Fields) -> Result<(), AuthError> {
    let encoded = fields.get("signature").ok_or(AuthError::MissingSignature)?;
    let unpadded = encoded.strip_suffix("==").unwrap_or(encoded);
    let unpadded = unpadded.strip_suffix('=').unwrap_or(unpadded);
    let bytes = URL_SAFE_NO_PAD
        .decode(unpadded)
        .map_err(|_| AuthError::MalformedSignature)?;
    let signature = Signature::from_slice(&bytes).map_err(|_| AuthError::MalformedSignature)?;
    key.verify_strict(signed_message(bot_id, fields).as_bytes(), &signature)
        .map_err(|_| AuthError::InvalidSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_query;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn key_constants_agree() {
        assert_eq!(
            hex::encode(TELEGRAM_PRODUCTION_PUBLIC_KEY),
            TELEGRAM_PRODUCTION_PUBLIC_KEY_HEX
        );
        assert_eq!(
            hex::encode(TELEGRAM_TEST_PUBLIC_KEY),
            TELEGRAM_TEST_PUBLIC_KEY_HEX
        );
        assert_eq!(
            telegram_production_key().to_bytes(),
            TELEGRAM_PRODUCTION_PUBLIC_KEY
        );
        assert_eq!(telegram_test_key().to_bytes(), TELEGRAM_TEST_PUBLIC_KEY);
    }

    #[test]
    fn message_excludes_hash_and_signature() {
        let f = parse_query("user=u&hash=h&signature=s&auth_date=1").unwrap();
        assert_eq!(signed_message(42, &f), "42:WebAppData\nauth_date=1\nuser=u");
    }

    #[test]
    fn signature_padding_is_tolerated_and_garbage_rejected() {
        let sk = SigningKey::from_bytes(&[9; 32]);
        let base = parse_query("auth_date=1&user=u").unwrap();
        let sig = sk.sign(signed_message(5, &base).as_bytes()).to_bytes();
        let b64 = URL_SAFE_NO_PAD.encode(sig);
        let check = |s: &str| {
            let f = parse_query(&format!("auth_date=1&user=u&signature={s}")).unwrap();
            verify(5, &sk.verifying_key(), &f)
        };
        assert_eq!(check(&b64), Ok(()));
        assert_eq!(check(&format!("{b64}%3D%3D")), Ok(()));
        assert_eq!(check(&b64[..40]), Err(AuthError::MalformedSignature));
        assert_eq!(check("not*base64"), Err(AuthError::MalformedSignature));
        assert_eq!(check(""), Err(AuthError::MalformedSignature));
        // Right signature, wrong bot id.
        let f = parse_query(&format!("auth_date=1&user=u&signature={b64}")).unwrap();
        assert_eq!(
            verify(6, &sk.verifying_key(), &f),
            Err(AuthError::InvalidSignature)
        );
        assert_eq!(
            verify(5, &sk.verifying_key(), &base),
            Err(AuthError::MissingSignature)
        );
    }
}
