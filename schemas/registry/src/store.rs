//! Registry operations over PostgreSQL. SQL lives in `sql/*.sql`.
//!
//! Concurrency: registration runs in one transaction that first takes a
//! transaction-scoped advisory lock on the subject, so version numbers are
//! allocated gaplessly even with several processes. The global schema id comes
//! from an identity column; the unique fingerprint plus `ON CONFLICT DO
//! NOTHING` makes two subjects registering the same schema at once share it.

use apache_avro::Schema;
use sqlx::{PgConnection, PgPool};

use crate::avro::{Candidate, parse_stored};
use crate::compatibility::{Level, check_versions};
use crate::{Error, Registry};

/// The global level when none was configured: Surge's product contract.
pub(crate) const DEFAULT_LEVEL: Level = Level::BackwardTransitive;

const SCHEMA: &str = include_str!("../sql/schema.sql");
const LOCK_DDL: &str = include_str!("../sql/lock_ddl.sql");
const LOCK_SUBJECT: &str = include_str!("../sql/lock_subject.sql");
const SUBJECT_VERSIONS: &str = include_str!("../sql/subject_versions.sql");
const SUBJECT_VERSION: &str = include_str!("../sql/subject_version.sql");
const VERSION_NUMBERS: &str = include_str!("../sql/version_numbers.sql");
const LOOKUP: &str = include_str!("../sql/lookup.sql");
const SCHEMA_ID_BY_FINGERPRINT: &str = include_str!("../sql/schema_id_by_fingerprint.sql");
const INSERT_SCHEMA: &str = include_str!("../sql/insert_schema.sql");
const INSERT_VERSION: &str = include_str!("../sql/insert_version.sql");
const SCHEMA_BY_ID: &str = include_str!("../sql/schema_by_id.sql");
const VERSIONS_OF_SCHEMA: &str = include_str!("../sql/versions_of_schema.sql");
const SUBJECTS: &str = include_str!("../sql/subjects.sql");
const SUBJECT_EXISTS: &str = include_str!("../sql/subject_exists.sql");
const SUBJECT_CONFIG: &str = include_str!("../sql/subject_config.sql");
const PUT_SUBJECT_CONFIG: &str = include_str!("../sql/put_subject_config.sql");
const DELETE_SUBJECT_CONFIG: &str = include_str!("../sql/delete_subject_config.sql");
const GLOBAL_CONFIG: &str = include_str!("../sql/global_config.sql");
const PUT_GLOBAL_CONFIG: &str = include_str!("../sql/put_global_config.sql");
const DELETE_GLOBAL_CONFIG: &str = include_str!("../sql/delete_global_config.sql");

/// One version of a subject.
#[derive(Debug, Clone)]
pub(crate) struct SubjectVersion {
    pub(crate) subject: String,
    pub(crate) version: u32,
    pub(crate) id: u32,
    pub(crate) schema: String,
}

/// Which existing versions a compatibility test compares against.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Against {
    /// What registration would check, per the subject's level.
    Level,
    /// One version (`None` = latest), in the level's direction(s).
    Version(Option<u32>),
}

pub(crate) async fn create_tables(pool: &PgPool) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(LOCK_DDL).execute(&mut *tx).await?;
    sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// `(version, id, fingerprint, schema_text)` rows of a subject, oldest first.
type VersionRow = (i32, i32, String, String);

impl Registry {
    /// Registers `text` under `subject`; returns the global schema id.
    pub(crate) async fn register(&self, subject: &str, text: &str) -> Result<u32, Error> {
        let candidate = Candidate::parse(text)?;
        let mut tx = self.pool.begin().await?;
        // End the transaction explicitly either way: a dropped one only rolls
        // back (and releases the subject lock) when its connection is next used.
        match register_in(&mut tx, subject, &candidate).await {
            Ok(Registered::New(id)) => {
                tx.commit().await?;
                Ok(id)
            }
            Ok(Registered::Existing(id)) => {
                tx.rollback().await?;
                Ok(id)
            }
            Err(error) => {
                if let Err(rollback) = tx.rollback().await {
                    tracing::warn!(error = %rollback, "rollback after failed registration");
                }
                Err(error)
            }
        }
    }

