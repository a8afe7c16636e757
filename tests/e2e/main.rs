//! End-to-end tests: the real `surge` binary as a process, over real sockets, against a real
//! Kafka-protocol broker process (tansu, started by `scripts/test.sh`), PostgreSQL and Redis.
//! Every test gets its own topic, database schema and Redis key prefix, so they run in parallel.

// A test binary exports nothing; `pub` here only shares helpers between its modules.
#![allow(unreachable_pub)]

mod fold;
mod helpers;
mod projected;
mod proxy;

mod broker_down;
mod contract;
mod idempotency;
mod limits;
mod loadgen;
mod operations;
mod processing;
mod projections;
mod query;
mod replay;
mod resume;
mod stats;
mod tap;
mod write_path;
