//! The `leaderboard` projection's Redis layout and its readers.
//!
//! Keys, under the version's key space `<deployment prefix>:leaderboard:v<version>`:
//!
//! | suffix               | type       | content                                                  |
//! |----------------------|------------|----------------------------------------------------------|
//! | `all`                | sorted set | member = user id (decimal), score = coins earned, ever    |
//! | `daily:2026-11-22`   | sorted set | coins earned that UTC day; expires 2 days after it ends   |
//! | `weekly:2026-W47`    | sorted set | coins earned that ISO week (UTC); expires 2 weeks after   |
//! | `names`              | hash       | user id -> name to show (chosen display name, else the    |
//! |                      |            | Telegram username, else the first name)                  |
//! | `state`              | hash       | the runtime's per-user fold state (not read here)         |
//!
//! An event counts towards the day and week its `occurred_at` falls in. The processors' fold
//! (`surge_processors::projectors::leaderboard`) names every key through [`Period`] and
//! [`NAMES_SUFFIX`], as the readers here do.

pub(crate) mod http;
mod period;
mod read;

pub use period::{
    DAILY_GRACE_DAYS, IsoWeek, NAMES_SUFFIX, ParsePeriodError, Period, PeriodKind,
    WEEKLY_GRACE_WEEKS,
};
pub use read::{Entry, MAX_LIMIT, Place, places_of, rank_of, top};
