//! An embedded schema registry speaking the Confluent Schema Registry REST API.
//!
//! Surge writes every Mini App event to Kafka as Avro in the Confluent wire
//! format (magic byte 0, 4-byte big-endian schema id, Avro binary body), so a
//! schema registry has to exist before the first event is produced. Real
//! Confluent/Redpanda/Apicurio registries cannot be installed everywhere Surge
//! runs (no Docker, no internet), so this crate provides the subset of the API
//! that clients actually use — notably the `schema_registry_converter` crate's
//! `AvroEncoder`/`AvroDecoder` — with Confluent's status codes and error codes.
//! It runs in-process in the `surge` binary by default and in tests; production
//! deployments may point Surge at a real registry instead.
//!
//! State lives in PostgreSQL so that yesterday's events still decode after a
//! restart. Several processes may serve the same database at once: versions
//! are allocated under a per-subject transaction-scoped advisory lock, and
//! schema ids come from an identity column guarded by a unique fingerprint.
//!
//! Served endpoints (Avro only, no schema references, no deletes):
//! - `POST /subjects/{subject}/versions`, `POST /subjects/{subject}` (lookup)
//! - `GET /subjects`, `GET /subjects/{subject}/versions`,
//!   `GET /subjects/{subject}/versions/{version|latest}[/schema]`
//! - `GET /schemas/ids/{id}`, `GET /schemas/ids/{id}/versions`, `GET /schemas/types`
//! - `POST /compatibility/subjects/{subject}/versions[/{version|latest}]`
//! - `GET|PUT|DELETE /config`, `GET|PUT|DELETE /config/{subject}`
//!
//! The global default compatibility level is `BACKWARD_TRANSITIVE` (Surge's
//! product contract: any consumer upgraded to the newest schema can replay the
//! whole topic), not Confluent's `BACKWARD`.

mod api;
mod avro;
pub mod compatibility;
mod errors;
mod server;
mod store;

pub use api::router;
pub use errors::Error;
pub use server::{EmbeddedRegistry, serve};

use sqlx::PgPool;

/// Handle to a registry stored in PostgreSQL. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Registry {
    pool: PgPool,
}

impl Registry {
    /// Creates the registry tables if missing and returns a handle.
    ///
    /// The DDL (`sql/schema.sql`) is idempotent and runs under an advisory
    /// lock, so concurrent processes may open the same database. Table names
    /// are unqualified and land in the pool's `search_path` schema.
    pub async fn open(pool: PgPool) -> Result<Self, Error> {
        store::create_tables(&pool).await?;
        Ok(Self { pool })
    }
}
