//! Kafka plumbing of the write path: the producer that appends events ([`EventLog`]) and topic
//! administration at start-up ([`admin`]).

pub mod admin;
mod event_log;

pub use event_log::{AppendError, EventLog, ProducerSettings, TraceMeta};
