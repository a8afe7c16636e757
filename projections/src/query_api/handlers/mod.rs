//! The query API's endpoints. An endpoint that reads one projection lives in that projection's
//! folder (`<name>/http.rs`, registered by the `serves` clause of its catalog line); one that
//! reads several lives here (`me`). Each names the projections behind it (for
//! read-your-writes), reads them through `Reading::read` (PostgreSQL: on a replica or the
//! primary; timeout → 503) or `read_store` (Redis) and answers through `cached_json` (ETag,
//! 304). What they share (query parameters, times) is here too.

pub(crate) mod me;

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use surge_http::ApiError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::QueryState;
use crate::catalog::ProjectionId;

/// Every endpoint: those here and those the catalog's projections serve, each registered with
/// its OpenAPI operation so none can be undocumented.
pub(crate) fn routes() -> OpenApiRouter<QueryState> {
    let here = OpenApiRouter::new().routes(routes!(me::me));
    (ProjectionId::ALL.iter())
        .filter_map(|id| id.routes())
        .fold(here, |router, routes| router.merge(routes()))
}

/// The query string's parameters, each given at most once: a repeated one (`?limit=5&limit=500`)
/// is refused with 400 `repeated_parameter` rather than one of its values picked silently.
/// Parameters an endpoint does not read are ignored, as caches and cache-busters add them.
#[derive(Debug, Default)]
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    pub(crate) fn parse(query: &str) -> Result<Params, ApiError> {
        let mut params = HashMap::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if params.contains_key(name.as_ref()) {
                return Err(ApiError::bad_request(
                    "repeated_parameter",
                    format!("the query parameter {name} is given more than once"),
                ));
            }
            params.insert(name.into_owned(), value.into_owned());
        }
        Ok(Params(params))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Params::parse(parts.uri.query().unwrap_or_default())
    }
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
    fn a_parameter_is_given_once() {
        let params = Params::parse("limit=5&cursor=a%2Bb&_=1").unwrap();
        assert_eq!(params.get("limit"), Some("5"));
        assert_eq!(params.get("cursor"), Some("a+b"));
        assert_eq!(params.get("days"), None);
        let repeated = Params::parse("limit=5&limit=500").unwrap_err();
        assert_eq!(repeated.code, "repeated_parameter");
        assert!(Params::parse("").unwrap().get("limit").is_none());
    }

    #[test]
    fn limits_are_bounded_whole_numbers() {
        assert_eq!(limit(None, 20, 200).unwrap(), 20);
        assert_eq!(limit(Some("200"), 20, 200).unwrap(), 200);
        for bad in ["0", "201", "-1", "ten", ""] {
            assert_eq!(limit(Some(bad), 20, 200).unwrap_err().code, "invalid_limit");
        }
    }
}
