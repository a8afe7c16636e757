//! One module per `surge` subcommand.

pub(crate) mod broadcasts;
mod demo;
pub(crate) mod dev;
pub(crate) mod dlq;
pub(crate) mod migrate;
pub(crate) mod process;
pub(crate) mod projections;
pub(crate) mod query_api;
mod rebuild_progress;
pub(crate) mod replay;
pub(crate) mod sign_init_data;
pub(crate) mod tap;
pub(crate) mod write_api;
