//! `ApiJson<T>`: a JSON body extractor whose every rejection is an [`ApiError`] with a specific
//! code (axum's own `Json` answers in plain text), and which refuses deep nesting before parsing.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let has_json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| unreadable(&rejection, state))?;
        // An empty body means "no options" on endpoints whose body is optional; its declared
        // type says nothing (`curl -d ''` labels it a form), so only non-empty bodies must be JSON.
        let bytes = match (bytes.is_empty(), has_json_type) {
            (true, _) => Bytes::from_static(b"{}"),
            (false, true) => bytes,
            (false, false) => {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "expected Content-Type: application/json",
                ));
            }
        };
        let depth = json_depth(&bytes);
        if depth > state.config.max_json_depth {
            return Err(ApiError::bad_request(
                "json_too_deep",
                format!(
                    "JSON nesting depth {depth} exceeds {}",
                    state.config.max_json_depth
                ),
            ));
        }
        let value = serde_json::from_slice(&bytes).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => {
                ApiError::unprocessable("invalid_field", e.to_string())
            }
            _ => ApiError::bad_request("invalid_json", e.to_string()),
        })?;
        Ok(ApiJson(value))
    }
}

/// The answer to a body that could not be read: too large (413) or broken off (400).
pub(crate) fn unreadable(rejection: &BytesRejection, state: &AppState) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body exceeds {} bytes", state.config.max_body_bytes),
        )
    } else {
        ApiError::bad_request("unreadable_body", rejection.body_text())
    }
}

/// Maximum nesting of arrays and objects, ignoring brackets inside strings. Runs before parsing so
/// a hostile body cannot make the parser recurse; malformed input is left for the parser to reject.
pub(crate) fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::json_depth;

    #[test]
    fn depth_counts_nesting_not_strings() {
        assert_eq!(json_depth(br#"{}"#), 1);
        assert_eq!(json_depth(br#"{"a":[{"b":1}]}"#), 3);
        assert_eq!(json_depth(br#"{"a":"[[[[{{{{\"]]"}"#), 1);
        assert_eq!(json_depth(&[b'['; 100]), 100);
        assert_eq!(json_depth(b"42"), 0);
    }
}
