//! What Surge's speed figures are compared with: the physical limits of this machine, measured
//! in the same run. Shared by the projector and query API benchmarks and by
//! `surge-loadgen --scenario baselines`, so every report measures a limit the same way.
//!
//! - [`serve_on_own_runtime`]: an axum router on a runtime of its own (a bare handler is the
//!   ceiling of any axum service here);
//! - [`Webdis`]: the webdis HTTP gateway to Redis, as a child process;
//! - [`CopyBinary`]: PostgreSQL's binary COPY format, for bulk-loading baselines.

mod copy_binary;
mod serve;
mod webdis;

pub use copy_binary::CopyBinary;
pub use serve::serve_on_own_runtime;
pub use webdis::Webdis;
