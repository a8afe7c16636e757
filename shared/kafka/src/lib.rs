//! The Kafka client code the write API and the processors share: the producer that appends
//! events ([`EventLog`], configured by [`ProducerSettings`]) and topic administration at start-up
//! ([`admin`]).

pub mod admin;
mod event_log;

pub use event_log::{AppendError, EventLog, ProducerSettings, TraceMeta};
