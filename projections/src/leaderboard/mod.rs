//! The `leaderboard` projection's Redis layout and its readers.
//!
//! Keys, under the version's key space `<deployment prefix>:leaderboard:v<version>`, each
//! sharded by the partition of the events topic the user's events are on (`:<partition>`,
//! [`shard`]): a partition's batches write only its shards, and the readers merge them
//! ([`Board`]). So no set grows past its partition's users, and a Redis Cluster can hold each
//! partition's shards where its batches' other keys are.
//!
//! | suffix                 | type       | content                                                |
//! |------------------------|------------|--------------------------------------------------------|
//! | `all:<p>`              | sorted set | member = user id (decimal), score = coins earned, ever  |
//! | `daily:2026-11-22:<p>` | sorted set | coins earned that UTC day; expires 2 days after it ends |
//! | `weekly:2026-W47:<p>`  | sorted set | coins earned that ISO week (UTC); expires 2 weeks after |
//! | `names:<p>`            | hash       | user id -> name to show (chosen display name, else the  |
//! |                        |            | Telegram username, else the first name)                |
//! | `state`                | hash       | the runtime's per-user fold state (not read here)       |
//!
//! An event counts towards the day and week its `occurred_at` falls in. The processors' fold
//! (`surge_processors::projectors::leaderboard`) names every key through [`Period`],
//! [`NAMES_SUFFIX`] and [`shard`], as the readers here do.

pub(crate) mod http;
mod period;
mod read;

pub use period::{
    DAILY_GRACE_DAYS, IsoWeek, NAMES_SUFFIX, ParsePeriodError, Period, PeriodKind,
    WEEKLY_GRACE_WEEKS,
};
pub use read::{Board, Entry, MAX_LIMIT, Place, places_of, rank_of, scores, top};
