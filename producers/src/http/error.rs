//! The write API's errors are the shared JSON error shape of every Surge HTTP surface.

pub use surge_http::ApiError;
