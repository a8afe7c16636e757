//! Shared fixtures: a throwaway PostgreSQL schema per test, and HTTP helpers.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use sqlx::PgPool;
use surge_schema_registry::{Registry, router};
use tower::ServiceExt;

/// A uniquely named schema, dropped (with everything in it) on drop.
pub(crate) struct TestDb {
    pub(crate) schema: String,
}

impl TestDb {
    pub(crate) async fn new() -> Self {
        let schema = surge_testkit::unique_id("reg_test_");
        surge_testkit::create_schema(&schema).await;
        Self { schema }
    }

    /// A new pool whose connections use this schema as search_path.
    pub(crate) async fn pool(&self) -> PgPool {
        surge_testkit::pg_pool(&self.schema).await
    }

    /// A registry on a fresh pool on this schema.
    pub(crate) async fn registry(&self) -> Registry {
        Registry::open(self.pool().await).await.unwrap()
    }

    /// The router of a registry on a fresh pool on this schema.
    pub(crate) async fn app(&self) -> Router {
        router(self.registry().await)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        surge_testkit::drop_schema_blocking(&self.schema);
    }
}

/// Sends one request through the router; returns the status and JSON body
/// (a JSON string holding the text when the body is not JSON).
pub(crate) async fn call(
    app: &Router,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let content_type = "application/vnd.schemaregistry.v1+json";
    call_raw(app, method, path, content_type, body.map(|b| b.to_string())).await
}

pub(crate) async fn call_raw(
    app: &Router,
    method: Method,
    path: &str,
    content_type: &str,
    body: Option<String>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if !content_type.is_empty() {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    let request = request
        .body(body.map_or_else(Body::empty, Body::from))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

pub(crate) async fn get(app: &Router, path: &str) -> (StatusCode, Value) {
    call(app, Method::GET, path, None).await
}

pub(crate) async fn post(app: &Router, path: &str, body: Value) -> (StatusCode, Value) {
    call(app, Method::POST, path, Some(body)).await
}

/// Registers `schema` under `subject`, expecting success; returns the id.
pub(crate) async fn register(app: &Router, subject: &str, schema: &str) -> u64 {
    let (status, body) = post(
        app,
        &format!("/subjects/{subject}/versions"),
        serde_json::json!({ "schema": schema }),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "registering under {subject}: {body}"
    );
    body["id"].as_u64().unwrap()
}

/// A record schema `name` with the given field JSON objects.
pub(crate) fn record(name: &str, fields: &[&str]) -> String {
    format!(
        r#"{{"type":"record","name":"{name}","namespace":"surge.test","fields":[{}]}}"#,
        fields.join(",")
    )
}
