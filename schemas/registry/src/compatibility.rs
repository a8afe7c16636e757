//! Compatibility levels and the check a new schema version must pass.
//!
//! The levels and their meaning are Confluent's. The schema-resolution rules
//! themselves are apache-avro's [`SchemaCompatibility::can_read`]; this module
//! only decides which (writer, reader) pairs to test. A pair that apache-avro
//! calls only *partially* compatible (some enum symbols or union branches the
//! reader cannot resolve) is rejected, as Confluent's Java checker does.

use std::fmt;
use std::str::FromStr;

use apache_avro::Schema;
use apache_avro::error::CompatibilityError;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};

/// A Confluent compatibility level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// Any change is accepted.
    None,
    /// The new schema can read data written with the latest version.
    Backward,
    /// The new schema can read data written with every version.
    BackwardTransitive,
    /// The latest version can read data written with the new schema.
    Forward,
    /// Every version can read data written with the new schema.
    ForwardTransitive,
    /// Backward and forward against the latest version.
    Full,
    /// Backward and forward against every version.
    FullTransitive,
}

impl Level {
    /// All levels, in Confluent's documentation order.
    pub const ALL: [Level; 7] = [
        Level::None,
        Level::Backward,
        Level::BackwardTransitive,
        Level::Forward,
        Level::ForwardTransitive,
        Level::Full,
        Level::FullTransitive,
    ];

    /// The name as Confluent spells it, e.g. `BACKWARD_TRANSITIVE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "NONE",
            Level::Backward => "BACKWARD",
            Level::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Level::Forward => "FORWARD",
            Level::ForwardTransitive => "FORWARD_TRANSITIVE",
            Level::Full => "FULL",
            Level::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn backward(self) -> bool {
        matches!(
            self,
            Level::Backward | Level::BackwardTransitive | Level::Full | Level::FullTransitive
        )
    }

    fn forward(self) -> bool {
        matches!(
            self,
            Level::Forward | Level::ForwardTransitive | Level::Full | Level::FullTransitive
        )
    }

    pub(crate) fn transitive(self) -> bool {
        matches!(
            self,
            Level::BackwardTransitive | Level::ForwardTransitive | Level::FullTransitive
        )
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown compatibility level name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "Invalid compatibility level '{0}'. Valid values are none, backward, forward, full, \
     backward_transitive, forward_transitive, and full_transitive"
)]
pub struct UnknownLevel(pub String);

impl FromStr for Level {
    type Err = UnknownLevel;

    /// Case-insensitive, like Confluent.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownLevel(s.to_owned()))
    }
}

/// Checks `candidate` against the `existing` versions of a subject (oldest
/// first) under `level`. Non-transitive levels look at the last (latest) entry
/// only. `Err` lists human-readable reasons, naming versions as positions in
/// `existing` counted from 1.
pub fn check(level: Level, candidate: &Schema, existing: &[Schema]) -> Result<(), Vec<String>> {
    let numbered: Vec<(u32, &Schema)> = (1u32..).zip(existing).collect();
    check_versions(level, candidate, &numbered)
}

/// Like [`check`], with the caller's version numbers for the messages.
pub(crate) fn check_versions(
    level: Level,
    candidate: &Schema,
    existing: &[(u32, &Schema)],
) -> Result<(), Vec<String>> {
    let against = if level.transitive() {
        existing
    } else {
        existing.last().map(std::slice::from_ref).unwrap_or(&[])
    };
    let mut reasons = Vec::new();
    for &(version, old) in against {
        if level.backward()
            && let Err(reason) = can_read(old, candidate)
        {
            reasons.push(format!(
                "{level}: the new schema cannot read data written with version {version}: {reason}"
            ));
        }
        if level.forward()
            && let Err(reason) = can_read(candidate, old)
        {
            reasons.push(format!(
                "{level}: version {version} cannot read data written with the new schema: {reason}"
            ));
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// Whether data written with `writer` can always be read with `reader`.
fn can_read(writer: &Schema, reader: &Schema) -> Result<(), String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Compatibility::Full) => Ok(()),
        Ok(Compatibility::Partial) => Err("some values (enum symbols or union branches) \
             of the writer schema cannot be resolved by the reader schema"
            .to_owned()),
        Err(error) => Err(describe(&error)),
    }
}

/// The error and its causes on one line, without apache-avro's multi-line
/// dumps of whole schemas.
fn describe(error: &CompatibilityError) -> String {
    match error {
        CompatibilityError::WrongType {
            writer_schema_type,
            reader_schema_type,
        } => format!(
            "incompatible types: writer has {}, reader has {}",
            kind(writer_schema_type),
            kind(reader_schema_type)
        ),
        CompatibilityError::FieldTypeMismatch(field, cause) => {
            format!(
                "field '{field}' has an incompatible type: {}",
                describe(cause)
            )
        }
        other => other.to_string(),
    }
}

/// The variant name of a `{:#?}`-formatted schema, e.g. `Record` or `Long`.
fn kind(debug: &str) -> &str {
    let end = debug
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(debug.len());
    &debug[..end]
}
