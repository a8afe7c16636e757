//! The write side of Surge: Mini App writes become immutable Avro events on Kafka.
//!
//! A request is authenticated from its Telegram initData ([`http::auth`]), rate limited per user
//! ([`http::rate_limit`]), validated and turned into events ([`actions`]), deduplicated by its
//! `Idempotency-Key` ([`idempotency`]), pays for its taps from the user's energy ([`energy`]) and
//! is appended to the user's partition ([`surge_kafka::EventLog`]).
//! The API answers 202 only after the broker acknowledged every event durably.
//!
//! Telegram Stars payments (invoices, the webhook, refunds) are in [`stars`].

pub mod actions;
mod broadcasts;
pub mod config;
pub mod energy;
pub mod http;
pub mod idempotency;
pub mod metrics;
pub mod stars;
pub mod trace;

pub use config::WriteApiConfig;
pub use http::{AppState, admin, app, webhook};

#[cfg(test)]
mod fuzz_tests;
