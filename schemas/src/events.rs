//! Rust mirrors of `avro/*.avsc`. The `.avsc` files are the source of truth: the tests in
//! `avro.rs` prove every type here encodes against its schema and round-trips.
//!
//! Adding an event type: write `avro/<name>.avsc`, add its struct here, and add one line to the
//! `event_types!` list below.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStarted {
    pub first_name: String,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub language_code: Option<String>,
    pub is_premium: bool,
    pub photo_url: Option<String>,
    pub allows_write_to_pm: bool,
    pub start_param: Option<String>,
    pub platform: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileUpdated {
    pub display_name: Option<String>,
    pub language_code: Option<String>,
    pub photo_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapsSubmitted {
    pub count: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyCheckedIn {
    /// Days since 1970-01-01, UTC.
    pub day: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferralCredited {
    pub referred_user_id: i64,
    #[serde(serialize_with = "uuid_as_str")]
    pub source_event_id: Uuid,
}

/// The user claims a quest they complete themselves; see [`crate::quests`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestClaimed {
    pub quest_id: String,
}

/// Derived by the quests deriver, once per user and quest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestCompleted {
    pub quest_id: String,
    /// Coins, as the quest book said when the completion was decided.
    pub reward: i64,
    #[serde(serialize_with = "uuid_as_str")]
    pub source_event_id: Uuid,
}

/// The user asked to buy a catalogue item; see [`crate::products`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseStarted {
    #[serde(serialize_with = "uuid_as_str")]
    pub purchase_id: Uuid,
    pub item_id: String,
    pub stars: i64,
}

/// Telegram reported a successful Stars payment; one event per `telegram_payment_charge_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StarsPaymentReceived {
    pub telegram_payment_charge_id: String,
    #[serde(serialize_with = "uuid_as_str")]
    pub purchase_id: Uuid,
    pub item_id: String,
    pub stars: i64,
    /// Coins granted, as the invoice said when it was created.
    pub coins: i64,
    /// The plan a subscription payment pays for.
    pub subscription: Option<String>,
    /// Unix milliseconds: when the period this payment pays for ends.
    pub subscription_expires_at: Option<i64>,
    /// A renewal, not the subscription's first payment.
    pub recurring: bool,
}

/// A Stars payment was refunded; one event per refunded charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StarsPaymentRefunded {
    pub telegram_payment_charge_id: String,
    #[serde(serialize_with = "uuid_as_str")]
    pub purchase_id: Uuid,
    pub item_id: String,
    pub stars: i64,
    /// Coins the payment granted, taken back.
    pub coins: i64,
}

/// An operator's message to an audience; keyed by [`OPERATOR_USER_ID`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastRequested {
    #[serde(serialize_with = "uuid_as_str")]
    pub broadcast_id: Uuid,
    pub text: String,
    /// The label of a `web_app` button that opens the Mini App.
    pub button_text: Option<String>,
    /// Only users with an event in this many days before the request.
    pub active_within_days: Option<i32>,
    /// Only users of this language.
    pub language: Option<String>,
}

/// An operator cancelled a broadcast; keyed by [`OPERATOR_USER_ID`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastCancelled {
    #[serde(serialize_with = "uuid_as_str")]
    pub broadcast_id: Uuid,
}

/// Telegram refused a message to the user with 403; they leave every audience until their next
/// session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotBlocked {
    /// Telegram's description.
    pub reason: String,
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
                    $(EventType::$variant => include_str!(concat!("../avro/", $file)),)+
                }
            }
        }

        impl Payload {
            pub fn event_type(&self) -> EventType {
                match self {
                    $(Payload::$variant(_) => EventType::$variant,)+
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
