//! The invoice payload: what Telegram hands back in the pre-checkout query, the successful
//! payment and the refund. It names the purchase (its id, the buyer, the item and the coins the
//! invoice grants) and carries a MAC under a key only the server has, so a client can neither
//! forge one nor make another user's invoice pass as theirs.
//!
//! `p1.<user id>.<item id>.<coins>.<purchase id>.<mac>`: the purchase id is its 16 bytes and the
//! MAC 16 bytes of HMAC-SHA256, both unpadded base64url. At most 3 + 20 + 32 + 10 + 22 + 22 + 5
//! = 114 bytes, within Telegram's 128.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

const VERSION: &str = "p1";
const MAC_BYTES: usize = 16;

/// Telegram's bound on a payload.
pub const MAX_PAYLOAD_BYTES: usize = 128;

/// The key payloads are sealed with, derived from the bot token.
#[derive(Clone)]
pub struct PayloadKey([u8; 32]);

impl PayloadKey {
    /// Derived from the bot token with a label of its own, so it equals no other key Surge uses.
    pub fn from_bot_token(bot_token: &str) -> PayloadKey {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"SurgeInvoicePayload").expect("any key size");
        mac.update(bot_token.as_bytes());
        PayloadKey(mac.finalize().into_bytes().into())
    }

    fn mac(&self, body: &str) -> [u8; MAC_BYTES] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("any key size");
        mac.update(body.as_bytes());
        let full = mac.finalize().into_bytes();
        full[..MAC_BYTES].try_into().expect("16 of 32 bytes")
    }
}

impl std::fmt::Debug for PayloadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PayloadKey(..)")
    }
}

/// A purchase, as its invoice names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoicePayload {
    pub purchase_id: Uuid,
    pub user_id: i64,
    pub item_id: String,
    /// The coins the invoice grants (zero for a subscription).
    pub coins: i64,
}

/// Why a payload is not one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the invoice payload is not in Surge's format")]
    Malformed,
    #[error("the invoice payload's signature does not match")]
    Forged,
}

impl InvoicePayload {
    /// The payload text, signed.
    pub fn seal(&self, key: &PayloadKey) -> String {
        let body = format!(
            "{VERSION}.{}.{}.{}.{}",
            self.user_id,
            self.item_id,
            self.coins,
            URL_SAFE_NO_PAD.encode(self.purchase_id.as_bytes())
        );
        let mac = URL_SAFE_NO_PAD.encode(key.mac(&body));
        format!("{body}.{mac}")
    }

    /// The purchase `text` names, if `key` signed it.
    pub fn open(text: &str, key: &PayloadKey) -> Result<InvoicePayload, PayloadError> {
        let (body, mac) = text.rsplit_once('.').ok_or(PayloadError::Malformed)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| PayloadError::Malformed)?;
        if !bool::from(mac.as_slice().ct_eq(&key.mac(body))) {
            return Err(PayloadError::Forged);
        }
        // Signed by us, so well formed unless the format changed under the same version.
        let parts: Vec<&str> = body.split('.').collect();
        let [VERSION, user_id, item_id, coins, purchase_id] = parts[..] else {
            return Err(PayloadError::Malformed);
        };
        let purchase_id = URL_SAFE_NO_PAD
            .decode(purchase_id)
            .ok()
            .and_then(|bytes| Uuid::from_slice(&bytes).ok())
            .ok_or(PayloadError::Malformed)?;
        Ok(InvoicePayload {
            purchase_id,
            user_id: user_id.parse().map_err(|_| PayloadError::Malformed)?,
            item_id: item_id.to_owned(),
            coins: coins.parse().map_err(|_| PayloadError::Malformed)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> InvoicePayload {
        InvoicePayload {
            purchase_id: Uuid::now_v7(),
            user_id: -1_000_000_000_000_000_000,
            item_id: "x".repeat(surge_schemas::products::MAX_ID),
            coins: surge_schemas::products::MAX_COINS,
        }
    }

    #[test]
    fn a_sealed_payload_opens_to_the_same_purchase_and_fits_telegrams_bound() {
        let key = PayloadKey::from_bot_token("123:abc");
        let longest = payload();
        let sealed = longest.seal(&key);
        assert!(sealed.len() <= MAX_PAYLOAD_BYTES, "{} bytes", sealed.len());
        assert_eq!(InvoicePayload::open(&sealed, &key), Ok(longest));
    }

    #[test]
    fn a_changed_field_another_bots_key_or_garbage_is_refused() {
        let key = PayloadKey::from_bot_token("123:abc");
        let mine = InvoicePayload {
            user_id: 42,
            ..payload()
        };
        let sealed = mine.seal(&key);
        let theirs = sealed.replacen(".42.", ".43.", 1);
        assert_eq!(
            InvoicePayload::open(&theirs, &key),
            Err(PayloadError::Forged)
        );
        let other_bot = PayloadKey::from_bot_token("123:abd");
        assert_eq!(
            InvoicePayload::open(&sealed, &other_bot),
            Err(PayloadError::Forged)
        );
        for garbage in ["", ".", "p1", "order-17", "p1.42.x.1.AAAA.!!"] {
            assert!(InvoicePayload::open(garbage, &key).is_err(), "{garbage}");
        }
        assert_eq!(format!("{key:?}"), "PayloadKey(..)");
    }
}
