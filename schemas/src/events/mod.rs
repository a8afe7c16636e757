//! Rust mirrors of `avro/*.avsc`. The `.avsc` files are the source of truth: the tests in
//! `avro.rs` prove every type here encodes against its schema and round-trips.
//!
//! Each event type lives in the file of its feature (`profile.rs`, `game.rs`, `quests.rs`,
//! `payments.rs`, `notifications.rs`): its struct, the rule each of its fields follows, what
//! sending it costs in tap energy and a valid sample ([`PayloadType`]). Adding an event type:
//! write `avro/<name>.avsc`, add its struct and its `PayloadType` to its feature's file (or a
//! new one, with its `mod` line here), and add one line to the `event_types!` list below.

mod game;
mod notifications;
mod payments;
mod profile;
mod quests;

pub use game::{DailyCheckedIn, ReferralCredited, TapsSubmitted};
pub use notifications::{BotBlocked, BroadcastCancelled, BroadcastRequested};
pub use payments::{PurchaseStarted, StarsPaymentReceived, StarsPaymentRefunded};
pub use profile::{ProfileUpdated, SessionStarted};
pub use quests::{QuestClaimed, QuestCompleted};

use uuid::Uuid;

use crate::rules::Violation;

/// What every payload type declares beside its struct, so that a new event type does not
/// compile (in the `event_types!` list) until it has all three.
pub trait PayloadType: Into<Payload> {
    /// Checks every field against its rule ([`crate::rules`]): destructure the struct, so a new
    /// field does not compile until its rule is written.
    fn check(&self) -> Result<(), Violation>;

    /// The tap energy the write API spends for it (see `producers/src/energy.rs`): one per tap,
    /// nothing for what is not a tap.
    fn energy_cost(&self) -> u64;

    /// A valid payload of this type, which the round-trip and fuzz tests encode.
    fn sample() -> Self;
}

/// Fields every event carries, flattened into each Avro record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// UUIDv7, so ids sort by time.
    pub event_id: Uuid,
    /// The Telegram user whose state the event changes; the Kafka key.
    pub user_id: i64,
    /// Unix milliseconds.
    pub occurred_at: i64,
    /// Unix milliseconds.
    pub recorded_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub envelope: Envelope,
    pub payload: Payload,
}

/// The Kafka key of events an operator causes (broadcasts): Telegram user ids are positive, so
/// 0 is nobody's, and one key keeps a broadcast and its cancellation in order.
pub const OPERATOR_USER_ID: i64 = 0;

/// Avro's `uuid` logical type is a string; apache-avro's serializer would write `Uuid` as bytes.
fn uuid_as_str<S: serde::Serializer>(id: &Uuid, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

/// Generates [`Payload`] and [`EventType`] from one list, so an event type is declared once.
macro_rules! event_types {
    ($($variant:ident => $file:literal),+ $(,)?) => {
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Payload {
            $($variant($variant),)+
        }

        /// The kinds of event, with their Avro schema.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventType {
            $($variant,)+
        }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)+];

            /// The short name, e.g. `TapsSubmitted`.
            pub fn name(self) -> &'static str {
                match self {
                    $(EventType::$variant => stringify!($variant),)+
                }
            }

            /// The schema text from `avro/`.
            pub fn schema_json(self) -> &'static str {
                match self {
                    $(EventType::$variant => include_str!(concat!("../../avro/", $file)),)+
                }
            }

            /// A valid payload of this type ([`PayloadType::sample`]).
            pub fn sample(self) -> Payload {
                match self {
                    $(EventType::$variant => <$variant as PayloadType>::sample().into(),)+
                }
            }
        }

        impl Payload {
            pub fn event_type(&self) -> EventType {
                match self {
                    $(Payload::$variant(_) => EventType::$variant,)+
                }
            }

            /// Checks every field against its rule ([`PayloadType::check`]); callers outside
            /// this crate use [`crate::rules::check`].
            pub(crate) fn check(&self) -> Result<(), Violation> {
                match self {
                    $(Payload::$variant(p) => PayloadType::check(p),)+
                }
            }

            /// The tap energy sending it costs ([`PayloadType::energy_cost`]).
            pub fn energy_cost(&self) -> u64 {
                match self {
                    $(Payload::$variant(p) => PayloadType::energy_cost(p),)+
                }
            }

            pub(crate) fn to_avro(&self) -> Result<apache_avro::types::Value, apache_avro::Error> {
                match self {
                    $(Payload::$variant(p) => apache_avro::to_value(p),)+
                }
            }

            /// The payload's fields as JSON, by their Avro field names.
            pub fn to_json(&self) -> serde_json::Value {
                match self {
                    $(Payload::$variant(p) => {
                        serde_json::to_value(p).expect("payload fields are plain data")
                    })+
                }
            }

            pub fn from_json(
                event_type: EventType,
                value: serde_json::Value,
            ) -> Result<Payload, serde_json::Error> {
                Ok(match event_type {
                    $(EventType::$variant => Payload::$variant(serde_json::from_value(value)?),)+
                })
            }

            pub(crate) fn from_avro(
                event_type: EventType,
                value: apache_avro::types::Value,
            ) -> Result<Payload, apache_avro::Error> {
                Ok(match event_type {
                    $(EventType::$variant => Payload::$variant(apache_avro::from_value(&value)?),)+
                })
            }
        }

        $(impl From<$variant> for Payload {
            fn from(p: $variant) -> Payload {
                Payload::$variant(p)
            }
        })+
    };
}

event_types! {
    SessionStarted => "session_started.avsc",
    ProfileUpdated => "profile_updated.avsc",
    TapsSubmitted => "taps_submitted.avsc",
    DailyCheckedIn => "daily_checked_in.avsc",
    ReferralCredited => "referral_credited.avsc",
    QuestClaimed => "quest_claimed.avsc",
    QuestCompleted => "quest_completed.avsc",
    PurchaseStarted => "purchase_started.avsc",
    StarsPaymentReceived => "stars_payment_received.avsc",
    StarsPaymentRefunded => "stars_payment_refunded.avsc",
    BroadcastRequested => "broadcast_requested.avsc",
    BroadcastCancelled => "broadcast_cancelled.avsc",
    BotBlocked => "bot_blocked.avsc",
}

/// Namespace of every Surge record.
pub const NAMESPACE: &str = "app.surge.events";

impl EventType {
    /// The Avro full name, e.g. `app.surge.events.TapsSubmitted`; also the `surge-event-type` header.
    pub fn full_name(self) -> String {
        format!("{NAMESPACE}.{}", self.name())
    }

    /// Accepts the short or the full name.
    pub fn from_name(name: &str) -> Option<EventType> {
        let short = name
            .strip_prefix(NAMESPACE)
            .and_then(|s| s.strip_prefix('.'));
        let short = short.unwrap_or(name);
        EventType::ALL.iter().copied().find(|t| t.name() == short)
    }
}

impl Event {
    pub fn event_type(&self) -> EventType {
        self.payload.event_type()
    }
}
