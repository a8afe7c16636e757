//! Reading a user's feed a page at a time, newest first.

use std::sync::LazyLock;

use redis::{ErrorKind, RedisError, RedisResult, Script};
use serde::Deserialize;
use surge_redis::Redis;
use uuid::Uuid;

use super::{FEED_CAP, Feeds};

/// One page of a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPage {
    /// Feed items as stored, JSON objects to serve as they are (see [`super::FeedItem`]).
    pub items: Vec<String>,
    /// Pass as `before` to get the next page; `None` when this page reaches the end.
    pub next: Option<Uuid>,
}

/// Finds the item whose event id is ARGV[1] and returns up to ARGV[2] items after it; nothing
/// when no item has that id. Lists are capped at [`FEED_CAP`], so the scan is bounded. In JSON
/// text a quote inside a string is escaped, so `"event_id":"<id>"` matches only the key.
const AFTER_SCRIPT: &str = r#"
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local needle = '"event_id":"' .. ARGV[1] .. '"'
local count = tonumber(ARGV[2])
for i, item in ipairs(items) do
  if string.find(item, needle, 1, true) then
    local page = {}
    for j = i + 1, math.min(#items, i + count) do page[#page + 1] = items[j] end
    return page
  end
end
return {}
"#;

static AFTER: LazyLock<Script> = LazyLock::new(|| Script::new(AFTER_SCRIPT));

/// Up to `limit` items (cut to 1..=[`FEED_CAP`]) of `user_id`'s feed, newest first: from the
/// newest if `before` is `None`, else those older than the item of event `before`.
///
/// The cursor is an event id rather than an offset, so items added between two page reads do
/// not shift the pages. A cursor whose item has left the feed (trimmed past the cap, or never
/// there) gives an empty page: everything older than it is gone too. `feeds` are the lists of
/// the version read.
pub async fn feed_page(
    conn: &mut Redis,
    feeds: Feeds<'_>,
    user_id: i64,
    before: Option<Uuid>,
    limit: usize,
) -> RedisResult<FeedPage> {
    let limit = limit.clamp(1, FEED_CAP);
    let key = feeds.key(user_id);
    // One more than asked, to know whether a next page exists.
    let mut items: Vec<String> = match before {
        None => {
            redis::cmd("LRANGE")
                .arg(&key)
                .arg(0)
                .arg(limit)
                .query_async(conn)
                .await?
        }
        Some(cursor) => {
            AFTER
                .key(&key)
                .arg(cursor.to_string())
                .arg(limit + 1)
                .invoke_async(conn)
                .await?
        }
    };
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|last| event_id(last)).transpose()?
    } else {
        None
    };
    Ok(FeedPage { items, next })
}

fn event_id(item: &str) -> RedisResult<Uuid> {
    #[derive(Deserialize)]
    struct Id {
        event_id: Uuid,
    }
    serde_json::from_str::<Id>(item)
        .map(|id| id.event_id)
        .map_err(|e| {
            RedisError::from((
                ErrorKind::TypeError,
                "a feed item has no event_id",
                e.to_string(),
            ))
        })
}
