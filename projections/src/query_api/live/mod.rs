//! Live updates over Server-Sent Events: a ticket for `EventSource` (`tickets`), the caller's
//! own stream (`stream`), the public leaderboard's (`leaderboard`), and the instance's subscriptions fed by the processors' notices
//! (`hub`, see `crate::live`).

pub(crate) mod hub;
pub(crate) mod leaderboard;
pub(crate) mod stream;
pub(crate) mod tickets;
