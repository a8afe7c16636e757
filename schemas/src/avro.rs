//! Mapping between [`Event`] and Avro values: the envelope fields are flattened into each record
//! beside the payload's own fields, as the `.avsc` files declare them.

use std::sync::OnceLock;

use apache_avro::Schema;
use apache_avro::types::Value;
use uuid::Uuid;

use crate::events::{Envelope, Event, EventType, Payload};
use crate::{Error, Result};

const ENVELOPE_FIELDS: [&str; 4] = ["event_id", "user_id", "occurred_at", "recorded_at"];

impl EventType {
    /// The parsed schema; parsed once. The `.avsc` files are checked by this crate's tests, so a
    /// parse failure here is a build defect, not a runtime condition.
    pub fn schema(self) -> &'static Schema {
        static SCHEMAS: OnceLock<Vec<Schema>> = OnceLock::new();
        let all = SCHEMAS.get_or_init(|| {
            EventType::ALL
                .iter()
                .map(|t| Schema::parse_str(t.schema_json()).expect("avro/*.avsc parse"))
                .collect()
        });
        let index = EventType::ALL
            .iter()
            .position(|t| *t == self)
            .expect("listed");
        &all[index]
    }
}

/// The event as an Avro record value, fields in schema order.
pub fn to_value(event: &Event) -> Result<Value> {
    let Envelope {
        event_id,
        user_id,
        occurred_at,
        recorded_at,
    } = &event.envelope;
    let mut fields = vec![
        ("event_id".to_owned(), Value::Uuid(*event_id)),
        ("user_id".to_owned(), Value::Long(*user_id)),
        (
            "occurred_at".to_owned(),
            Value::TimestampMillis(*occurred_at),
        ),
        (
            "recorded_at".to_owned(),
            Value::TimestampMillis(*recorded_at),
        ),
    ];
    match event.payload.to_avro().map_err(contract)? {
        Value::Record(payload) => fields.extend(payload),
        other => {
            return Err(Error::Contract(format!(
                "payload is not a record: {other:?}"
            )));
        }
    }
    // Resolving against the schema turns Options into unions and checks every field.
    Value::Record(fields)
        .resolve(event.event_type().schema())
        .map_err(contract)
}

/// Reads an event of a known type back from a decoded Avro record.
pub fn from_value(event_type: EventType, value: Value) -> Result<Event> {
    let Value::Record(fields) = value else {
        return Err(Error::Contract(format!(
            "{} is not a record",
            event_type.name()
        )));
    };
    let (envelope, payload): (Vec<_>, Vec<_>) = fields
        .into_iter()
        .partition(|(name, _)| ENVELOPE_FIELDS.contains(&name.as_str()));
    let field = |name: &str| {
        envelope
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| Error::Contract(format!("missing envelope field {name}")))
    };
    let envelope = Envelope {
        event_id: uuid_of(field("event_id")?)?,
        user_id: long_of(field("user_id")?)?,
        occurred_at: long_of(field("occurred_at")?)?,
        recorded_at: long_of(field("recorded_at")?)?,
    };
    let payload = Payload::from_avro(event_type, Value::Record(payload)).map_err(contract)?;
    Ok(Event { envelope, payload })
}

fn uuid_of(value: &Value) -> Result<Uuid> {
    match value {
        Value::Uuid(id) => Ok(*id),
        Value::String(s) => Uuid::parse_str(s).map_err(contract),
        other => Err(Error::Contract(format!("event_id is {other:?}"))),
    }
}

fn long_of(value: &Value) -> Result<i64> {
    match value {
        Value::Long(n) | Value::TimestampMillis(n) => Ok(*n),
        other => Err(Error::Contract(format!("expected a long, got {other:?}"))),
    }
}

fn contract(e: impl std::fmt::Display) -> Error {
    Error::Contract(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::*;

    /// One event of every type, each with its sample payload.
    pub(crate) fn samples() -> Vec<Event> {
        EventType::ALL
            .iter()
            .zip(1..)
            .map(|(event_type, user_id)| Event {
                envelope: Envelope {
                    event_id: Uuid::now_v7(),
                    user_id,
                    occurred_at: 1_732_000_000_123,
                    recorded_at: 1_732_000_000_456,
                },
                payload: event_type.sample(),
            })
            .collect()
    }

    /// A sample the write API would refuse would make the round trip prove nothing about
    /// real events.
    #[test]
    fn every_sample_follows_its_rules() {
        for event in samples() {
            assert_eq!(
                crate::rules::check(&event.payload),
                Ok(()),
                "{}",
                event.event_type().name()
            );
        }
    }

    #[test]
    fn every_schema_parses_and_is_named_like_its_type() {
        for t in EventType::ALL {
            match t.schema() {
                Schema::Record(r) => assert_eq!(r.name.fullname(None), t.full_name()),
                other => panic!("{} is not a record: {other:?}", t.name()),
            }
        }
    }

    #[test]
    fn every_event_round_trips_through_avro_binary() {
        for event in samples() {
            let schema = event.event_type().schema();
            let writer = apache_avro::writer::datum::GenericDatumWriter::builder(schema)
                .build()
                .unwrap();
            let bytes = writer
                .write_value_to_vec(to_value(&event).unwrap())
                .unwrap();
            let reader = apache_avro::reader::datum::GenericDatumReader::builder(schema)
                .build()
                .unwrap();
            let value = reader.read_value(&mut &bytes[..]).unwrap();
            assert_eq!(from_value(event.event_type(), value).unwrap(), event);
        }
    }

    #[test]
    fn names_resolve_short_and_full() {
        assert_eq!(
            EventType::from_name("TapsSubmitted"),
            Some(EventType::TapsSubmitted)
        );
        let full = EventType::DailyCheckedIn.full_name();
        assert_eq!(EventType::from_name(&full), Some(EventType::DailyCheckedIn));
        assert_eq!(EventType::from_name("app.surge.events.Nope"), None);
    }
}
