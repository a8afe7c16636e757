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
//! served as they are:
//!
//! | `type`     | event            | fields besides `event_id`, `occurred_at`, `type`          |
//! |------------|------------------|-----------------------------------------------------------|
//! | `session`  | SessionStarted   | `platform` (string or null)                               |
//! | `profile`  | ProfileUpdated   | `display_name`, `language_code`, `photo_url` (null = unchanged) |
//! | `taps`     | TapsSubmitted    | `count` (number)                                          |
//! | `checkin`  | DailyCheckedIn   | `day` (`YYYY-MM-DD`, UTC)                                 |
//! | `referral` | ReferralCredited | `referred_user_id` (number); in the referrer's feed       |
//! | `quest_claim` | QuestClaimed  | `quest_id` (string)                                       |
//! | `quest`    | QuestCompleted   | `quest_id` (string), `reward` (coins)                     |
//! | `purchase_started` | PurchaseStarted | `item_id` (string), `stars` (price)              |
//! | `purchase` | StarsPaymentReceived | `item_id`, `stars` (paid), `coins` (granted)          |
//! | `refund`   | StarsPaymentRefunded | `item_id`, `stars` (returned), `coins` (taken back)   |
//!
//! `event_id` is the event's UUID; `occurred_at` is RFC 3339 UTC with milliseconds.

pub(crate) mod http;
mod item;
mod read;

pub use item::{Activity, FeedItem, iso_date, rfc3339_millis, time};
pub use read::{FeedPage, feed_page};

/// The most items a feed keeps.
pub const FEED_CAP: usize = 200;

/// The key suffix of `user_id`'s feed: `user:<user id>`.
pub fn user_suffix(user_id: i64) -> String {
    format!("user:{user_id}")
}
