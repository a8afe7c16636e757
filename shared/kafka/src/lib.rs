//! The Kafka client code the write API and the processors share: the producer that appends
//! events ([`EventLog`], configured by [`ProducerSettings`]), topic administration at start-up
//! ([`admin`]), and the configuration every Surge Kafka client starts from ([`client_config`]).

pub mod admin;
mod config;
mod event_log;

pub use config::{client_config, idempotent_producer_config, manual_commit_consumer_config};
pub use event_log::{AppendError, EventLog, ProducerSettings, TraceMeta};
