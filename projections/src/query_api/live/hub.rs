//! One instance's live subscriptions, fed by the processors' notices (`crate::live`).
//!
//! Each user with an open stream has one `watch` channel here holding, per part of their state,
//! how many notices came and the latest position one reported: many notices while a stream is busy coalesce into one, so a slow
//! stream costs one pending value, never a queue. A single Redis pub/sub connection per instance
//! receives every notice of the streamed projections; a notice for a user without a stream
//! here costs one hash lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use surge_schemas::Position;
use tokio::sync::watch;

use crate::catalog::ProjectionId;
use crate::live::LiveNotice;
use crate::naming;

/// The parts of a user's state a live stream sends, each from its own projections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// `event: me`, what `GET /v1/me` answers.
    Me,
    /// `event: feed`, the newest feed items.
    Feed,
    /// `event: quests`, what `GET /v1/me/quests` answers.
    Quests,
    /// `event: purchases`, what `GET /v1/me/purchases` answers.
    Purchases,
}

impl Part {
    pub(crate) const ALL: [Part; 4] = [Part::Me, Part::Feed, Part::Quests, Part::Purchases];

    /// The projections a part is read from.
    pub(crate) fn projections(self) -> &'static [ProjectionId] {
        match self {
            Part::Me => &crate::query_api::handlers::me::READS,
            Part::Feed => &[ProjectionId::Feed],
            Part::Quests => &[ProjectionId::Quests],
            Part::Purchases => &[ProjectionId::Purchases],
        }
    }

    /// The SSE event name.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Part::Me => "me",
            Part::Feed => "feed",
            Part::Quests => "quests",
            Part::Purchases => "purchases",
        }
    }

    fn of(projection: ProjectionId) -> Option<Part> {
        Part::ALL
            .into_iter()
            .find(|part| part.projections().contains(&projection))
    }
}

/// One part's changes: how many notices or refreshes so far (a stream compares it with what
/// it last read) and the latest position a notice reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) seq: u64,
    pub(crate) position: Option<Position>,
}

/// What a stream is told, per part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    pub(crate) me: Change,
    pub(crate) feed: Change,
    pub(crate) quests: Change,
    pub(crate) purchases: Change,
    /// The user's places on the leaderboards, from the latest rank round (`rank`).
    pub(crate) rank: Option<Arc<str>>,
}

impl Changes {
    pub(crate) fn part(&self, part: Part) -> &Change {
        match part {
            Part::Me => &self.me,
            Part::Feed => &self.feed,
            Part::Quests => &self.quests,
            Part::Purchases => &self.purchases,
        }
    }

    fn part_mut(&mut self, part: Part) -> &mut Change {
        match part {
            Part::Me => &mut self.me,
            Part::Feed => &mut self.feed,
            Part::Quests => &mut self.quests,
            Part::Purchases => &mut self.purchases,
        }
    }
}

/// A stream's view of its user's changes. Notices arriving while it is busy coalesce.
pub(crate) type Latest = watch::Receiver<Changes>;

struct Subscribers {
    sender: watch::Sender<Changes>,
    streams: usize,
}

/// Why a stream was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The instance holds its maximum of streams.
    Full,
    /// The user has their maximum of streams open.
    TooManyForUser,
}

pub(crate) struct Hub {
    topic: String,
    /// When the latest leaderboard notice arrived: public leaderboard streams wake on it, and
    /// read a top read no earlier (a cached one from before would miss the change).
    board: watch::Sender<Instant>,
    /// `query_api_live_streams`: streams open now.
    open: prometheus::IntGauge,
    max_streams: usize,
    max_streams_per_user: usize,
    by_user: Mutex<(HashMap<i64, Subscribers>, usize)>,
}

/// An open public leaderboard stream; dropping it closes its slot.
pub(crate) struct BoardSubscription {
    hub: Arc<Hub>,
    pub(crate) changes: watch::Receiver<Instant>,
}

impl Drop for BoardSubscription {
    fn drop(&mut self) {
        let mut guard = self.hub.by_user.lock().expect("hub lock");
        guard.1 -= 1;
        self.hub.open.set(guard.1 as i64);
    }
}

/// An open stream's registration; dropping it closes the stream's slot.
pub(crate) struct Subscription {
    hub: Arc<Hub>,
    user: i64,
    pub(crate) latest: Latest,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut guard = self.hub.by_user.lock().expect("hub lock");
        let (by_user, total) = &mut *guard;
        *total -= 1;
        self.hub.open.set(*total as i64);
        if let Some(subscribers) = by_user.get_mut(&self.user) {
            subscribers.streams -= 1;
            if subscribers.streams == 0 {
                by_user.remove(&self.user);
            }
        }
    }
}

