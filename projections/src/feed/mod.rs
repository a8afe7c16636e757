//! The `feed` projection's Redis layout, item shape and reader.
//!
//! Keys, under the version's key space `<deployment prefix>:feed:v<version>`:
//!
//! | suffix          | type | content                                                        |
//! |-----------------|------|----------------------------------------------------------------|
//! | `user:<user id>`| list | that user's [`FeedItem`]s as JSON, newest first, at most [`FEED_CAP`] |
//!
//! Each item is written by `LPUSH` followed by `LTRIM 0 FEED_CAP-1`, in the order the user's
//! events were applied (their partition order). Items are JSON objects of a stable shape,
//! served as they are: `event_id`, `occurred_at`, and the `type` of the activity with its own
//! fields. The types, one per event type that shows in a feed, are listed with the rules that
//! decide them (`surge_processors::decisions::Activity`); a ReferralCredited shows in the
//! referrer's feed.
//!
//! `event_id` is the event's UUID; `occurred_at` is RFC 3339 UTC with milliseconds.

pub(crate) mod http;
mod item;
mod read;

pub use item::{FeedItem, iso_date, rfc3339_millis, time};

use crate::naming;
use crate::partitioning::partition_of_user;
pub use read::{FeedPage, feed_page};

/// The most items a feed keeps.
pub const FEED_CAP: usize = 200;

/// The key suffix of `user_id`'s feed: `user:<user id>`, in the key space of the user's
/// partition (see [`Feeds`]).
pub fn user_suffix(user_id: i64) -> String {
    format!("user:{user_id}")
}

/// A feed version's lists: each user's in the key space of their partition of the events topic
/// ([`partition_of_user`]), which that partition's batches write.
#[derive(Debug, Clone, Copy)]
pub struct Feeds<'a> {
    /// The version's key space, `<deployment prefix>:feed:v<version>`.
    pub base: &'a str,
    /// Partitions of the events topic.
    pub partitions: i32,
}

impl Feeds<'_> {
    /// The list of `user_id`'s feed.
    pub fn key(&self, user_id: i64) -> String {
        let partition = partition_of_user(user_id, self.partitions);
        let space = naming::partition_keys_base(self.base, partition);
        format!("{space}:{}", user_suffix(user_id))
    }
}
