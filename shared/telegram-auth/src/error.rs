//! The single error type of the crate, with stable machine-readable codes.
//!
//! Every variant is an authentication failure ("401 class" for an HTTP
//! caller). Messages describe what was wrong with the presented data; they
//! never contain the bot token, the derived secret key or a computed hash.

/// Why an `Authorization` header or an `initData` string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The `Authorization` header is absent or blank.
    #[error("the Authorization header is missing or empty")]
    MissingAuthorization,
    /// The header is not of the form `tma <initData>`.
    #[error("the Authorization header is not of the form `tma <initData>`")]
    MalformedAuthorization,
    /// The initData is not a well-formed query string.
    #[error("init data is not a well-formed query string: {reason}")]
    MalformedInitData {
        /// Which rule was broken (static text, never echoes input).
        reason: &'static str,
    },
    /// The same key occurs more than once (a parser-confusion forgery vector).
    #[error("init data contains the key {key:?} more than once")]
    DuplicateKey {
        /// The repeated key (only keys of `[A-Za-z0-9_]`, at most 64 bytes,
        /// ever reach this point).
        key: String,
    },
    /// HMAC mode: there is no `hash` field.
    #[error("init data has no `hash` field")]
    MissingHash,
    /// HMAC mode: `hash` is not 64 hexadecimal characters.
    #[error("the `hash` field is not 64 hexadecimal characters")]
    MalformedHash,
    /// HMAC mode: `hash` does not match (tampered data or another bot's token).
    #[error("the `hash` field does not match the init data for this bot")]
    InvalidHash,
    /// Ed25519 mode: there is no `signature` field.
    #[error("init data has no `signature` field")]
    MissingSignature,
    /// Ed25519 mode: `signature` is not base64url of 64 bytes.
    #[error("the `signature` field is not a base64url-encoded Ed25519 signature")]
    MalformedSignature,
    /// Ed25519 mode: the signature does not verify for this bot and key.
    #[error("the `signature` field does not verify for this bot")]
    InvalidSignature,
    /// There is no `auth_date` field.
    #[error("init data has no `auth_date` field")]
    MissingAuthDate,
    /// `auth_date` is not a positive decimal Unix timestamp.
    #[error("the `auth_date` field is not a positive decimal Unix timestamp")]
    MalformedAuthDate,
    /// `auth_date` is older than the configured maximum age.
    #[error("init data expired: issued {age_secs} s ago, maximum age is {max_age_secs} s")]
    Expired {
        /// Seconds between `auth_date` and now.
        age_secs: i64,
        /// The configured maximum age in seconds.
        max_age_secs: i64,
    },
    /// `auth_date` lies further in the future than the allowed clock skew.
    #[error(
        "init data `auth_date` is {ahead_secs} s in the future (allowed clock skew {skew_secs} s)"
    )]
    AuthDateInFuture {
        /// Seconds by which `auth_date` is ahead of now.
        ahead_secs: i64,
        /// The configured clock skew in seconds.
        skew_secs: i64,
    },
    /// There is no `user` field.
    #[error("init data has no `user` field")]
    MissingUser,
    /// `user` is not a JSON object with at least `id` and `first_name`.
    #[error("the `user` field is not a valid Telegram user JSON object")]
    MalformedUser,
    /// `user.id` is zero or negative.
    #[error("the `user.id` field is not a positive integer")]
    InvalidUserId,
    /// A field is longer than Telegram ever sends.
    #[error("the `{field}` field is longer than {max_chars} characters")]
    FieldTooLong {
        /// The field's name (static text, never echoes input).
        field: &'static str,
        /// Its bound.
        max_chars: usize,
    },
}

impl AuthError {
    /// Stable snake_case code, suitable for API responses, metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingAuthorization => "missing_authorization",
            Self::MalformedAuthorization => "malformed_authorization",
            Self::MalformedInitData { .. } => "malformed_init_data",
            Self::DuplicateKey { .. } => "duplicate_key",
            Self::MissingHash => "missing_hash",
            Self::MalformedHash => "malformed_hash",
            Self::InvalidHash => "invalid_hash",
            Self::MissingSignature => "missing_signature",
            Self::MalformedSignature => "malformed_signature",
            Self::InvalidSignature => "invalid_signature",
            Self::MissingAuthDate => "missing_auth_date",
            Self::MalformedAuthDate => "malformed_auth_date",
            Self::Expired { .. } => "expired",
            Self::AuthDateInFuture { .. } => "auth_date_in_future",
            Self::MissingUser => "missing_user",
            Self::MalformedUser => "malformed_user",
            Self::InvalidUserId => "invalid_user_id",
            Self::FieldTooLong { .. } => "init_data_field_too_long",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AuthError;

    fn all() -> Vec<AuthError> {
        vec![
            AuthError::MissingAuthorization,
            AuthError::MalformedAuthorization,
            AuthError::MalformedInitData { reason: "x" },
            AuthError::DuplicateKey { key: "user".into() },
            AuthError::MissingHash,
            AuthError::MalformedHash,
            AuthError::InvalidHash,
            AuthError::MissingSignature,
            AuthError::MalformedSignature,
            AuthError::InvalidSignature,
            AuthError::MissingAuthDate,
            AuthError::MalformedAuthDate,
            AuthError::Expired {
                age_secs: 2,
                max_age_secs: 1,
            },
            AuthError::AuthDateInFuture {
                ahead_secs: 2,
                skew_secs: 1,
            },
            AuthError::MissingUser,
            AuthError::MalformedUser,
            AuthError::InvalidUserId,
            AuthError::FieldTooLong {
                field: "user.first_name",
                max_chars: 64,
            },
        ]
    }

    #[test]
    fn codes_are_distinct_snake_case() {
        let errors = all();
        let mut codes: Vec<&str> = errors.iter().map(AuthError::code).collect();
        for code in &codes {
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), errors.len(), "codes must be distinct");
    }

    #[test]
    fn messages_are_non_empty() {
        for e in all() {
            assert!(!e.to_string().is_empty(), "{}", e.code());
        }
    }
}
