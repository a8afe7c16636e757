//! HTTP routes and handlers: request parsing and Confluent response shapes.
//!
//! Bodies are read as raw bytes and parsed as JSON whatever the content type
//! (`application/vnd.schemaregistry.v1+json`, `application/json` and
//! `application/octet-stream` are all seen in the wild). Every error response,
//! including axum's own rejections, carries Confluent's error JSON.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri, header};
use axum::middleware::map_response;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::compatibility::Level;
use crate::errors::{CONTENT_TYPE, error_response, json_response};
use crate::store::{Against, SubjectVersion};
use crate::{Error, Registry};

type Reply = Result<Response, Error>;
type Params = Query<HashMap<String, String>>;

/// The Confluent-compatible REST API over `registry`.
pub fn router(registry: Registry) -> Router {
    Router::new()
        .route("/", get(|| async { ok(json!({})) }))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup))
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(version))
        .route("/subjects/{subject}/versions/{version}/schema", get(raw))
        .route("/schemas/types", get(|| async { ok(json!(["AVRO"])) }))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/versions", get(versions_of_schema))
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compat_all),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compat_one),
        )
        .route(
            "/config",
            get(get_global).put(put_global).delete(delete_global),
        )
        .route(
            "/config/{subject}",
            get(get_subject).put(put_subject).delete(delete_subject),
        )
        .fallback(|uri: Uri| async move { Error::RouteNotFound(uri.path().to_owned()) })
        .layer(map_response(confluent_errors))
        .with_state(registry)
}

/// Body of register, lookup and compatibility requests.
#[derive(Debug, Deserialize)]
struct SchemaRequest {
    schema: Option<String>,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    references: Option<Vec<Value>>,
}

impl SchemaRequest {
    /// The schema text, after rejecting what this registry cannot serve.
    fn avro(body: &Bytes) -> Result<String, Error> {
        let request: SchemaRequest = parse_body(body)?;
        if let Some(kind) = request.schema_type.as_deref()
            && !kind.eq_ignore_ascii_case("AVRO")
        {
            return Err(Error::InvalidSchema(format!(
                "schemaType {kind} is not supported; only AVRO is supported"
            )));
        }
        if request.references.is_some_and(|r| !r.is_empty()) {
            return Err(Error::InvalidSchema(
                "schema references are not supported by this registry".to_owned(),
            ));
        }
        match request.schema {
            Some(schema) if !schema.trim().is_empty() => Ok(schema),
            _ => Err(Error::InvalidSchema("Empty schema".to_owned())),
        }
    }
}

#[derive(Debug, Deserialize)]
struct ConfigRequest {
    compatibility: Option<String>,
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: Option<String>,
}

impl ConfigRequest {
    fn level(body: &Bytes) -> Result<Level, Error> {
        let request: ConfigRequest = parse_body(body)?;
        let name = request.compatibility.or(request.compatibility_level);
        Ok(name.unwrap_or_default().parse()?)
    }
}

async fn register(State(r): State<Registry>, Path(subject): Path<String>, body: Bytes) -> Reply {
    let schema = SchemaRequest::avro(&body)?;
    let id = r.register(&subject, &schema).await?;
    Ok(ok(json!({ "id": id })))
}

async fn lookup(State(r): State<Registry>, Path(subject): Path<String>, body: Bytes) -> Reply {
    let schema = SchemaRequest::avro(&body)?;
    Ok(ok(subject_version_json(r.lookup(&subject, &schema).await?)))
}

async fn subjects(State(r): State<Registry>) -> Reply {
    Ok(ok(json!(r.subjects().await?)))
}

async fn versions(State(r): State<Registry>, Path(subject): Path<String>) -> Reply {
    Ok(ok(json!(r.versions(&subject).await?)))
}

async fn version(State(r): State<Registry>, Path(p): Path<(String, String)>) -> Reply {
    let found = r.version(&p.0, parse_version(&p.1)?).await?;
    Ok(ok(subject_version_json(found)))
}

/// The schema itself as the body, as Confluent does.
async fn raw(State(r): State<Registry>, Path(p): Path<(String, String)>) -> Reply {
    let found = r.version(&p.0, parse_version(&p.1)?).await?;
    Ok(json_response(StatusCode::OK, found.schema))
}

async fn schema_by_id(State(r): State<Registry>, Path(id): Path<String>) -> Reply {
    let (kind, schema) = r.schema_by_id(parse_id(&id)?).await?;
    if kind == "AVRO" {
        Ok(ok(json!({ "schema": schema })))
    } else {
        Ok(ok(json!({ "schema": schema, "schemaType": kind })))
    }
}

