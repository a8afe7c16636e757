//! The feed item: the JSON object stored in the list and served as is.

use serde::{Deserialize, Serialize};
use time::UtcDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use uuid::Uuid;

/// One entry of a user's feed. Serialized by [`FeedItem::to_json`] as
///
/// ```json
/// {"event_id":"0193…","occurred_at":"2026-11-22T10:15:30.123Z","type":"taps","count":25}
/// ```
///
/// `event_id` comes first (the feed's cursor finds items by it); `type` and the fields after it
/// are the activity `A`'s. What each event type shows, and so every `type` a feed holds, is
/// decided with the event's other rules (`surge_processors::decisions::Activity`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedItem<A> {
    pub event_id: Uuid,
    /// RFC 3339 in UTC with milliseconds, always `YYYY-MM-DDTHH:MM:SS.mmmZ` (fixed width, so
    /// strings sort as instants). Make it with [`rfc3339_millis`].
    pub occurred_at: String,
    /// A JSON object with its `type`.
    #[serde(flatten)]
    pub activity: A,
}

impl<A: Serialize> FeedItem<A> {
    /// The item's JSON, the list element the query API serves.
    pub fn to_json(&self) -> String {
        // Strings, integers and a UUID, and an activity of the same (an enum of such fields):
        // serializing cannot fail.
        serde_json::to_string(self).expect("a feed item serializes to JSON")
    }
}

const RFC3339_MILLIS: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// `unix_ms` as `2026-11-22T10:15:30.123Z`; `None` outside the years 0000 to 9999, which
/// RFC 3339 cannot write.
pub fn rfc3339_millis(unix_ms: i64) -> Option<String> {
    let at = UtcDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000).ok()?;
    if !(0..=9999).contains(&at.year()) {
        return None;
    }
    at.format(RFC3339_MILLIS).ok()
}

/// `unix_ms` as an RFC 3339 JSON string; `null` outside the calendar.
pub fn time(unix_ms: i64) -> serde_json::Value {
    rfc3339_millis(unix_ms).map_or(serde_json::Value::Null, Into::into)
}

/// The UTC day `days` after 1970-01-01 as `2026-11-22`; `None` outside the years 0000 to 9999.
pub fn iso_date(days_since_epoch: i32) -> Option<String> {
    rfc3339_millis(i64::from(days_since_epoch) * 86_400_000).map(|s| s[..10].to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn instants_have_fixed_width_millisecond_rfc3339() {
        assert_eq!(
            rfc3339_millis(0).as_deref(),
            Some("1970-01-01T00:00:00.000Z")
        );
        assert_eq!(
            rfc3339_millis(1_795_342_530_123).as_deref(),
            Some("2026-11-22T10:15:30.123Z")
        );
        assert_eq!(
            rfc3339_millis(-1).as_deref(),
            Some("1969-12-31T23:59:59.999Z")
        );
        assert_eq!(rfc3339_millis(253_402_300_800_000), None, "year 10000");
        assert_eq!(rfc3339_millis(-62_167_219_200_001), None, "year -1");
        assert_eq!(rfc3339_millis(i64::MAX), None);
    }

    #[test]
    fn days_are_iso_dates() {
        assert_eq!(iso_date(0).as_deref(), Some("1970-01-01"));
        assert_eq!(iso_date(20_819).as_deref(), Some("2027-01-01"));
        assert_eq!(iso_date(i32::MAX), None);
    }

    #[test]
    fn items_serialize_event_id_first_with_a_type_tag() {
        let id = Uuid::parse_str("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").expect("uuid");
        let item = FeedItem {
            event_id: id,
            occurred_at: "2026-11-22T10:15:30.123Z".to_owned(),
            activity: json!({
                "type": "profile",
                "display_name": "Ada",
                "language_code": null,
                "photo_url": null,
            }),
        };
        let text = item.to_json();
        assert!(
            text.starts_with(r#"{"event_id":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","#),
            "{text}"
        );
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            value,
            json!({
                "event_id": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
                "occurred_at": "2026-11-22T10:15:30.123Z",
                "type": "profile",
                "display_name": "Ada",
                "language_code": null,
                "photo_url": null,
            })
        );
        assert_eq!(
            serde_json::from_str::<FeedItem<serde_json::Value>>(&text).ok(),
            Some(item)
        );
    }
}
