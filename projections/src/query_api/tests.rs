//! The query API against the real PostgreSQL and Redis, through the router [`app`] builds.
//!
//! [`app`]: super::app

mod helpers;
mod replicas;
mod versions;
