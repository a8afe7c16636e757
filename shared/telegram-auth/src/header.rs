//! Extraction of initData from an `Authorization: tma <initData>` header value.

use crate::AuthError;

/// The authorization scheme used by Telegram Mini Apps (matched case-insensitively).
pub const SCHEME: &str = "tma";

/// Returns the initData part of an `Authorization` header value `tma <initData>`.
///
/// Surrounding whitespace is ignored and the scheme is matched
/// case-insensitively. initData itself is URL-encoded and therefore never
/// contains whitespace; a value with embedded whitespace is rejected.
///
/// # Errors
/// [`AuthError::MissingAuthorization`] for an empty or blank value,
/// [`AuthError::MalformedAuthorization`] for any other scheme, a missing
/// initData part, or whitespace inside initData.
pub fn parse_authorization(header_value: &str) -> Result<&str, AuthError> {
    let value = header_value.trim_matches(is_ows);
    if value.is_empty() {
        return Err(AuthError::MissingAuthorization);
    }
    let (scheme, rest) = value
        .split_once(is_ows)
        .ok_or(AuthError::MalformedAuthorization)?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return Err(AuthError::MalformedAuthorization);
    }
    let init_data = rest.trim_start_matches(is_ows);
    if init_data.is_empty() || init_data.contains(char::is_whitespace) {
        return Err(AuthError::MalformedAuthorization);
    }
    Ok(init_data)
}

/// HTTP optional whitespace: space or horizontal tab.
fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

#[cfg(test)]
mod tests {
    use super::parse_authorization;
    use crate::AuthError;

    #[test]
    fn accepts_tma_scheme_any_case() {
        assert_eq!(parse_authorization("tma a=1&b=2"), Ok("a=1&b=2"));
        assert_eq!(parse_authorization("TMA a=1"), Ok("a=1"));
        assert_eq!(parse_authorization("  Tma \t a=1  "), Ok("a=1"));
    }

    #[test]
    fn rejects_missing_header() {
        for v in ["", "   ", "\t"] {
            assert_eq!(
                parse_authorization(v),
                Err(AuthError::MissingAuthorization),
                "{v:?}"
            );
        }
    }

    #[test]
    fn rejects_malformed_header() {
        for v in [
            "tma",
            "tma   ",
            "Bearer a=1",
            "tmaa=1",
            "a=1&hash=00",
            "tma a=1 b=2",
            "tma a=1\nb=2",
            "Basic dG1hOmE9MQ==",
        ] {
            let err = parse_authorization(v).unwrap_err();
            assert_eq!(err, AuthError::MalformedAuthorization, "{v:?}");
            assert_eq!(err.code(), "malformed_authorization");
        }
    }
}
