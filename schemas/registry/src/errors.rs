//! The crate's error type and its mapping to Confluent's HTTP status codes
//! and `error_code`s, so clients written against Confluent react the same way.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::compatibility::UnknownLevel;

/// Content type of every response, as Confluent sends it.
pub(crate) const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Everything that can go wrong in the registry, from a missing subject to a
/// broken database connection.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 404 / 40401.
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    /// 404 / 40402.
    #[error("Version {0} not found.")]
    VersionNotFound(String),
    /// 404 / 40403 (`None` when a lookup by content found nothing).
    #[error("{}", match .0 { Some(id) => format!("Schema {id} not found"), None => "Schema not found".to_owned() })]
    SchemaNotFound(Option<u32>),
    /// 404 / 40408.
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectConfigNotFound(String),
    /// 404 / 404: no such route.
    #[error("HTTP 404 Not Found: {0}")]
    RouteNotFound(String),
    /// 409 / 409.
    #[error(
        "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
        .details.join(", ")
    )]
    Incompatible {
        /// The subject the schema was registered under.
        subject: String,
        /// Why, one entry per failed (old version, direction) pair.
        details: Vec<String>,
    },
    /// 422 / 42201.
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    /// 422 / 42202.
    #[error(
        "The specified version '{0}' is not a valid version id. Allowed values are between \
         [1, 2^31-1] and the string \"latest\""
    )]
    InvalidVersion(String),
    /// 422 / 42203.
    #[error(transparent)]
    InvalidCompatibilityLevel(#[from] UnknownLevel),
    /// 400 / 400: the body is not the JSON the endpoint expects.
    #[error("Bad request: {0}")]
    BadRequest(String),
    /// 500 / 50001. Details are logged, never sent.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// 500 / 50001: stored data the registry cannot use (e.g. an unparsable schema row).
    #[error("corrupt registry data: {0}")]
    Corrupt(String),
    /// Binding or serving the HTTP listener failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The HTTP status and Confluent `error_code` of this error.
    pub fn codes(&self) -> (StatusCode, u32) {
        match self {
            Error::SubjectNotFound(_) => (StatusCode::NOT_FOUND, 40401),
            Error::VersionNotFound(_) => (StatusCode::NOT_FOUND, 40402),
            Error::SchemaNotFound(_) => (StatusCode::NOT_FOUND, 40403),
            Error::SubjectConfigNotFound(_) => (StatusCode::NOT_FOUND, 40408),
            Error::RouteNotFound(_) => (StatusCode::NOT_FOUND, 404),
            Error::Incompatible { .. } => (StatusCode::CONFLICT, 409),
            Error::InvalidSchema(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42201),
            Error::InvalidVersion(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42202),
            Error::InvalidCompatibilityLevel(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42203),
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, 400),
            Error::Database(_) | Error::Corrupt(_) | Error::Io(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, 50001)
            }
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.codes();
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "schema registry request failed");
            "Error in the backend data store".to_owned()
        } else {
            self.to_string()
        };
        error_response(status, code, message)
    }
}

/// A Confluent error body: `{"error_code": .., "message": ..}`.
pub(crate) fn error_response(status: StatusCode, code: u32, message: String) -> Response {
    let body = serde_json::json!({ "error_code": code, "message": message });
    json_response(status, body.to_string())
}

/// A response with Confluent's content type and an already-serialised body.
pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}
