//! The stream-processing runtime ([`runtime`]) and the processors it runs: projectors that fold
//! events into PostgreSQL and Redis ([`projectors`]), among them derivers that also emit events
//! back to the topic ([`emit`]). What each event type means to each of them is decided in one file,
//! [`decisions`]. Each projection has versions ([`versions`]); `surge process` runs the active
//! one ([`supervisor`]) and `surge replay` rebuilds the next one beside it ([`replay`]).
//!
//! Delivery guarantee, kept by the runtime for every projection: each event's effect is applied
//! exactly once per projection version. A batch's writes and the position it reaches commit
//! atomically in the projection's own store, which is where a processor resumes from; a
//! fencing generation stops a processor that lost its partitions from writing; events are also
//! deduplicated by event id, so a re-emitted duplicate changes nothing.

pub mod decisions;
pub mod emit;
pub mod health;
pub mod notifications;
pub mod projectors;
pub mod replay;
pub mod runtime;
pub mod supervisor;
pub mod versions;
