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
        parse(&bytes, state.config.max_json_depth).map(ApiJson)
    }
}

/// `T` from a body: the shape checked before parsing (see [`Shape`]), then parsed.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8], max_depth: usize) -> Result<T, ApiError> {
    let shape = Shape::of(bytes);
    if shape.depth > max_depth {
        return Err(ApiError::bad_request(
            "json_too_deep",
            format!("JSON nesting depth {} exceeds {max_depth}", shape.depth),
        ));
    }
    if let Some(why) = shape.positional() {
        return Err(ApiError::unprocessable("invalid_field", why));
    }
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            ApiError::unprocessable("invalid_field", e.to_string())
        }
        _ => ApiError::bad_request("invalid_json", e.to_string()),
    })
}

/// `deserialize_with` for an optional nested object: read only from a JSON object (or null).
/// A derived struct also reads an array of its fields in order (`"button": ["Play"]`), which
/// would make field order part of the API; the body-wide [`Shape`] scan cannot tell such a field
/// from one that holds a list.
pub(crate) fn object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::Deserialize;
    use serde::de::Error;
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Array(_) => Err(D::Error::custom(
            "an object is not read from an array of its fields",
        )),
        value => T::deserialize(value).map(Some).map_err(D::Error::custom),
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

/// What a pre-parse scan tells about a body: its nesting, and whether it writes an object as an
/// array of its fields. serde_json hands a derived struct a JSON array as its fields in order
/// (`[5, null]` reads as `{"count": 5, "occurred_at": null}`); accepting that would make field
/// order part of the API, so bodies are objects and no array holds arrays (the batch's actions are
/// objects). The scan runs before parsing so a hostile body cannot make the parser recurse;
/// malformed input is left for the parser to reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Maximum nesting of arrays and objects, ignoring brackets inside strings.
    pub depth: usize,
    /// The body is an array (anything else that is not an object the parser refuses).
    pub top_level_array: bool,
    /// An array appears directly inside an array.
    pub array_in_array: bool,
}

impl Shape {
    pub(crate) fn of(bytes: &[u8]) -> Shape {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        let mut shape = Shape {
            depth: 0,
            top_level_array: first == Some(&b'['),
            array_in_array: false,
        };
        // The open containers, innermost last: whether each is an array.
        let mut open: Vec<bool> = Vec::new();
        let (mut in_string, mut escaped) = (false, false);
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
                    let array = b == b'[';
                    shape.array_in_array |= array && open.last() == Some(&true);
                    open.push(array);
                    shape.depth = shape.depth.max(open.len());
                }
                b'}' | b']' => {
                    open.pop();
                }
                _ => {}
            }
        }
        shape
    }

    /// Why the body is refused as a positional form of an object, if it is one.
    pub(crate) fn positional(&self) -> Option<&'static str> {
        if self.top_level_array {
            Some("the body must be a JSON object, not an array of its fields")
        } else if self.array_in_array {
            Some(
                "an array holds objects or values, not arrays: an object is not read from an array of its fields",
            )
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Shape;

    #[test]
    fn depth_counts_nesting_not_strings() {
        let depth = |bytes: &[u8]| Shape::of(bytes).depth;
        assert_eq!(depth(br#"{}"#), 1);
        assert_eq!(depth(br#"{"a":[{"b":1}]}"#), 3);
        assert_eq!(depth(br#"{"a":"[[[[{{{{\"]]"}"#), 1);
        assert_eq!(depth(&[b'['; 100]), 100);
        assert_eq!(depth(b"42"), 0);
    }

    #[test]
    fn objects_written_as_arrays_of_their_fields_are_refused() {
        let refused = |bytes: &[u8]| Shape::of(bytes).positional().is_some();
        // What the write API's bodies look like.
        assert!(!refused(br#"{"count":5}"#));
        assert!(!refused(
            br#" {"actions":[{"type":"taps","count":1},{"type":"checkin"}]}"#
        ));
        assert!(
            !refused(br#"{"display_name":"[[x]]"}"#),
            "brackets inside strings"
        );
        // What serde_json would otherwise read as those bodies.
        assert!(refused(b"[5, null]"));
        assert!(refused(b"\n [\"ios\"]"));
        assert!(refused(br#"{"actions":[["taps",5]]}"#));
        assert!(refused(br#"{"actions":[{"type":"checkin"},["taps",5]]}"#));
    }
}