    /// Finds `text` among the versions of `subject`.
    pub(crate) async fn lookup(&self, subject: &str, text: &str) -> Result<SubjectVersion, Error> {
        let candidate = Candidate::parse(text)?;
        let row: Option<(i32, i32, String)> = sqlx::query_as(LOOKUP)
            .bind(subject)
            .bind(&candidate.fingerprint)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(subject_version(subject, row)),
            None if self.subject_exists(subject).await? => Err(Error::SchemaNotFound(None)),
            None => Err(Error::SubjectNotFound(subject.to_owned())),
        }
    }

    /// `(schema_type, schema_text)` of a global id.
    pub(crate) async fn schema_by_id(&self, id: u32) -> Result<(String, String), Error> {
        let row: Option<(String, String)> = sqlx::query_as(SCHEMA_BY_ID)
            .bind(to_i32(id).ok_or(Error::SchemaNotFound(Some(id)))?)
            .fetch_optional(&self.pool)
            .await?;
        row.ok_or(Error::SchemaNotFound(Some(id)))
    }

    /// Every `(subject, version)` that uses a global id.
    pub(crate) async fn versions_of_schema(&self, id: u32) -> Result<Vec<(String, u32)>, Error> {
        self.schema_by_id(id).await?;
        let rows: Vec<(String, i32)> = sqlx::query_as(VERSIONS_OF_SCHEMA)
            .bind(to_i32(id))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(s, v)| (s, to_u32(v))).collect())
    }

    pub(crate) async fn subjects(&self) -> Result<Vec<String>, Error> {
        let rows: Vec<(String,)> = sqlx::query_as(SUBJECTS).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|(s,)| s).collect())
    }

    pub(crate) async fn versions(&self, subject: &str) -> Result<Vec<u32>, Error> {
        let rows: Vec<(i32,)> = sqlx::query_as(VERSION_NUMBERS)
            .bind(subject)
            .fetch_all(&self.pool)
            .await?;
        if rows.is_empty() {
            return Err(Error::SubjectNotFound(subject.to_owned()));
        }
        Ok(rows.into_iter().map(|(v,)| to_u32(v)).collect())
    }

    /// One version of a subject; `None` = latest.
    pub(crate) async fn version(
        &self,
        subject: &str,
        version: Option<u32>,
    ) -> Result<SubjectVersion, Error> {
        let row: Option<(i32, i32, String)> = sqlx::query_as(SUBJECT_VERSION)
            .bind(subject)
            .bind(version.and_then(to_i32))
            .fetch_optional(&self.pool)
            .await?;
        match (row, version) {
            (Some(row), _) => Ok(subject_version(subject, row)),
            (None, Some(v)) if self.subject_exists(subject).await? => {
                Err(Error::VersionNotFound(v.to_string()))
            }
            (None, _) => Err(Error::SubjectNotFound(subject.to_owned())),
        }
    }

    /// Reasons `text` is incompatible (empty = compatible).
    pub(crate) async fn test_compatibility(
        &self,
        subject: &str,
        against: Against,
        text: &str,
    ) -> Result<Vec<String>, Error> {
        let candidate = Candidate::parse(text)?;
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<VersionRow> = sqlx::query_as(SUBJECT_VERSIONS)
            .bind(subject)
            .fetch_all(&mut *conn)
            .await?;
        let level = effective_level(&mut conn, subject).await?;
        let selected = match against {
            Against::Level if level.transitive() => &rows[..],
            Against::Level => &rows[rows.len().saturating_sub(1)..],
            _ if rows.is_empty() => return Err(Error::SubjectNotFound(subject.to_owned())),
            Against::Version(None) => &rows[rows.len() - 1..],
            Against::Version(Some(v)) => {
                let index = rows.iter().position(|r| i64::from(r.0) == i64::from(v));
                let index = index.ok_or_else(|| Error::VersionNotFound(v.to_string()))?;
                &rows[index..=index]
            }
        };
        check(level, &candidate.schema, selected)
    }

    /// The global level, or [`DEFAULT_LEVEL`] if never set.
    pub(crate) async fn global_level(&self) -> Result<Level, Error> {
        let mut conn = self.pool.acquire().await?;
        global_level(&mut conn).await
    }

    pub(crate) async fn set_global_level(&self, level: Level) -> Result<(), Error> {
        sqlx::query(PUT_GLOBAL_CONFIG)
            .bind(level.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Resets the global level to the default; returns the previous one.
    pub(crate) async fn delete_global_level(&self) -> Result<Level, Error> {
        let row: Option<(String,)> = sqlx::query_as(DELETE_GLOBAL_CONFIG)
            .fetch_optional(&self.pool)
            .await?;
        row.map_or(Ok(DEFAULT_LEVEL), |(l,)| parse_level(&l))
    }

    pub(crate) async fn subject_level(&self, subject: &str) -> Result<Option<Level>, Error> {
        let mut conn = self.pool.acquire().await?;
        subject_level(&mut conn, subject).await
    }

    pub(crate) async fn set_subject_level(&self, subject: &str, level: Level) -> Result<(), Error> {
        sqlx::query(PUT_SUBJECT_CONFIG)
            .bind(subject)
            .bind(level.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes the subject's override; returns it if there was one.
    pub(crate) async fn delete_subject_level(&self, subject: &str) -> Result<Option<Level>, Error> {
        let row: Option<(String,)> = sqlx::query_as(DELETE_SUBJECT_CONFIG)
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|(l,)| parse_level(&l)).transpose()
    }

    async fn subject_exists(&self, subject: &str) -> Result<bool, Error> {
        let (exists,): (bool,) = sqlx::query_as(SUBJECT_EXISTS)
            .bind(subject)
            .fetch_one(&self.pool)
            .await?;
        Ok(exists)
    }
}

/// What a registration did.
enum Registered {
    New(u32),
    Existing(u32),
}

/// The body of [`Registry::register`], inside its transaction.
async fn register_in(
    tx: &mut PgConnection,
    subject: &str,
    candidate: &Candidate,
) -> Result<Registered, Error> {
    sqlx::query(LOCK_SUBJECT)
        .bind(subject)
        .execute(&mut *tx)
        .await?;
    let rows: Vec<VersionRow> = sqlx::query_as(SUBJECT_VERSIONS)
        .bind(subject)
        .fetch_all(&mut *tx)
        .await?;
    if let Some(row) = rows.iter().find(|r| r.2 == candidate.fingerprint) {
        return Ok(Registered::Existing(to_u32(row.1)));
    }
    let level = effective_level(tx, subject).await?;
    let against = if level.transitive() {
        &rows[..]
    } else {
        &rows[rows.len().saturating_sub(1)..]
    };
    let details = check(level, &candidate.schema, against)?;
    if !details.is_empty() {
        return Err(Error::Incompatible {
            subject: subject.to_owned(),
            details,
        });
    }
    let id = schema_id(tx, candidate).await?;
    let version = rows.last().map_or(1, |row| row.0 + 1);
    sqlx::query(INSERT_VERSION)
        .bind(subject)
        .bind(version)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(Registered::New(to_u32(id)))
}

/// Reasons `candidate` is incompatible with stored rows (empty = compatible).
fn check(level: Level, candidate: &Schema, rows: &[VersionRow]) -> Result<Vec<String>, Error> {
    if level == Level::None || rows.is_empty() {
        return Ok(Vec::new());
    }
    let parsed = rows
        .iter()
        .map(|(version, id, _, text)| Ok((to_u32(*version), parse_stored(to_u32(*id), text)?)))
        .collect::<Result<Vec<(u32, Schema)>, Error>>()?;
    let existing: Vec<(u32, &Schema)> = parsed.iter().map(|(v, s)| (*v, s)).collect();
    Ok(check_versions(level, candidate, &existing)
        .err()
        .unwrap_or_default())
}

/// The id of `candidate`, inserting it if no subject has it yet.
async fn schema_id(conn: &mut PgConnection, candidate: &Candidate) -> Result<i32, Error> {
    let by_fingerprint = sqlx::query_as::<_, (i32,)>(SCHEMA_ID_BY_FINGERPRINT);
    if let Some((id,)) = by_fingerprint
        .bind(&candidate.fingerprint)
        .fetch_optional(&mut *conn)
        .await?
    {
        return Ok(id);
    }
    let inserted: Option<(i32,)> = sqlx::query_as(INSERT_SCHEMA)
        .bind(&candidate.fingerprint)
        .bind(&candidate.text)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some((id,)) = inserted {
        return Ok(id);
    }
    // A concurrent transaction committed the same schema; read-committed sees it now.
    let (id,): (i32,) = sqlx::query_as(SCHEMA_ID_BY_FINGERPRINT)
        .bind(&candidate.fingerprint)
        .fetch_one(&mut *conn)
        .await?;
    Ok(id)
}

async fn effective_level(conn: &mut PgConnection, subject: &str) -> Result<Level, Error> {
    match subject_level(conn, subject).await? {
        Some(level) => Ok(level),
        None => global_level(conn).await,
    }
}

async fn subject_level(conn: &mut PgConnection, subject: &str) -> Result<Option<Level>, Error> {
    let row: Option<(String,)> = sqlx::query_as(SUBJECT_CONFIG)
        .bind(subject)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|(l,)| parse_level(&l)).transpose()
}

async fn global_level(conn: &mut PgConnection) -> Result<Level, Error> {
    let row: Option<(String,)> = sqlx::query_as(GLOBAL_CONFIG)
        .fetch_optional(&mut *conn)
        .await?;
    row.map_or(Ok(DEFAULT_LEVEL), |(l,)| parse_level(&l))
}

fn parse_level(stored: &str) -> Result<Level, Error> {
    stored
        .parse()
        .map_err(|_| Error::Corrupt(format!("stored compatibility level {stored:?}")))
}

fn subject_version(subject: &str, (version, id, schema): (i32, i32, String)) -> SubjectVersion {
    SubjectVersion {
        subject: subject.to_owned(),
        version: to_u32(version),
        id: to_u32(id),
        schema,
    }
}

/// Ids and versions are positive `INTEGER`s in the database.
fn to_u32(value: i32) -> u32 {
    u32::try_from(value).unwrap_or_default()
}

fn to_i32(value: u32) -> Option<i32> {
    i32::try_from(value).ok()
}
