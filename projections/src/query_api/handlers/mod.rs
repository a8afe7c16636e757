//! One file per endpoint. Each names the projections behind it (for read-your-writes), reads
//! them through `Reading::read` (PostgreSQL: on a replica or the primary; timeout → 503) or
//! `read_store` (Redis) and answers through `cached_json` (ETag, 304). A new endpoint's file gets
//! its `mod` line and its route in [`routes`], both here.

pub(crate) mod broadcasts;
pub(crate) mod feed;
pub(crate) mod leaderboard;
pub(crate) mod me;
pub(crate) mod purchases;
pub(crate) mod quests;
pub(crate) mod stats;
pub(crate) mod users;

use surge_http::ApiError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::QueryState;

/// Every endpoint above, each registered with its OpenAPI operation so none can be
/// undocumented.
pub(crate) fn routes() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(me::me))
        .routes(routes!(feed::feed))
        .routes(routes!(quests::my_quests))
        .routes(routes!(purchases::my_purchases))
        .routes(routes!(leaderboard::leaderboard))
        .routes(routes!(users::user))
        .routes(routes!(stats::activity))
        .routes(routes!(purchases::revenue))
        .routes(routes!(broadcasts::broadcasts))
        .routes(routes!(broadcasts::broadcast))
}

/// `?limit=` within `1..=max`, `default` when absent.
pub(crate) fn limit(given: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    whole_number("limit", "invalid_limit", given, default, max)
}

/// The query parameter `name` within `1..=max`, `default` when absent; else 400 with `code`.
pub(crate) fn whole_number(
    name: &str,
    code: &'static str,
    given: Option<&str>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    let Some(text) = given else {
        return Ok(default);
    };
    match text.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_request(
            code,
            format!("{name} must be a whole number from 1 to {max}"),
        )),
    }
}

pub(crate) use crate::feed::time;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_bounded_whole_numbers() {
        assert_eq!(limit(None, 20, 200).unwrap(), 20);
        assert_eq!(limit(Some("200"), 20, 200).unwrap(), 200);
        for bad in ["0", "201", "-1", "ten", ""] {
            assert_eq!(limit(Some(bad), 20, 200).unwrap_err().code, "invalid_limit");
        }
    }
}
