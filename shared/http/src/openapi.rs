//! What the OpenAPI documents of both public APIs share, written once: the error body, the two
//! security schemes (`Authorization: tma <initData>` and the operator's bearer token), the
//! common headers, and error responses built from the codes a handler can answer. Each API
//! registers its routes with `utoipa_axum`, so a route cannot exist undocumented, and serves
//! its own document at `GET /openapi.json` ([`serve`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, Ref, RefOr, ResponseBuilder, Type, response::Response as Doc,
    schema::ObjectBuilder,
};
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// The security scheme of Telegram users: `Authorization: tma <initData>`.
pub const TMA: &str = "tma";
/// The security scheme of the operator: `Authorization: Bearer <SURGE_OPERATOR_TOKEN>`.
pub const OPERATOR: &str = "operator";

/// Every refusal, whatever the status: `{"error": {"code", "message"}}` ([`crate::ApiError`]).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    #[schema(inline)]
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct ErrorDetail {
    /// Stable and machine-readable (e.g. `invalid_field`); the response's description lists
    /// the codes each status can carry.
    code: String,
    /// Safe to show; never names internals.
    message: String,
}

/// `GET /health/live` ([`crate::live`]).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LiveBody {
    /// `ok`.
    status: String,
}

/// `GET /health/ready`, 200 or 503 ([`crate::readiness`]).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ReadyBody {
    /// `ready` or `unavailable`.
    status: String,
    /// Each dependency: `up` or `down`.
    checks: BTreeMap<String, String>,
}

/// Codes every endpoint that checks `Authorization: tma <initData>` may answer with 401.
pub const INIT_DATA_ERRORS: &[(u16, &str)] = &[
    (401, "missing_authorization"),
    (401, "malformed_authorization"),
    (401, "malformed_init_data"),
    (401, "duplicate_key"),
    (401, "missing_hash"),
    (401, "malformed_hash"),
    (401, "invalid_hash"),
    (401, "missing_signature"),
    (401, "malformed_signature"),
    (401, "invalid_signature"),
    (401, "missing_auth_date"),
    (401, "malformed_auth_date"),
    (401, "expired"),
    (401, "auth_date_in_future"),
    (401, "missing_user"),
    (401, "malformed_user"),
    (401, "invalid_user_id"),
    (401, "init_data_field_too_long"),
];

/// Codes of operator routes ([`crate::authenticate_operator`]).
pub const OPERATOR_ERRORS: &[(u16, &str)] = &[
    (401, "operator_token_required"),
    (401, "invalid_operator_token"),
    (403, "operator_access_disabled"),
];

/// A path parameter that does not decode ([`crate::Path`]).
pub const PATH_ERRORS: &[(u16, &str)] = &[(400, "invalid_path")];

/// The error responses for `errors` (status, code), one per status, the codes listed in its
/// description, the body [`ErrorBody`]; 409, 429, 503 and 504 name `Retry-After`.
pub fn error_responses(errors: &[(u16, &str)]) -> BTreeMap<String, RefOr<Doc>> {
    let mut by_status: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for &(status, code) in errors {
        let codes = by_status.entry(status).or_default();
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    by_status
        .into_iter()
        .map(|(status, codes)| {
            let reason = StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error");
            let codes: Vec<String> = codes.iter().map(|c| format!("`{c}`")).collect();
            let mut response = ResponseBuilder::new()
                .description(format!("{reason}: {}", codes.join(", ")))
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                );
            if matches!(status, 409 | 429 | 503 | 504) {
                response = response.header("Retry-After", retry_after());
            }
            (status.to_string(), RefOr::T(response.build()))
        })
        .collect()
}

/// `Retry-After`: whole seconds, at least 1.
pub fn retry_after() -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        )
        .description(Some(
            "Seconds to wait before retrying (refusals that may be retried)",
        ))
        .build()
}

