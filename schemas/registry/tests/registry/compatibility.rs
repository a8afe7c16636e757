//! The compatibility rules, without a database.

use std::slice::from_ref;

use apache_avro::Schema;
use surge_schema_registry::compatibility::{Level, check};

use crate::common::record;

fn parse(name: &str, fields: &[&str]) -> Schema {
    Schema::parse_str(&record(name, fields)).unwrap()
}

const A_INT: &str = r#"{"name":"a","type":"int"}"#;
const A_LONG: &str = r#"{"name":"a","type":"long"}"#;
const B_DEFAULT: &str = r#"{"name":"b","type":"string","default":""}"#;
const B_REQUIRED: &str = r#"{"name":"b","type":"string"}"#;

#[test]
fn adding_a_field_with_a_default_is_backward_compatible() {
    let old = parse("R", &[A_INT]);
    let new = parse("R", &[A_INT, B_DEFAULT]);
    assert_eq!(check(Level::Backward, &new, from_ref(&old)), Ok(()));
    assert_eq!(check(Level::Full, &new, &[old]), Ok(()));
}

#[test]
fn adding_a_field_without_a_default_is_not_backward_compatible() {
    let old = parse("R", &[A_INT]);
    let new = parse("R", &[A_INT, B_REQUIRED]);
    let reasons = check(Level::Backward, &new, from_ref(&old)).unwrap_err();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("'b'"), "{reasons:?}");
    // Old readers simply ignore the new field.
    assert_eq!(check(Level::Forward, &new, &[old]), Ok(()));
}

#[test]
fn removing_a_field_is_backward_but_not_forward_compatible() {
    let old = parse("R", &[A_INT, B_REQUIRED]);
    let new = parse("R", &[A_INT]);
    assert_eq!(check(Level::Backward, &new, from_ref(&old)), Ok(()));
    assert!(check(Level::Forward, &new, from_ref(&old)).is_err());
    assert!(check(Level::Full, &new, from_ref(&old)).is_err());
    // ...unless the old readers have a default for it.
    let old_with_default = parse("R", &[A_INT, B_DEFAULT]);
    assert_eq!(check(Level::Full, &new, &[old_with_default]), Ok(()));
}

#[test]
fn int_to_long_is_backward_compatible_and_long_to_int_is_not() {
    let int = parse("R", &[A_INT]);
    let long = parse("R", &[A_LONG]);
    assert_eq!(check(Level::Backward, &long, from_ref(&int)), Ok(()));
    let reasons = check(Level::Backward, &int, from_ref(&long)).unwrap_err();
    assert!(reasons[0].contains("'a'"), "{reasons:?}");
    // int -> long cannot be read by the old int reader.
    assert!(check(Level::Forward, &long, &[int]).is_err());
}

#[test]
fn transitive_levels_check_every_version_and_plain_levels_only_the_latest() {
    let v1 = parse("R", &[A_INT]);
    let v2 = parse("R", &[]);
    let v3 = parse("R", &[r#"{"name":"a","type":"string","default":""}"#]);
    let existing = [v1, v2];
    assert_eq!(check(Level::Backward, &v3, &existing), Ok(()));
    let reasons = check(Level::BackwardTransitive, &v3, &existing).unwrap_err();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("version 1"), "{reasons:?}");
    assert!(check(Level::FullTransitive, &v3, &existing).is_err());
    assert_eq!(check(Level::None, &v3, &existing), Ok(()));
}

#[test]
fn removing_an_enum_symbol_is_rejected_even_though_avro_calls_it_partial() {
    let enum_schema = |symbols: &str| {
        Schema::parse_str(&format!(
            r#"{{"type":"enum","name":"Color","symbols":[{symbols}]}}"#
        ))
        .unwrap()
    };
    let old = enum_schema(r#""RED","GREEN","BLUE""#);
    let new = enum_schema(r#""RED","GREEN""#);
    assert!(check(Level::Backward, &new, from_ref(&old)).is_err());
    assert_eq!(check(Level::Forward, &new, &[old]), Ok(()));
}

#[test]
fn renaming_the_record_is_incompatible() {
    let old = parse("R", &[A_INT]);
    let new = parse("S", &[A_INT]);
    assert!(check(Level::Backward, &new, &[old]).is_err());
}

#[test]
fn no_existing_versions_is_always_compatible() {
    for level in Level::ALL {
        assert_eq!(check(level, &parse("R", &[A_INT]), &[]), Ok(()));
    }
}

#[test]
fn levels_parse_and_print_as_confluent_spells_them() {
    for level in Level::ALL {
        assert_eq!(level.to_string().parse::<Level>(), Ok(level));
    }
    assert_eq!(
        "full_transitive".parse::<Level>(),
        Ok(Level::FullTransitive)
    );
    assert_eq!(Level::BackwardTransitive.to_string(), "BACKWARD_TRANSITIVE");
    assert!("SIDEWAYS".parse::<Level>().is_err());
}