async fn versions_of_schema(State(r): State<Registry>, Path(id): Path<String>) -> Reply {
    let found = r.versions_of_schema(parse_id(&id)?).await?;
    let list: Vec<Value> = found
        .into_iter()
        .map(|(subject, version)| json!({ "subject": subject, "version": version }))
        .collect();
    Ok(ok(json!(list)))
}

async fn compat_all(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    Query(q): Params,
    body: Bytes,
) -> Reply {
    compatibility(r, &subject, Against::Level, &q, &body).await
}

async fn compat_one(
    State(r): State<Registry>,
    Path(p): Path<(String, String)>,
    Query(q): Params,
    body: Bytes,
) -> Reply {
    let against = Against::Version(parse_version(&p.1)?);
    compatibility(r, &p.0, against, &q, &body).await
}

async fn compatibility(
    r: Registry,
    subject: &str,
    against: Against,
    query: &HashMap<String, String>,
    body: &Bytes,
) -> Reply {
    let schema = SchemaRequest::avro(body)?;
    let reasons = r.test_compatibility(subject, against, &schema).await?;
    let mut reply = json!({ "is_compatible": reasons.is_empty() });
    if flag(query, "verbose") {
        reply["messages"] = json!(reasons);
    }
    Ok(ok(reply))
}

async fn get_global(State(r): State<Registry>) -> Reply {
    Ok(level_json(r.global_level().await?))
}

async fn put_global(State(r): State<Registry>, body: Bytes) -> Reply {
    let level = ConfigRequest::level(&body)?;
    r.set_global_level(level).await?;
    Ok(ok(json!({ "compatibility": level.as_str() })))
}

async fn delete_global(State(r): State<Registry>) -> Reply {
    Ok(level_json(r.delete_global_level().await?))
}

async fn get_subject(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    Query(q): Params,
) -> Reply {
    match r.subject_level(&subject).await? {
        Some(level) => Ok(level_json(level)),
        None if flag(&q, "defaultToGlobal") => Ok(level_json(r.global_level().await?)),
        None => Err(Error::SubjectConfigNotFound(subject)),
    }
}

async fn put_subject(State(r): State<Registry>, Path(subject): Path<String>, body: Bytes) -> Reply {
    let level = ConfigRequest::level(&body)?;
    r.set_subject_level(&subject, level).await?;
    Ok(ok(json!({ "compatibility": level.as_str() })))
}

async fn delete_subject(State(r): State<Registry>, Path(subject): Path<String>) -> Reply {
    match r.delete_subject_level(&subject).await? {
        Some(previous) => Ok(level_json(previous)),
        None => Err(Error::SubjectConfigNotFound(subject)),
    }
}

fn ok(value: Value) -> Response {
    json_response(StatusCode::OK, value.to_string())
}

fn level_json(level: Level) -> Response {
    ok(json!({ "compatibilityLevel": level.as_str() }))
}

fn subject_version_json(found: SubjectVersion) -> Value {
    json!({
        "subject": found.subject,
        "version": found.version,
        "id": found.id,
        "schema": found.schema,
    })
}

fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::BadRequest(format!("invalid JSON body: {e}")))
}

/// `latest` and `-1` mean the latest version (`None`).
fn parse_version(text: &str) -> Result<Option<u32>, Error> {
    if text.eq_ignore_ascii_case("latest") || text == "-1" {
        return Ok(None);
    }
    match text.parse::<i32>() {
        Ok(v) if v > 0 => Ok(u32::try_from(v).ok()),
        _ => Err(Error::InvalidVersion(text.to_owned())),
    }
}

fn parse_id(text: &str) -> Result<u32, Error> {
    text.parse()
        .map_err(|_| Error::RouteNotFound(format!("schema id {text}")))
}

fn flag(query: &HashMap<String, String>, name: &str) -> bool {
    query
        .get(name)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Rewrites error responses that are not already Confluent JSON (axum's
/// rejections, 405s) into `{"error_code": status, "message": ...}`.
async fn confluent_errors(response: Response) -> Response {
    let status = response.status();
    let ours = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == CONTENT_TYPE);
    if ours || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let mut message = String::from_utf8_lossy(&body).trim().to_owned();
    if message.is_empty() {
        message = status.canonical_reason().unwrap_or("error").to_owned();
    }
    error_response(status, u32::from(status.as_u16()), message)
}
