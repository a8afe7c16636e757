//! The simulated crowd: users with valid initData who open a session first, then tap (single
//! and batched), check in, and read their feed and the leaderboard with the consistency token of
//! their last write.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde_json::{Value, json};
use surge_telegram_auth::{InitDataBuilder, WebAppUser};

/// Taps per action in a batched request.
pub(super) const BATCH_TAPS: usize = 5;

/// What one request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Action {
    Session,
    Tap,
    TapBatch,
    Checkin,
    ReadFeed,
    ReadLeaderboard,
}

impl Action {
    pub(super) const ALL: [Action; 6] = [
        Action::Session,
        Action::Tap,
        Action::TapBatch,
        Action::Checkin,
        Action::ReadFeed,
        Action::ReadLeaderboard,
    ];

    /// The endpoint label in reports.
    pub(super) fn endpoint(self) -> &'static str {
        match self {
            Action::Session => "POST /v1/sessions",
            Action::Tap => "POST /v1/taps",
            Action::TapBatch => "POST /v1/batch",
            Action::Checkin => "POST /v1/checkins",
            Action::ReadFeed => "GET /v1/me/feed",
            Action::ReadLeaderboard => "GET /v1/leaderboard/daily",
        }
    }

    pub(super) fn is_write(self) -> bool {
        !matches!(self, Action::ReadFeed | Action::ReadLeaderboard)
    }

    /// Events an accepted request of this kind appends.
    pub(super) fn events(self) -> u64 {
        match self {
            Action::TapBatch => BATCH_TAPS as u64,
            Action::ReadFeed | Action::ReadLeaderboard => 0,
            _ => 1,
        }
    }

    /// Method, path and JSON body (for writes).
    pub(super) fn request(self) -> (reqwest::Method, &'static str, Option<Value>) {
        use reqwest::Method;
        match self {
            Action::Session => (Method::POST, "/v1/sessions", Some(json!({}))),
            Action::Tap => (Method::POST, "/v1/taps", Some(json!({ "count": 1 }))),
            Action::TapBatch => {
                let taps = vec![json!({ "type": "taps", "count": 1 }); BATCH_TAPS];
                (Method::POST, "/v1/batch", Some(json!({ "actions": taps })))
            }
            Action::Checkin => (Method::POST, "/v1/checkins", Some(json!({}))),
            Action::ReadFeed => (Method::GET, "/v1/me/feed?limit=20", None),
            Action::ReadLeaderboard => (Method::GET, "/v1/leaderboard/daily?limit=100", None),
        }
    }
}

/// The mix of a returning user's actions, in percent (a user's first action is a session).
const MIX: [(Action, u32); 5] = [
    (Action::Tap, 50),
    (Action::TapBatch, 15),
    (Action::Checkin, 5),
    (Action::ReadFeed, 15),
    (Action::ReadLeaderboard, 15),
];

struct User {
    init_data: String,
    started: bool,
    /// The consistency token of the user's last accepted write.
    token: Option<String>,
}

pub(super) struct Crowd {
    first_id: i64,
    bot_token: String,
    users: Vec<Mutex<Option<User>>>,
}

impl Crowd {
    pub(super) fn new(first_id: i64, size: usize, bot_token: String) -> Self {
        Crowd {
            first_id,
            bot_token,
            users: (0..size).map(|_| Mutex::new(None)).collect(),
        }
    }

    pub(super) fn size(&self) -> usize {
        self.users.len()
    }

    /// The next action of user `index` (among the first `arrived`), its authorization and the
    /// token to read after. Signs the user's initData on first use.
    pub(super) fn next(&self, index: usize) -> (Action, String, Option<String>) {
        let user_id = self.first_id + index as i64;
        let mut slot = self.users[index].lock().expect("not poisoned");
        let user = slot.get_or_insert_with(|| User {
            init_data: sign(&self.bot_token, user_id),
            started: false,
            token: None,
        });
        let action = if user.started {
            pick(rand::rng().random_range(0..100))
        } else {
            user.started = true;
            Action::Session
        };
        let token = if action.is_write() {
            None
        } else {
            user.token.clone()
        };
        (action, format!("tma {}", user.init_data), token)
    }

    pub(super) fn wrote(&self, index: usize, token: String) {
        if let Some(user) = self.users[index].lock().expect("not poisoned").as_mut() {
            user.token = Some(token);
        }
    }
}

/// initData for `user_id`, signed now with `bot_token`.
pub(super) fn sign(bot_token: &str, user_id: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let user = WebAppUser {
        id: user_id,
        first_name: format!("Load{user_id}"),
        last_name: None,
        username: Some(format!("load{user_id}")),
        language_code: Some("en".into()),
        is_premium: false,
        is_bot: false,
        photo_url: None,
        allows_write_to_pm: true,
    };
    InitDataBuilder::new(user, now).sign(bot_token)
}

/// The action for a roll in `0..100`.
fn pick(roll: u32) -> Action {
    let mut edge = 0;
    for (action, percent) in MIX {
        edge += percent;
        if roll < edge {
            return action;
        }
    }
    Action::Tap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_covers_every_roll_and_sums_to_a_hundred() {
        assert_eq!(MIX.iter().map(|(_, p)| p).sum::<u32>(), 100);
        assert_eq!(pick(0), Action::Tap);
        assert_eq!(pick(49), Action::Tap);
        assert_eq!(pick(50), Action::TapBatch);
        assert_eq!(pick(99), Action::ReadLeaderboard);
    }

    #[test]
    fn a_user_opens_a_session_first_and_reads_after_their_last_write() {
        let crowd = Crowd::new(100, 2, "1:secret".into());
        let (first, auth, token) = crowd.next(1);
        assert_eq!((first, token), (Action::Session, None));
        assert!(auth.starts_with("tma ") && auth.contains("hash="));
        // Index 1 signs as the crowd's second user id.
        assert!(auth.contains("%22id%22%3A101%2C"), "{auth}");
        crowd.wrote(1, "t1".into());
        for _ in 0..200 {
            let (action, _, token) = crowd.next(1);
            assert_ne!(action, Action::Session);
            assert_eq!(token.is_some(), !action.is_write());
        }
    }
}
