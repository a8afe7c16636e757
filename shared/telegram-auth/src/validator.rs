//! [`Validator`]: the full check of an initData string.
//!
//! Order of checks: query-string structure and duplicate keys, then the hash
//! (HMAC mode) or signature (Ed25519 mode), then `auth_date` presence,
//! format and freshness, then the `user` object, then field lengths. Content is only
//! interpreted once its authenticity is established, so unsigned input can
//! never learn more than "malformed" or "not signed".

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::VerifyingKey;
use secrecy::{ExposeSecret, SecretString};

use crate::hmac::HmacSha256;
use crate::parse::{Fields, parse_query};
use crate::{AuthError, InitData, WebAppUser};

/// Default maximum age of initData: 24 hours.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// Default tolerated clock skew for `auth_date` in the future: 60 seconds.
///
/// Telegram's servers and ours are never perfectly in sync; an `auth_date`
/// up to this far ahead of our clock is accepted, anything further is
/// rejected as [`AuthError::AuthDateInFuture`].
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);

#[derive(Clone)]
enum Mode {
    Hmac(HmacSha256),
    Ed25519 { bot_id: i64, key: VerifyingKey },
}

/// Validates initData for one bot. Cheap to clone, `Send + Sync`; build it
/// once at startup and share it.
#[derive(Clone)]
pub struct Validator {
    mode: Mode,
    max_age_secs: i64,
    clock_skew_secs: i64,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Validator");
        match &self.mode {
            Mode::Hmac(_) => d.field("mode", &"hmac").field("secret_key", &"[REDACTED]"),
            Mode::Ed25519 { bot_id, key } => d
                .field("mode", &"ed25519")
                .field("bot_id", bot_id)
                .field("public_key", &hex::encode(key.as_bytes())),
        };
        d.field("max_age_secs", &self.max_age_secs)
            .field("clock_skew_secs", &self.clock_skew_secs)
            .finish()
    }
}

fn duration_secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Validator {
    /// HMAC mode for the bot owning `bot_token`. The secret key is derived
    /// once here; the token itself is not retained.
    pub fn hmac(bot_token: &SecretString, max_age: Duration) -> Self {
        let mac = crate::hmac::keyed_mac(bot_token.expose_secret().as_bytes());
        Self::with_mode(Mode::Hmac(mac), max_age)
    }

    /// Ed25519 (third-party) mode for initData issued to `bot_id`, verified
    /// with Telegram's `public_key` (see [`crate::telegram_production_key`]
    /// and [`crate::telegram_test_key`]).
    pub fn ed25519(bot_id: i64, public_key: VerifyingKey, max_age: Duration) -> Self {
        Self::with_mode(
            Mode::Ed25519 {
                bot_id,
                key: public_key,
            },
            max_age,
        )
    }

    fn with_mode(mode: Mode, max_age: Duration) -> Self {
        Self {
            mode,
            max_age_secs: duration_secs(max_age),
            clock_skew_secs: duration_secs(DEFAULT_CLOCK_SKEW),
        }
    }

    /// Replaces the tolerated clock skew (default [`DEFAULT_CLOCK_SKEW`]).
    #[must_use]
    pub fn with_clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew_secs = duration_secs(skew);
        self
    }

    /// Validates raw initData (without the `tma ` prefix; see
    /// [`crate::parse_authorization`]) as of `now_unix_secs`.
    ///
    /// # Errors
    /// Any [`AuthError`] except the two header variants.
    pub fn validate(&self, init_data: &str, now_unix_secs: i64) -> Result<InitData, AuthError> {
        let fields = parse_query(init_data)?;
        match &self.mode {
            Mode::Hmac(mac) => crate::hmac::verify(mac, &fields)?,
            Mode::Ed25519 { bot_id, key } => crate::ed25519::verify(*bot_id, key, &fields)?,
        }
        let auth_date = parse_auth_date(&fields)?;
        self.check_freshness(auth_date, now_unix_secs)?;
        let user = parse_user(&fields)?;
        let owned = |key: &str| fields.get(key).map(str::to_owned);
        let data = InitData {
            user,
            auth_date,
            start_param: owned("start_param"),
            query_id: owned("query_id"),
            chat_type: owned("chat_type"),
            chat_instance: owned("chat_instance"),
        };
        crate::limits::check(&data)?;
        Ok(data)
    }

    /// [`Validator::validate`] against the system clock.
    ///
    /// # Errors
    /// As [`Validator::validate`].
    pub fn validate_now(&self, init_data: &str) -> Result<InitData, AuthError> {
        self.validate(init_data, unix_now())
    }

    fn check_freshness(&self, auth_date: i64, now: i64) -> Result<(), AuthError> {
        let age_secs = now.saturating_sub(auth_date);
        if age_secs > self.max_age_secs {
            return Err(AuthError::Expired {
                age_secs,
                max_age_secs: self.max_age_secs,
            });
        }
        let ahead_secs = auth_date.saturating_sub(now);
        if ahead_secs > self.clock_skew_secs {
            return Err(AuthError::AuthDateInFuture {
                ahead_secs,
                skew_secs: self.clock_skew_secs,
            });
        }
        Ok(())
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, duration_secs)
}

/// `auth_date` must be a positive decimal integer (no sign, no spaces).
fn parse_auth_date(fields: &Fields) -> Result<i64, AuthError> {
    let raw = fields.get("auth_date").ok_or(AuthError::MissingAuthDate)?;
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthError::MalformedAuthDate);
    }
    match raw.parse::<i64>() {
        Ok(secs) if secs > 0 => Ok(secs),
        _ => Err(AuthError::MalformedAuthDate),
    }
}

fn parse_user(fields: &Fields) -> Result<WebAppUser, AuthError> {
    let raw = fields.get("user").ok_or(AuthError::MissingUser)?;
    let user: WebAppUser = serde_json::from_str(raw).map_err(|_| AuthError::MalformedUser)?;
    if user.id <= 0 {
        return Err(AuthError::InvalidUserId);
    }
    Ok(user)
}

#[cfg(test)]
mod tests_forgery;
#[cfg(test)]
mod tests_round_trip;
#[cfg(test)]
mod tests_vectors;
