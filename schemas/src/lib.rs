//! The event contract of Surge.
//!
//! `avro/*.avsc` are the source of truth; this crate holds the Rust types that mirror them
//! ([`events`]), the mapping between those types and Avro values ([`avro`]), and the Confluent
//! wire-format codec that registers schemas and encodes/decodes through a schema registry
//! ([`codec`]), and what each field of each event may hold ([`rules`]). Nothing outside this crate depends on Avro details.
//!
//! Every event type shares one topic, keyed by the user id whose state it changes, with subjects
//! named by `TopicRecordNameStrategy` (`<topic>-<record full name>`).

pub mod avro;
pub mod codec;
mod error;
pub mod events;
pub mod game;
pub mod headers;
pub mod json;
pub mod position;
pub mod products;
pub mod quests;
pub mod rules;

pub use codec::Codec;
pub use error::{Error, Result};
// Every event type, so a new one needs no line here.
pub use events::*;
pub use game::GameConfig;
pub use position::{Position, TokenError, TokenKeys};
