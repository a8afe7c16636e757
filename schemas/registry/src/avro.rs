//! Parsing submitted schemas and deciding when two texts are "the same schema".
//!
//! Identity is a SHA-256 over apache-avro's serialisation of the parsed schema
//! with object keys sorted. Like Confluent (which compares Avro's
//! `Schema.toString()`), whitespace, key order and redundant namespaces do not
//! matter, but defaults, docs and aliases do: two schemas that differ only in a
//! field default are different versions, because they resolve differently. The
//! Parsing Canonical Form would drop those attributes, so it is not used.

use std::fmt::Write as _;

use apache_avro::Schema;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::Error;

/// A schema as submitted by a client, parsed and fingerprinted.
#[derive(Debug)]
pub(crate) struct Candidate {
    pub(crate) schema: Schema,
    /// The text as submitted; stored verbatim on first registration.
    pub(crate) text: String,
    pub(crate) fingerprint: String,
}

impl Candidate {
    /// Parses `text`; any failure is a 42201 for the client.
    pub(crate) fn parse(text: &str) -> Result<Self, Error> {
        let schema = Schema::parse_str(text).map_err(|e| Error::InvalidSchema(e.to_string()))?;
        let fingerprint = fingerprint(&schema)?;
        Ok(Self {
            schema,
            text: text.to_owned(),
            fingerprint,
        })
    }
}

/// Parses a schema read back from the database.
pub(crate) fn parse_stored(id: u32, text: &str) -> Result<Schema, Error> {
    Schema::parse_str(text).map_err(|e| Error::Corrupt(format!("stored schema {id}: {e}")))
}

fn fingerprint(schema: &Schema) -> Result<String, Error> {
    let json = serde_json::to_value(schema).map_err(|e| Error::InvalidSchema(e.to_string()))?;
    let mut normalized = String::new();
    write_sorted(&json, &mut normalized);
    Ok(hex::encode(Sha256::digest(normalized.as_bytes())))
}

/// Compact JSON with object keys in sorted order, whatever `serde_json`'s
/// map ordering feature is set to.
fn write_sorted(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}:", Value::String(key.clone()));
                write_sorted(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(item, out);
            }
            out.push(']');
        }
        scalar => {
            let _ = write!(out, "{scalar}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Candidate;

    #[test]
    fn whitespace_and_key_order_do_not_change_identity() {
        let a = Candidate::parse(
            r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]}"#,
        )
        .unwrap();
        let b = Candidate::parse(
            r#"{ "fields": [ {"type": "int", "name": "x"} ], "name": "A", "type": "record" }"#,
        )
        .unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
    }

    #[test]
    fn defaults_change_identity() {
        let a = Candidate::parse(
            r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]}"#,
        )
        .unwrap();
        let b = Candidate::parse(
            r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int","default":0}]}"#,
        )
        .unwrap();
        assert_ne!(a.fingerprint, b.fingerprint);
    }
}