impl Hub {
    pub(crate) fn new(
        topic: &str,
        max_streams: usize,
        max_streams_per_user: usize,
        open: prometheus::IntGauge,
    ) -> Arc<Hub> {
        Arc::new(Hub {
            topic: topic.to_owned(),
            board: watch::channel(Instant::now()).0,
            open,
            max_streams,
            max_streams_per_user,
            by_user: Mutex::new((HashMap::new(), 0)),
        })
    }

    /// Opens a stream slot for `user`.
    pub(crate) fn subscribe(self: &Arc<Self>, user: i64) -> Result<Subscription, Refused> {
        let mut guard = self.by_user.lock().expect("hub lock");
        let (by_user, total) = &mut *guard;
        if *total >= self.max_streams {
            return Err(Refused::Full);
        }
        let subscribers = by_user.entry(user).or_insert_with(|| Subscribers {
            sender: watch::channel(Changes::default()).0,
            streams: 0,
        });
        if subscribers.streams >= self.max_streams_per_user {
            return Err(Refused::TooManyForUser);
        }
        subscribers.streams += 1;
        *total += 1;
        self.open.set(*total as i64);
        let latest = subscribers.sender.subscribe();
        Ok(Subscription {
            hub: self.clone(),
            user,
            latest,
        })
    }

    /// The users with a stream on this instance.
    pub(crate) fn streaming_users(&self) -> Vec<i64> {
        let guard = self.by_user.lock().expect("hub lock");
        guard.0.keys().copied().collect()
    }

    /// Hands `user`'s streams their places on the leaderboards, waking them if it changed.
    pub(crate) fn set_rank(&self, user: i64, body: Arc<str>) {
        let guard = self.by_user.lock().expect("hub lock");
        if let Some(subscribers) = guard.0.get(&user) {
            subscribers.sender.send_if_modified(|changes| {
                let changed = changes.rank.as_deref() != Some(&*body);
                if changed {
                    changes.rank = Some(body);
                }
                changed
            });
        }
    }

    /// Any leaderboard change, anyone's (a user stream's rank moves with them).
    pub(crate) fn board_changes(&self) -> watch::Receiver<Instant> {
        self.board.subscribe()
    }

    /// Opens a public leaderboard stream's slot (counted with the others, not per user).
    pub(crate) fn subscribe_board(self: &Arc<Self>) -> Result<BoardSubscription, Refused> {
        let mut guard = self.by_user.lock().expect("hub lock");
        if guard.1 >= self.max_streams {
            return Err(Refused::Full);
        }
        guard.1 += 1;
        self.open.set(guard.1 as i64);
        Ok(BoardSubscription {
            hub: self.clone(),
            changes: self.board.subscribe(),
        })
    }

    /// Streams open on this instance.
    #[cfg(test)]
    fn streams(&self) -> usize {
        self.by_user.lock().expect("hub lock").1
    }

    /// Wakes the streams of the notice's users, for the part `projection` feeds.
    pub(crate) fn notify(&self, projection: ProjectionId, notice: &LiveNotice) {
        let Some(part) = Part::of(projection) else {
            return;
        };
        let guard = self.by_user.lock().expect("hub lock");
        for user in &notice.users {
            if let Some(subscribers) = guard.0.get(user) {
                subscribers.sender.send_modify(|changes| {
                    let change = changes.part_mut(part);
                    change.seq += 1;
                    change.position = Some(Position {
                        topic: self.topic.clone(),
                        partition: notice.partition,
                        offset: notice.offset,
                    });
                });
            }
        }
    }

    /// Wakes every stream to read every part again: notices may have been missed (the hub's
    /// connection was down).
    fn refresh_all(&self) {
        let guard = self.by_user.lock().expect("hub lock");
        for subscribers in guard.0.values() {
            subscribers.sender.send_modify(|changes| {
                for part in Part::ALL {
                    changes.part_mut(part).seq += 1;
                }
            });
        }
    }

