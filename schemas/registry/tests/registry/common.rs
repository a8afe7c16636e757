//! Shared fixtures: a throwaway PostgreSQL schema per test, and HTTP helpers.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use surge_schema_registry::{Registry, router};
use tower::ServiceExt;

fn database_url() -> String {
    std::env::var("SURGE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A uniquely named schema, dropped (with everything in it) on drop.
pub(crate) struct TestDb {
    pub(crate) schema: String,
}

impl TestDb {
    pub(crate) async fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let schema = format!(
            "reg_test_{}_{}_{}",
            std::process::id(),
            nanos,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = PgConnection::connect(&database_url()).await.unwrap();
        sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        Self { schema }
    }

    /// A new pool whose connections use this schema as search_path.
    pub(crate) async fn pool(&self) -> PgPool {
        let options = PgConnectOptions::from_str(&database_url())
            .unwrap()
            .options([("search_path", self.schema.as_str())]);
        PgPoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .unwrap()
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
        // Never hang a test run on a lock some leftover session still holds.
        let statement = format!(
            "SET lock_timeout = '20s'; DROP SCHEMA IF EXISTS {} CASCADE",
            self.schema
        );
        // Drop runs inside the test's runtime; use a separate thread and runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&database_url()).await?;
                sqlx::raw_sql(&statement).execute(&mut conn).await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}: {dropped:?}", self.schema);
        }
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
