//! An incompatible change to `avro/` fails the build's tests: every current schema must read data
//! written with every released version of it (BACKWARD_TRANSITIVE, the registry's rule), checked
//! by the same code the embedded registry uses.
//!
//! Releasing a schema version: copy `avro/<name>.avsc` to `avro/released/<name>/v<N+1>.avsc`.

use std::fs;
use std::path::Path;

use apache_avro::Schema;
use surge_schema_registry::compatibility::{Level, check};
use surge_schemas::EventType;

fn file_stem(event_type: EventType) -> String {
    // SessionStarted -> session_started
    let mut out = String::new();
    for (i, c) in event_type.name().chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn released(event_type: EventType) -> Vec<Schema> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("avro/released")
        .join(file_stem(event_type));
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; every event type needs a released version",
                dir.display()
            )
        })
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort_by_key(|p| {
        let stem = p.file_stem().unwrap().to_str().unwrap().to_owned();
        stem.trim_start_matches('v')
            .parse::<u32>()
            .expect("released files are named vN.avsc")
    });
    files
        .iter()
        .map(|p| Schema::parse_str(&fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

#[test]
fn every_current_schema_reads_every_released_version() {
    for &event_type in EventType::ALL {
        let history = released(event_type);
        assert!(
            !history.is_empty(),
            "{} has no released version",
            event_type.name()
        );
        if let Err(reasons) = check(Level::BackwardTransitive, event_type.schema(), &history) {
            panic!(
                "{} is not BACKWARD_TRANSITIVE compatible: {reasons:?}",
                event_type.name()
            );
        }
    }
}

#[test]
fn the_check_catches_a_breaking_change() {
    // Guards the test above against passing vacuously: a field added without a default breaks.
    let current = EventType::TapsSubmitted.schema_json();
    let breaking = current.replacen(
        r#"{"name": "count""#,
        r#"{"name": "multiplier", "type": "int"},
    {"name": "count""#,
        1,
    );
    assert_ne!(breaking, current);
    let breaking = Schema::parse_str(&breaking).unwrap();
    assert!(
        check(
            Level::BackwardTransitive,
            &breaking,
            &released(EventType::TapsSubmitted)
        )
        .is_err()
    );
}
