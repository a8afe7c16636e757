//! Events as JSON, for tools that print or read them (`surge tap`): the envelope's fields, the
//! type's short name and the payload's fields, with times as unix milliseconds exactly as in
//! Avro, so [`from_json`] gives back the very event [`to_json`] was given.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Envelope, Event, EventType, Payload};

pub fn to_json(event: &Event) -> Value {
    let envelope = &event.envelope;
    json!({
        "type": event.event_type().name(),
        "event_id": envelope.event_id.to_string(),
        "user_id": envelope.user_id,
        "occurred_at": envelope.occurred_at,
        "recorded_at": envelope.recorded_at,
        "payload": event.payload.to_json(),
    })
}

/// Why a JSON value is not an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an event: {0}")]
pub struct NotAnEvent(String);

pub fn from_json(value: &Value) -> Result<Event, NotAnEvent> {
    let field = |name: &str| {
        value
            .get(name)
            .ok_or_else(|| NotAnEvent(format!("no {name}")))
    };
    let int = |name: &str| {
        field(name)?
            .as_i64()
            .ok_or_else(|| NotAnEvent(format!("{name} is not a whole number")))
    };
    let type_name = field("type")?
        .as_str()
        .ok_or_else(|| NotAnEvent("type is not a string".into()))?;
    let event_type = EventType::from_name(type_name)
        .ok_or_else(|| NotAnEvent(format!("unknown type {type_name:?}")))?;
    let event_id = field("event_id")?
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| NotAnEvent("event_id is not a UUID".into()))?;
    let payload = Payload::from_json(event_type, field("payload")?.clone())
        .map_err(|e| NotAnEvent(format!("payload: {e}")))?;
    Ok(Event {
        envelope: Envelope {
            event_id,
            user_id: int("user_id")?,
            occurred_at: int("occurred_at")?,
            recorded_at: int("recorded_at")?,
        },
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ReferralCredited, TapsSubmitted};

    fn event(payload: Payload) -> Event {
        Event {
            envelope: Envelope {
                event_id: Uuid::now_v7(),
                user_id: 7_000_000_001,
                occurred_at: 1_717_171_717_123,
                recorded_at: 1_717_171_717_456,
            },
            payload,
        }
    }

    #[test]
    fn events_round_trip_through_json() {
        for payload in [
            Payload::from(TapsSubmitted { count: 3 }),
            Payload::from(ReferralCredited {
                referred_user_id: 42,
                source_event_id: Uuid::now_v7(),
            }),
        ] {
            let original = event(payload);
            let json = to_json(&original);
            assert_eq!(from_json(&json).unwrap(), original, "{json}");
        }
    }

    #[test]
    fn a_value_that_is_not_an_event_says_what_is_wrong() {
        let mut json = to_json(&event(TapsSubmitted { count: 3 }.into()));
        json["type"] = "Teleported".into();
        assert_eq!(
            from_json(&json).unwrap_err().0,
            "unknown type \"Teleported\""
        );
        let mut json = to_json(&event(TapsSubmitted { count: 3 }.into()));
        json["payload"] = json!({ "count": "three" });
        assert!(from_json(&json).unwrap_err().0.starts_with("payload:"));
    }
}
