//! Publishes a [`LiveNotice`] after each committed batch (see `surge_projections::live`): the
//! users whose events the batch carried and the last offset it applied. One task per processor
//! publishes them in order; if Redis falls behind, notices beyond [`BACKLOG`] are dropped
//! rather than held, since a notice is a hint for live streams, never the data.

use std::collections::BTreeSet;

use rdkafka::Message;
use rdkafka::message::OwnedMessage;
use redis::AsyncCommands;
use surge_projections::live::LiveNotice;
use surge_projections::naming;
use surge_redis::Redis;
use tokio::sync::mpsc;

/// Notices waiting to be published, at most.
const BACKLOG: usize = 1024;

#[derive(Clone)]
pub struct LivePublisher {
    notices: mpsc::Sender<LiveNotice>,
}

impl LivePublisher {
    /// A publisher on `projection`'s channel; its task runs on the current Tokio runtime until
    /// every clone of the publisher is dropped.
    pub fn spawn(redis: Redis, deployment_prefix: &str, projection: &str) -> Self {
        let (notices, mut queued) = mpsc::channel::<LiveNotice>(BACKLOG);
        let channel = naming::live_channel(deployment_prefix, projection);
        tokio::spawn(async move {
            let mut redis = redis;
            while let Some(notice) = queued.recv().await {
                let payload = serde_json::to_string(&notice).expect("a notice serializes");
                if let Err(error) = redis.publish::<_, _, i64>(&channel, payload).await {
                    tracing::debug!(%error, %channel, "A live notice was not published.");
                }
            }
        });
        LivePublisher { notices }
    }

    /// Announces that the batch of `partition` up to `offset` carried events of `users`.
    pub fn batch_applied(&self, partition: i32, offset: i64, users: Vec<i64>) {
        if users.is_empty() {
            return;
        }
        let notice = LiveNotice {
            partition,
            offset,
            users,
        };
        // Full (Redis slow or down): this notice is dropped, see the module header.
        let _ = self.notices.try_send(notice);
    }
}

/// The users whose events `messages` carry (their keys), each once.
pub(super) fn users_of(messages: &[OwnedMessage]) -> Vec<i64> {
    let users: BTreeSet<i64> = messages
        .iter()
        .filter_map(|m| std::str::from_utf8(m.key()?).ok()?.parse().ok())
        .collect();
    users.into_iter().collect()
}
