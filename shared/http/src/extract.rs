//! A `Path` whose rejection answers in the JSON error shape: a path parameter that cannot be
//! decoded (bad UTF-8 such as `%FF`) is a 400 `invalid_path` like every other refusal, not
//! axum's plain-text body. (Query strings need no such wrapper: they are decoded lossily.)

use axum::extract::FromRequestParts;
use axum::extract::rejection::PathRejection;

use crate::ApiError;

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request("invalid_path", rejection.body_text())
    }
}
