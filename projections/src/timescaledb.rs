//! Where the TimescaleDB extension lives in the connected database.
//!
//! The extension's functions are in the schema it was created in (`public` in the TimescaleDB
//! image), which is not on Surge's search path: every deployment and every test runs in its own
//! schema (`SURGE_DATABASE_SCHEMA`). So SQL that calls them writes
//! `{timescaledb}.create_hypertable(...)`, and [`TimescaleDb::render`] puts the extension's
//! schema there, looked up once from `pg_extension`.

use sqlx::PgConnection;

/// The placeholder projection SQL writes before a TimescaleDB function.
pub const PLACEHOLDER: &str = "{timescaledb}";

/// The TimescaleDB extension, installed in `schema`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimescaleDb {
    schema: String,
}

impl TimescaleDb {
    /// The extension as installed in the database `conn` is connected to; `None` when it is not.
    pub async fn find(conn: &mut PgConnection) -> Result<Option<TimescaleDb>, sqlx::Error> {
        let schema: Option<String> = sqlx::query_scalar(
            "SELECT n.nspname::text FROM pg_extension e \
             JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'timescaledb'",
        )
        .fetch_optional(conn)
        .await?;
        Ok(schema.map(|schema| TimescaleDb { schema }))
    }

    /// The extension as if installed in `schema` (for rendering SQL without a database).
    pub fn in_schema(schema: &str) -> TimescaleDb {
        TimescaleDb {
            schema: schema.to_owned(),
        }
    }

    /// The schema as a quoted SQL identifier, e.g. `"public"`.
    pub fn schema_ident(&self) -> String {
        format!("\"{}\"", self.schema.replace('"', "\"\""))
    }

    /// `sql` with every [`PLACEHOLDER`] replaced by the extension's quoted schema.
    pub fn render(&self, sql: &str) -> String {
        sql.replace(PLACEHOLDER, &self.schema_ident())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_placeholder_becomes_the_quoted_schema() {
        let ts = TimescaleDb::in_schema("public");
        assert_eq!(
            ts.render("SELECT {timescaledb}.time_bucket(x), {timescaledb}.drop_chunks(y)"),
            r#"SELECT "public".time_bucket(x), "public".drop_chunks(y)"#
        );
    }

    #[test]
    fn a_schema_that_needs_quoting_stays_one_identifier() {
        let ts = TimescaleDb::in_schema(r#"Ext "x""#);
        assert_eq!(ts.schema_ident(), r#""Ext ""x""""#);
    }
}
