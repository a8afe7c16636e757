//! The `feed` projector: each user's recent activity, newest first, as a capped Redis list of
//! JSON items that the query API serves as they are.
//!
//! Delivery guarantee: exactly-once effect. This fold is pure and stateless; the runtime applies
//! each event's `LPUSH` + `LTRIM` in the same script that checks fencing, skips event ids
//! already seen and moves the partition's watermark, so an item is never pushed twice. The key
//! layout and the item shape live in [`surge_projections::feed`], shared with the reader.
//!
//! What each event does: it becomes one [`FeedItem`] (its activity as
//! [`crate::decisions::feed_activity`] decides) pushed onto its user's list (for
//! ReferralCredited, the referrer's, as the event is keyed by them), and the list is trimmed to
//! [`FEED_CAP`] items.

use surge_projections::ProjectionId;
use surge_projections::feed::{self, FEED_CAP, FeedItem};
use surge_schemas::Event;

use crate::decisions::{self, Activity};
use crate::projectors::{Projector, SinkContext};
use crate::runtime::{ApplyError, KeySpace, Record, RedisProjection, RedisSink, RedisWrite};

/// The feed projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Feed;

impl Projector for Feed {
    type Sink = RedisSink<Self>;

    fn sink(version: u32, context: &SinkContext) -> Self::Sink {
        context.redis_sink(Feed, version)
    }
}

impl RedisProjection for Feed {
    const ID: ProjectionId = ProjectionId::Feed;
    type State = ();

    fn writes(
        &self,
        _state: &mut (),
        record: &Record,
        keys: &KeySpace,
    ) -> Result<Vec<RedisWrite>, ApplyError> {
        let event = &record.event;
        let item = item_of(event).map_err(|reason| ApplyError::Poison {
            event_id: event.envelope.event_id,
            reason,
        })?;
        let Some(item) = item else {
            return Ok(Vec::new());
        };
        let key = keys.key(&feed::user_suffix(event.envelope.user_id));
        Ok(vec![
            RedisWrite::LPush {
                key: key.clone(),
                value: item.to_json(),
            },
            RedisWrite::LTrim {
                key,
                start: 0,
                stop: FEED_CAP as i64 - 1,
            },
        ])
    }
}

/// The feed item `event` becomes (`None`: not the user's activity); an error says why it cannot
/// be shown.
fn item_of(event: &Event) -> Result<Option<FeedItem<Activity>>, String> {
    let Some(activity) = decisions::feed_activity(&event.payload)? else {
        return Ok(None);
    };
    let at = event.envelope.occurred_at;
    let occurred_at = feed::rfc3339_millis(at)
        .ok_or_else(|| format!("occurred_at {at} ms is outside RFC 3339's years"))?;
    Ok(Some(FeedItem {
        event_id: event.envelope.event_id,
        occurred_at,
        activity,
    }))
}

#[cfg(test)]
mod tests;