/// A unit struct whose [`utoipa::IntoResponses`] are the error responses of the listed
/// `(status, code)` slices, for `#[utoipa::path(responses(...))]`.
#[macro_export]
macro_rules! error_responses {
    ($(#[$meta:meta])* $vis:vis $name:ident = [$($list:expr),* $(,)?]) => {
        $(#[$meta])*
        $vis struct $name;
        impl $crate::openapi::__utoipa::IntoResponses for $name {
            fn responses() -> ::std::collections::BTreeMap<
                String,
                $crate::openapi::__utoipa::openapi::RefOr<
                    $crate::openapi::__utoipa::openapi::response::Response,
                >,
            > {
                $crate::openapi::error_responses(&[$(&$list[..]),*].concat())
            }
        }
    };
}

#[doc(hidden)]
pub use utoipa as __utoipa;

/// The write API's request headers besides authentication.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct WriteHeaders {
    /// 1 to 255 printable ASCII characters: a retry within 24 h with the same key answers the
    /// first response (with `Idempotent-Replayed: true`) and appends nothing.
    #[param(rename = "Idempotency-Key", pattern = "^[\\x21-\\x7E]{1,255}$")]
    idempotency_key: Option<String>,
    /// W3C trace context, continued into the events' Kafka headers.
    #[param(rename = "traceparent")]
    traceparent: Option<String>,
}

/// The query API's request headers besides authentication.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct ReadHeaders {
    /// A write's `X-Consistency-Token`: the read waits (bounded) until the projections behind
    /// the endpoint have applied it; `400 invalid_consistency_token` if it is not one.
    #[param(rename = "X-Consistency-Token")]
    consistency_token: Option<String>,
    /// An earlier answer's `ETag`: `304 Not Modified` without a body if it still holds.
    #[param(rename = "If-None-Match")]
    if_none_match: Option<String>,
}

/// A plain string response header.
pub fn string_header(description: &str) -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(description))
        .build()
}

/// Adds to `doc` what both documents share: its title and description, the error body, the
/// security schemes, and OpenAPI 3.1.
pub fn finish(
    mut doc: utoipa::openapi::OpenApi,
    title: &str,
    description: &str,
) -> utoipa::openapi::OpenApi {
    doc.info.title = title.to_owned();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.info.description = Some(description.to_owned());
    doc.info.license = None;
    doc.info.contact = None;
    let components = doc.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert(ErrorBody::name().into_owned(), ErrorBody::schema());
    components.add_security_scheme(
        TMA,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "Authorization",
            "`tma <initData>`: Telegram's `window.Telegram.WebApp.initData`, checked with the \
             bot token (or Telegram's signature); the request acts as the user it names",
        ))),
    );
    components.add_security_scheme(
        OPERATOR,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "`Bearer <SURGE_OPERATOR_TOKEN>`, for `/v1/admin/*` and `/v1/stats/*`",
                ))
                .build(),
        ),
    );
    doc
}

/// `GET /openapi.json`: `doc`, serialised once.
pub fn serve<S: Clone + Send + Sync + 'static>(
    doc: &utoipa::openapi::OpenApi,
) -> axum::routing::MethodRouter<S> {
    let json: Arc<str> = doc.to_json().expect("the document serialises").into();
    axum::routing::get(move || {
        let json = json.clone();
        async move {
            (
                [(header::CONTENT_TYPE, "application/json")],
                json.to_string(),
            )
                .into_response()
        }
    })
}

/// Every operation of `doc`, with its path and method.
pub fn operations(
    doc: &mut utoipa::openapi::OpenApi,
) -> impl Iterator<Item = (&str, &'static str, &mut utoipa::openapi::path::Operation)> {
    doc.paths.paths.iter_mut().flat_map(|(path, item)| {
        [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ]
        .into_iter()
        .filter_map(move |(method, op)| op.as_mut().map(|op| (path.as_str(), method, op)))
    })
}

/// Adds the header `name` to the `status` response of every operation that has one and that
/// `select` picks.
pub fn add_response_header(
    doc: &mut utoipa::openapi::OpenApi,
    status: &str,
    name: &str,
    header: &utoipa::openapi::Header,
    select: impl Fn(&str, &utoipa::openapi::path::Operation) -> bool,
) {
    for (path, _, op) in operations(doc) {
        if !select(path, op) {
            continue;
        }
        if let Some(RefOr::T(response)) = op.responses.responses.get_mut(status) {
            response.headers.insert(name.to_owned(), header.clone());
        }
    }
}

/// Whether `op` takes the parameter `name`.
pub fn has_parameter(op: &utoipa::openapi::path::Operation, name: &str) -> bool {
    op.parameters
        .iter()
        .flatten()
        .any(|p| p.name.eq_ignore_ascii_case(name))
}

