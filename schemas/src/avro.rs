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

    pub(crate) fn samples() -> Vec<Event> {
        let envelope = |user_id| Envelope {
            event_id: Uuid::now_v7(),
            user_id,
            occurred_at: 1_732_000_000_123,
            recorded_at: 1_732_000_000_456,
        };
        vec![
            Event {
                envelope: envelope(7_342_037_359),
                payload: SessionStarted {
                    first_name: "Ада".into(),
                    last_name: None,
                    username: Some("ada".into()),
                    language_code: Some("ru".into()),
                    is_premium: true,
                    photo_url: None,
                    allows_write_to_pm: true,
                    start_param: Some("ref_42".into()),
                    platform: Some("ios".into()),
                }
                .into(),
            },
            Event {
                envelope: envelope(1),
                payload: ProfileUpdated {
                    display_name: Some("A".into()),
                    language_code: None,
                    photo_url: Some("https://t.me/i/userpic/320/a.jpg".into()),
                }
                .into(),
            },
            Event {
                envelope: envelope(2),
                payload: TapsSubmitted { count: 1000 }.into(),
            },
            Event {
                envelope: envelope(3),
                payload: DailyCheckedIn { day: 20_050 }.into(),
            },
            Event {
                envelope: envelope(4),
                payload: ReferralCredited {
                    referred_user_id: 9_000_000_000,
                    source_event_id: Uuid::now_v7(),
                }
                .into(),
            },
            Event {
                envelope: envelope(5),
                payload: QuestClaimed {
                    quest_id: "open_5".into(),
                }
                .into(),
            },
            Event {
                envelope: envelope(6),
                payload: QuestCompleted {
                    quest_id: "tap_1000".into(),
                    reward: 1000,
                    source_event_id: Uuid::now_v7(),
                }
                .into(),
            },
            Event {
                envelope: envelope(7),
                payload: PurchaseStarted {
                    purchase_id: Uuid::now_v7(),
                    item_id: "coins_1000".into(),
                    stars: 50,
                }
                .into(),
            },
            Event {
                envelope: envelope(8),
                payload: StarsPaymentReceived {
                    telegram_payment_charge_id: "stxA1b2-C3_d4".into(),
                    purchase_id: Uuid::now_v7(),
                    item_id: "vip".into(),
                    stars: 250,
                    coins: 0,
                    subscription: Some("vip".into()),
                    subscription_expires_at: Some(1_795_000_000_000),
                    recurring: true,
                }
                .into(),
            },
            Event {
                envelope: envelope(9),
                payload: StarsPaymentRefunded {
                    telegram_payment_charge_id: "stxA1b2-C3_d4".into(),
                    purchase_id: Uuid::now_v7(),
                    item_id: "coins_1000".into(),
                    stars: 50,
                    coins: 1000,
                }
                .into(),
            },
            Event {
                envelope: envelope(0),
                payload: BroadcastRequested {
                    broadcast_id: Uuid::now_v7(),
                    text: "Season 2 starts now!\nTap to play.".into(),
                    button_text: Some("Play".into()),
                    active_within_days: Some(7),
                    language: Some("pt-BR".into()),
                }
                .into(),
            },
            Event {
                envelope: envelope(0),
                payload: BroadcastCancelled {
                    broadcast_id: Uuid::now_v7(),
                }
                .into(),
            },
            Event {
                envelope: envelope(10),
                payload: BotBlocked {
                    reason: "Forbidden: bot was blocked by the user".into(),
                }
                .into(),
            },
        ]
    }

    #[test]
    fn every_event_type_has_a_sample() {
        let covered: Vec<_> = samples().iter().map(Event::event_type).collect();
        for t in EventType::ALL {
            assert!(covered.contains(t), "no sample for {}", t.name());
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
