//! The runtime: consumer loop, positions in the projection's store, fencing, retries, dead
//! letters, metrics. A projection plugs in through [`PgProjection`] or [`RedisProjection`].
//!
//! Errors are classified where they are born (`rejections`): a store refusing the data is
//! poison, narrowed to the event and dead-lettered; outages are retried, and a partition that
//! keeps failing is marked stalled and set aside (`stalls`). A dead-lettered event parks its
//! user's later events for that version, durably and in order, until `surge dlq` retries or
//! skips them exactly once (`parking`).

mod applier;
mod config;
mod context;
pub mod dead_letters;
mod live;
mod metrics;
mod parking;
mod partition_ends;
mod pg_parking;
mod pg_sink;
mod processor;
mod projection;
mod redis_parking;
mod redis_seen;
mod redis_sink;
mod rejections;
mod repeats;
mod sink;
mod stalls;

pub(crate) use applier::{Applier, Outcome};

pub use config::{ProcessorConfig, defaults as processor_defaults};
pub use live::LivePublisher;
pub use metrics::{ProcessorMetrics, registered};
pub use parking::{Parked, ParkedError, Release, Released};
pub use partition_ends::PartitionEndsExpected;
pub use pg_sink::PgSink;
pub use processor::{ProcessorHandle, spawn};
pub use projection::{
    ApplyError, KeySpace, NO_POINT_IN_TIME, PgProjection, Record, RedisProjection, RedisWrite,
};
pub use redis_sink::RedisSink;
pub use rejections::Rejection;
pub use sink::{Applied, Claim, PartitionBatch, Sink, SinkError};