/// For tests: panics unless `doc` is OpenAPI 3.1, every `$ref` resolves, it still has every
/// operation of `published` (`"GET /v1/me"`: the routes clients may rely on, so none is lost or
/// renamed unnoticed), and every operation outside `exempt` documents its refusals
/// ([`check_refusals`]). A new route needs no line here: the router registers each one with its
/// operation, so it cannot be served undocumented. `SURGE_OPENAPI_OUT=<file>` also writes the
/// document there.
pub fn check_document(doc: &mut utoipa::openapi::OpenApi, published: &[&str], exempt: &[&str]) {
    let json: serde_json::Value =
        serde_json::from_str(&doc.to_json().expect("the document serialises")).unwrap();
    assert!(json["openapi"].as_str().unwrap().starts_with("3.1"));
    check_references(&json);
    if let Ok(out) = std::env::var("SURGE_OPENAPI_OUT") {
        std::fs::write(out, doc.to_pretty_json().unwrap()).unwrap();
    }
    let routes: std::collections::BTreeSet<String> = operations(doc)
        .map(|(path, method, _)| format!("{} {path}", method.to_uppercase()))
        .collect();
    let missing: Vec<&str> = published
        .iter()
        .copied()
        .filter(|route| !routes.contains(*route))
        .collect();
    assert!(
        missing.is_empty(),
        "published routes missing from the document: {missing:?}"
    );
    check_refusals(doc, exempt);
}

/// For tests: panics unless every operation of `doc` outside `exempt` (paths that can refuse
/// nothing, such as health checks) documents a 4xx answer with [`ErrorBody`], and every error
/// response it documents has that body.
pub fn check_refusals(doc: &mut utoipa::openapi::OpenApi, exempt: &[&str]) {
    let error_body = RefOr::Ref(Ref::from_schema_name("ErrorBody"));
    for (path, method, op) in operations(doc) {
        let mut refusals = 0;
        for (status, response) in &op.responses.responses {
            let RefOr::T(response) = response else {
                panic!("{method} {path} {status}: not inline");
            };
            if !status.starts_with('4') && !status.starts_with('5') {
                continue;
            }
            if path == "/health/ready" && status == "503" {
                continue;
            }
            let json = response.content.get("application/json");
            let schema = json.and_then(|c| c.schema.as_ref());
            assert!(
                schema == Some(&error_body),
                "{method} {path} {status}: the error body is not ErrorBody"
            );
            if status.starts_with('4') {
                refusals += 1;
            }
        }
        assert!(
            refusals > 0 || exempt.contains(&path),
            "{method} {path} documents no 4xx refusal"
        );
    }
}

/// For tests: panics unless every `$ref` of the serialised document `json` names one of its
/// component schemas.
pub fn check_references(json: &serde_json::Value) {
    fn walk(value: &serde_json::Value, schemas: &serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(target)) = map.get("$ref") {
                    let name = target
                        .strip_prefix("#/components/schemas/")
                        .unwrap_or_else(|| panic!("unexpected $ref {target}"));
                    assert!(schemas.get(name).is_some(), "$ref {target} names no schema");
                }
                map.values().for_each(|v| walk(v, schemas));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, schemas)),
            _ => {}
        }
    }
    walk(json, &json["components"]["schemas"]);
}

#[cfg(test)]
mod tests {
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem, PathsBuilder};
    use utoipa::openapi::{OpenApi, OpenApiBuilder};

    fn one_route() -> OpenApi {
        let me = PathItem::new(HttpMethod::Get, OperationBuilder::new().build());
        OpenApiBuilder::new()
            .paths(PathsBuilder::new().path("/v1/me", me))
            .build()
    }

    #[test]
    fn a_document_with_its_published_routes_passes() {
        super::check_document(&mut one_route(), &["GET /v1/me"], &["/v1/me"]);
    }

    #[test]
    #[should_panic(expected = "published routes missing from the document: [\"GET /v1/feed\"]")]
    fn a_published_route_lost_from_the_document_fails() {
        super::check_document(
            &mut one_route(),
            &["GET /v1/me", "GET /v1/feed"],
            &["/v1/me"],
        );
    }
}
