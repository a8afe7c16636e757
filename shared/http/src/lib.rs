//! What every Surge HTTP surface (write API, query API, processor health) shares, so clients and
//! operators see one error shape, one readiness answer and one set of route metrics.

mod auth;
mod error;
mod extract;
pub mod openapi;
pub mod quiet;
mod readiness;
mod route_metrics;

pub use auth::{authenticate, authenticate_operator, secret_matches};
pub use error::{ApiError, ErrorCode, method_not_allowed, no_route};
pub use extract::Path;
pub use readiness::{__path_live, live, postgres_up, readiness, redis_up};
pub use route_metrics::{RouteMetrics, record_route_metrics};

#[doc(hidden)]
pub use tracing as __tracing;