    /// Receives the notices of `projections` until the hub is dropped everywhere else,
    /// reconnecting with backoff when Redis goes away, to the next of `servers` (a cluster's
    /// nodes: one that failed is passed over).
    pub(crate) async fn run(
        self: Arc<Self>,
        servers: Vec<redis::Client>,
        deployment_prefix: String,
    ) {
        let by_channel: HashMap<String, ProjectionId> = Part::ALL
            .iter()
            .flat_map(|part| part.projections())
            .chain(&[ProjectionId::Leaderboard])
            .map(|p| (naming::live_channel(&deployment_prefix, p.name()), *p))
            .collect();
        let channels: Vec<&String> = by_channel.keys().collect();
        let mut backoff = Duration::from_millis(100);
        let mut connected_before = false;
        for client in servers.iter().cycle() {
            if Arc::strong_count(&self) == 1 {
                return;
            }
            let mut pubsub = match client.get_async_pubsub().await {
                Ok(pubsub) => pubsub,
                Err(error) => {
                    tracing::warn!(%error, "Live updates: cannot reach Redis; retrying.");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if let Err(error) = pubsub.subscribe(&channels).await {
                tracing::warn!(%error, "Live updates: subscribing failed; retrying.");
                tokio::time::sleep(backoff).await;
                continue;
            }
            backoff = Duration::from_millis(100);
            if connected_before {
                self.refresh_all();
                self.board.send_replace(Instant::now());
            }
            connected_before = true;
            let mut messages = pubsub.on_message();
            loop {
                // Woken at least every few seconds to notice that the query API is gone.
                let next = tokio::time::timeout(Duration::from_secs(5), messages.next()).await;
                if Arc::strong_count(&self) == 1 {
                    return;
                }
                let message = match next {
                    Ok(Some(message)) => message,
                    Ok(None) => break,
                    Err(_) => continue,
                };
                let Some(projection) = by_channel.get(message.get_channel_name()) else {
                    continue;
                };
                let Ok(payload) = message.get_payload::<String>() else {
                    continue;
                };
                if *projection == ProjectionId::Leaderboard {
                    self.board.send_replace(Instant::now());
                    continue;
                }
                match serde_json::from_str::<LiveNotice>(&payload) {
                    Ok(notice) => self.notify(*projection, &notice),
                    Err(error) => tracing::warn!(%error, "Live updates: a notice did not parse."),
                }
            }
            tracing::warn!("Live updates: the Redis connection closed; reconnecting.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauge() -> prometheus::IntGauge {
        prometheus::IntGauge::new("streams", "open streams").unwrap()
    }

    #[test]
    fn streams_are_bounded_per_instance_and_per_user_and_freed_on_drop() {
        let hub = Hub::new("t", 3, 2, gauge());
        let a = hub.subscribe(1).unwrap();
        let b = hub.subscribe(1).unwrap();
        assert_eq!(hub.subscribe(1).err(), Some(Refused::TooManyForUser));
        let c = hub.subscribe_board().unwrap();
        assert_eq!(hub.subscribe(3).err(), Some(Refused::Full));
        assert_eq!(hub.subscribe_board().err(), Some(Refused::Full));
        drop(a);
        assert_eq!(hub.streams(), 2);
        let _d = hub.subscribe(1).unwrap();
        drop((b, c));
        assert_eq!(hub.streams(), 1);
        assert_eq!(hub.open.get(), 1);
    }

    #[test]
    fn a_notice_wakes_only_its_users_for_its_part_and_keeps_the_latest_position() {
        let hub = Hub::new("t", 10, 2, gauge());
        let mut seven = hub.subscribe(7).unwrap();
        let mut eight = hub.subscribe(8).unwrap();
        for (projection, offset) in [(ProjectionId::Wallets, 10), (ProjectionId::Profiles, 11)] {
            hub.notify(
                projection,
                &LiveNotice {
                    partition: 2,
                    offset,
                    users: vec![7, 9],
                },
            );
        }
        hub.notify(
            ProjectionId::Leaderboard,
            &LiveNotice {
                partition: 2,
                offset: 12,
                users: vec![8],
            },
        );
        assert!(seven.latest.has_changed().unwrap());
        assert!(
            !eight.latest.has_changed().unwrap(),
            "no part reads the leaderboard"
        );
        let seen = seven.latest.borrow_and_update().clone();
        assert_eq!(seen.me.seq, 2);
        assert_eq!(seen.me.position.unwrap().offset, 11);
        assert_eq!(seen.feed, Change::default());
        hub.refresh_all();
        assert!(eight.latest.has_changed().unwrap());
        let seen = eight.latest.borrow_and_update().clone();
        assert!(Part::ALL.iter().all(|part| seen.part(*part).seq == 1));
        assert!(seen.me.position.is_none());
    }
}
