//! The consistency token: where an event landed (topic, partition, offset), handed to the client
//! by the write API and given back to the query API to read its own writes. Opaque to clients.
//!
//! A position's plain form is `v1.` followed by base64url of `topic/partition/offset`
//! (`Display`/`FromStr`). What clients get is that form signed ([`TokenKeys`]):
//! `v2.<base64url body>.<base64url of the first 16 bytes of HMAC-SHA256(key, body)>`. The query
//! API accepts only signed tokens, so a client cannot make it wait for a position that was never
//! written (a far offset, a partition that does not exist) or bypass a cache with a made-up one.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the HMAC kept in a token: 128 bits, beyond guessing.
const TAG_BYTES: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a Surge consistency token")]
pub struct InvalidToken;

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = format!("{}/{}/{}", self.topic, self.partition, self.offset);
        write!(f, "v1.{}", URL_SAFE_NO_PAD.encode(raw))
    }
}

impl FromStr for Position {
    type Err = InvalidToken;

    fn from_str(token: &str) -> Result<Self, InvalidToken> {
        let body = token.strip_prefix("v1.").ok_or(InvalidToken)?;
        let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| InvalidToken)?;
        let raw = String::from_utf8(raw).map_err(|_| InvalidToken)?;
        // Topic names may not contain '/', so splitting from the right is unambiguous.
        let mut parts = raw.rsplitn(3, '/');
        let offset = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or(InvalidToken)?;
        let partition = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or(InvalidToken)?;
        let topic = parts.next().filter(|t| !t.is_empty()).ok_or(InvalidToken)?;
        if partition < 0 || offset < 0 {
            return Err(InvalidToken);
        }
        Ok(Position {
            topic: topic.to_owned(),
            partition,
            offset,
        })
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("is not a token returned by the write API")]
    Malformed,
    #[error("is not signed; it is not a token returned by this deployment's write API")]
    Unsigned,
    #[error("has a signature this deployment did not make (tampered, or from another deployment)")]
    BadSignature,
}

/// The keys that sign and check tokens: the first signs, every one checks, so a secret can be
/// rotated by putting the new one first and dropping the old one once its tokens have expired
/// from clients (they are only useful for seconds).
#[derive(Clone)]
pub struct TokenKeys(Vec<Vec<u8>>);

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenKeys({} keys, redacted)", self.0.len())
    }
}

impl TokenKeys {
    /// Keys from `secrets` (comma-separated, the first signs); without any, one key derived from
    /// `fallback` (the bot token, a secret both APIs already share).
    pub fn new(secrets: Option<&str>, fallback: &str) -> Self {
        let keys: Vec<Vec<u8>> = secrets
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec())
            .collect();
        if !keys.is_empty() {
            return TokenKeys(keys);
        }
        let mut derive = Hmac::<Sha256>::new_from_slice(b"surge-consistency-token")
            .expect("HMAC takes any key length");
        derive.update(fallback.as_bytes());
        TokenKeys(vec![derive.finalize().into_bytes().to_vec()])
    }

    /// The signed token for `position`.
    pub fn sign(&self, position: &Position) -> String {
        let body = URL_SAFE_NO_PAD.encode(format!(
            "{}/{}/{}",
            position.topic, position.partition, position.offset
        ));
        let tag = Self::mac(&self.0[0], &body).finalize().into_bytes();
        format!("v2.{body}.{}", URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES]))
    }

    /// The position a signed token names, if one of the keys signed it (checked in constant time).
    pub fn verify(&self, token: &str) -> Result<Position, TokenError> {
        if token.starts_with("v1.") {
            return Err(TokenError::Unsigned);
        }
        let rest = token.strip_prefix("v2.").ok_or(TokenError::Malformed)?;
        let (body, tag) = rest.split_once('.').ok_or(TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed)?;
        if tag.len() != TAG_BYTES {
            return Err(TokenError::Malformed);
        }
        let position: Position = format!("v1.{body}")
            .parse()
            .map_err(|_| TokenError::Malformed)?;
        let signed = self
            .0
            .iter()
            .any(|key| Self::mac(key, body).verify_truncated_left(&tag).is_ok());
        if signed {
            Ok(position)
        } else {
            Err(TokenError::BadSignature)
        }
    }

    fn mac(key: &[u8], body: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(body.as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: i64) -> Position {
        Position {
            topic: "surge.events".into(),
            partition: 3,
            offset,
        }
    }

    #[test]
    fn a_signed_token_verifies_under_any_of_the_keys_and_only_them() {
        let old = TokenKeys::new(Some("old-secret"), "bot");
        let rotated = TokenKeys::new(Some("new-secret, old-secret"), "bot");
        let token = old.sign(&at(42));
        assert_eq!(
            rotated.verify(&token),
            Ok(at(42)),
            "the old key still checks"
        );
        assert_eq!(
            TokenKeys::new(Some("new-secret"), "bot").verify(&token),
            Err(TokenError::BadSignature)
        );
        // Without secrets the key is derived from the fallback: the same on both APIs.
        let derived = TokenKeys::new(None, "bot").sign(&at(1));
        assert_eq!(TokenKeys::new(Some(""), "bot").verify(&derived), Ok(at(1)));
        assert_eq!(
            TokenKeys::new(None, "another bot").verify(&derived),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_unsigned_and_garbled_tokens_are_refused() {
        let keys = TokenKeys::new(Some("secret"), "bot");
        let token = keys.sign(&at(42));
        let (head, tag) = token.rsplit_once('.').unwrap();
        // The same signature on a far offset.
        let far = keys.sign(&at(999_999_999));
        let (far_head, _) = far.rsplit_once('.').unwrap();
        assert_eq!(
            keys.verify(&format!("{far_head}.{tag}")),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            keys.verify(&format!("{head}.{}", "A".repeat(22))),
            Err(TokenError::BadSignature)
        );
        assert_eq!(keys.verify(&at(42).to_string()), Err(TokenError::Unsigned));
        for garbled in [
            "",
            "v2.",
            "v2.abc",
            "v2.!!!.AAAA",
            "v3.x.y",
            &format!("{head}.AAAA"),
        ] {
            assert_eq!(
                keys.verify(garbled),
                Err(TokenError::Malformed),
                "{garbled:?}"
            );
        }
    }

    #[test]
    fn round_trips() {
        let p = Position {
            topic: "surge.events".into(),
            partition: 7,
            offset: 123_456,
        };
        let token = p.to_string();
        assert!(token.starts_with("v1."));
        assert_eq!(token.parse::<Position>(), Ok(p));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "v1.", "v2.abc", "v1.!!!", "v1.dG9waWMvMS94"] {
            assert_eq!(bad.parse::<Position>(), Err(InvalidToken), "{bad:?}");
        }
        let negative = format!("v1.{}", URL_SAFE_NO_PAD.encode("t/-1/5"));
        assert_eq!(negative.parse::<Position>(), Err(InvalidToken));
    }
}
