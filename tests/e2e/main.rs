//! End-to-end tests: the real `surge` binary as a process, over real sockets, against a real
//! Apache Kafka broker process (started by `scripts/test.sh`; tests that kill or pause the
//! broker start one of their own), PostgreSQL and Redis.
//! Every test gets its own topic, database schema and Redis key prefix, so they run in parallel.

// A test binary exports nothing; `pub` here only shares helpers between its modules.
#![allow(unreachable_pub)]

mod broker_process;
mod fold;
mod helpers;
mod projected;
mod proxy;

mod broker_down;
mod broker_faults;
mod capacity;
mod contract;
mod demo;
mod energy;
mod idempotency;
mod instances;
mod limits;
mod live;
mod loadgen;
mod notifications;
mod openapi;
mod operations;
mod parking;
mod payments;
mod poison;
mod processing;
mod projections;
mod query;
mod quests;
mod quiet_logs;
mod redis_cluster;
mod redis_cluster_projections;
mod registry;
mod replay;
mod resume;
mod slow_clients;
mod stats;
mod tap;
mod topic_gone;
mod validation;
mod write_path;
