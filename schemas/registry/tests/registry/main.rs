//! Integration tests of the embedded schema registry against a real
//! PostgreSQL (`SURGE_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Each test works in its own
//! schema, dropped at the end.

mod client;
mod common;
mod compatibility;
mod concurrency;
mod http;
mod socket;
