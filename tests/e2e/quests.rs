//! Quests through the real binary: progress served with read-your-writes, each quest completed
//! exactly once per user across SIGKILLs of the processors, the reward in balance, ledger and
//! leaderboard, claims refused with a clear error, and a rebuild of `quests` equal to a fold of
//! the topic.

use std::collections::{BTreeMap, BTreeSet};

use rdkafka::Message;
use serde_json::{Value, json};
use sqlx::Row;
use surge_processors::projectors::economy::Streak;
use surge_projections::naming;
use surge_schemas::Payload;

use crate::fold::fold_topic;
use crate::helpers::{
    Options, TestApp, consistency_token, init_data, init_data_with, json, pg_pool, started,
};
use crate::processing::reproduce;
use crate::projected::{active_version, assert_projections_equal_fold, wait_caught_up};

/// A book small enough for a test to reach every goal: two check-ins (yesterday and today) make
/// a streak of two, one credited referral, three sessions and a claim.
const BOOK: &str = r#"[
  {"id": "tap_1000", "title": "Tap 1,000 times", "reward": 1000, "goal": {"taps": 1000}},
  {"id": "streak_2", "title": "Check in 2 days in a row", "reward": 200, "goal": {"streak": 2}},
  {"id": "invite_1", "title": "Invite a friend", "reward": 500, "goal": {"referrals": 1}},
  {"id": "open_3", "title": "Open the app 3 times", "reward": 300, "goal": {"sessions": 3}, "claim": true}
]"#;

const USERS: std::ops::RangeInclusive<i64> = 1..=8;

struct Quested {
    writer: TestApp,
    processor: TestApp,
    query: TestApp,
    book: String,
}

/// The options of `role` for this test's quest book.
fn options(book: &str, role: &'static str) -> Options {
    let mut env = vec![("SURGE_QUESTS_FILE", book.to_owned())];
    if role == "process" {
        env.extend([
            ("SURGE_PROCESS_BATCH_MAX", "25".into()),
            ("SURGE_PROCESS_SESSION_TIMEOUT_MS", "6000".into()),
            ("SURGE_PROCESS_MAX_POLL_INTERVAL_MS", "10000".into()),
            ("SURGE_DERIVED_DELIVERY", "idempotent".into()),
        ]);
    }
    if role == "query-api" {
        // A busy machine can take longer than production's 2 s to catch up after a kill.
        env.push(("SURGE_CONSISTENCY_WAIT_MS", "20000".into()));
    }
    Options {
        role: Some(role),
        env,
        ..Options::default()
    }
}

impl Quested {
    fn restart_processor(&mut self) {
        let fresh = started(&self.writer.id, options(&self.book, "process"));
        std::mem::replace(&mut self.processor, fresh).kill(); // SIGKILL, mid-stream
    }

    /// `surge replay quests` with this test's book; `version` becomes active.
    fn replay_quests(&self, version: u32) {
        let output = self
            .writer
            .cli("replay")
            .args([
                "quests",
                "--drop-grace-secs",
                "2",
                "--handover-timeout-secs",
                "60",
            ])
            .env("SURGE_QUESTS_FILE", &self.book)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let switched = format!("quests v{version} is active in place of v{}", version - 1);
        assert!(
            output.status.success() && stdout.contains(&switched),
            "surge replay quests failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    async fn write(&self, path: &str, user: i64, body: Value) -> String {
        let response = self.writer.write("POST", path, user, body).await;
        assert_eq!(response.status(), 202, "{path} of user {user}");
        consistency_token(&response)
    }

    async fn session(&self, user: i64, referrer: Option<i64>) {
        let start_param = referrer.map(|r| format!("ref_{r}"));
        let response = self
            .writer
            .request("POST", "/v1/sessions")
            .header(
                "authorization",
                format!("tma {}", init_data_with(user, start_param.as_deref())),
            )
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }

    async fn quests(&self, user: i64, token: &str) -> BTreeMap<String, Value> {
        let response = self
            .query
            .request("GET", "/v1/me/quests")
            .header("authorization", format!("tma {}", init_data(user)))
            .header("x-consistency-token", token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = json(response).await;
        body["quests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| (q["id"].as_str().unwrap().to_owned(), q.clone()))
            .collect()
    }
}

async fn quested() -> Quested {
    let book = std::env::temp_dir().join(format!("surge-quests-{}.json", std::process::id()));
    std::fs::write(&book, BOOK).unwrap();
    let book = book.to_string_lossy().into_owned();
    let writer = crate::helpers::spawn_app_with(Options {
        env: vec![
            ("SURGE_QUESTS_FILE", book.clone()),
            ("SURGE_USER_RATE_PER_SEC", "1000".into()),
            ("SURGE_USER_BURST", "1000".into()),
            ("SURGE_TAP_ENERGY_CAPACITY", "1000000".into()),
        ],
        ..Options::default()
    })
    .await;
    let started = |role| started(&writer.id, options(&book, role));
    Quested {
        processor: started("process"),
        query: started("query-api"),
        writer,
        book,
    }
}

/// What the topic says about quests: each user's progress, as an independent fold, and every
/// QuestCompleted event id per user and quest.
#[derive(Debug, Default, PartialEq, Eq)]
struct TopicQuests {
    taps: i64,
    sessions: i64,
    referrals: i64,
    best_streak: i32,
    completed: BTreeMap<String, BTreeSet<String>>,
}

async fn quests_on_topic(app: &TestApp) -> BTreeMap<i64, TopicQuests> {
    let (codec, _registry) = app.codec().await;
    let mut records = app.read_records(app.record_count() as usize);
    records.sort_by_key(|r| (r.partition(), r.offset()));
    let mut seen = BTreeSet::new();
    let mut users: BTreeMap<i64, TopicQuests> = BTreeMap::new();
    let mut streaks: BTreeMap<i64, Streak> = BTreeMap::new();
    for record in records {
        let event = codec.decode(record.payload().unwrap()).await.unwrap();
        if !seen.insert(event.envelope.event_id) {
            continue;
        }
        let user_id = event.envelope.user_id;
        let user = users.entry(user_id).or_default();
        match &event.payload {
            Payload::TapsSubmitted(t) => user.taps += i64::from(t.count),
            Payload::SessionStarted(_) => user.sessions += 1,
            Payload::ReferralCredited(_) => user.referrals += 1,
            Payload::DailyCheckedIn(c) => {
                let streak = streaks.entry(user_id).or_default();
                streak.check_in(c.day);
                user.best_streak = streak.best;
            }
            Payload::QuestCompleted(q) => {
                user.completed
                    .entry(q.quest_id.clone())
                    .or_default()
                    .insert(event.envelope.event_id.to_string());
            }
            // The oracle counts what the quest book's goals count and nothing else: an event
            // type the projection started counting would make the two disagree below.
            _ => {}
        }
    }
    users
}

/// The quests tables of the active version, as `TopicQuests` (completions by event id).
async fn quests_in_store(app: &TestApp) -> BTreeMap<i64, TopicQuests> {
    let pool = pg_pool(&app.id).await;
    let version = active_version(app, "quests").await;
    let quests = naming::table_prefix("quests", version);
    let mut users: BTreeMap<i64, TopicQuests> = BTreeMap::new();
    let progress = sqlx::query(&format!(
        "SELECT user_id, taps, sessions, referrals, streak_best FROM {quests}_progress"
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    for row in progress {
        let user = users.entry(row.get("user_id")).or_default();
        user.taps = row.get("taps");
        user.sessions = row.get("sessions");
        user.referrals = row.get("referrals");
        user.best_streak = row.get("streak_best");
    }
    let completed = sqlx::query(&format!(
        "SELECT user_id, quest_id, event_id::text AS event_id FROM {quests}_completed"
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    for row in completed {
        users
            .entry(row.get("user_id"))
            .or_default()
            .completed
            .entry(row.get("quest_id"))
            .or_default()
            .insert(row.get("event_id"));
    }
    users
}

/// The quests each user must have completed in this test: every goal but the referral for all,
/// the referral for the referrers (odd users).
fn expected_completions(user: i64) -> BTreeSet<String> {
    let mut quests: BTreeSet<String> = ["tap_1000", "streak_2", "open_3"].map(str::to_owned).into();
    if user % 2 == 1 {
        quests.insert("invite_1".into());
    }
    quests
}

#[tokio::test]
async fn quests_complete_once_across_sigkills_pay_their_reward_and_rebuild_equal_to_a_fold() {
    let mut app = quested().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // The last second of the previous UTC day: a check-in may be dated up to 24 h back, and
    // `now - 23 h` is still today after 23:00 UTC (the streak quest then never completed).
    let yesterday = now - now.rem_euclid(86_400_000) - 1_000;

    // Claims the book refuses: nothing is appended.
    let before = app.writer.record_count();
    for (quest, status, code) in [
        ("nope", 404, "unknown_quest"),
        ("tap_1000", 409, "quest_not_claimable"),
    ] {
        let response = app
            .writer
            .write("POST", &format!("/v1/quests/{quest}/claim"), 1, json!({}))
            .await;
        assert_eq!(response.status(), status, "claim of {quest}");
        assert_eq!(json(response).await["error"]["code"], code);
    }
    assert_eq!(
        app.writer.record_count(),
        before,
        "a refused claim appends nothing"
    );

    // Referrers (odd users) open the app first, then each even user joins through the user
    // before them: one credited referral per odd user.
    for user in USERS.filter(|u| u % 2 == 1) {
        app.session(user, None).await;
    }
    // A referrer is credited only once the referrals deriver has applied their session, and a
    // referred user's session may sit on a partition it reaches first.
    wait_caught_up(&app.writer, &[&app.processor]).await;
    for user in USERS.filter(|u| u % 2 == 0) {
        app.session(user, Some(user - 1)).await;
    }
    // A claim before the goal is met is accepted as a write and completes nothing.
    let early = app.write("/v1/quests/open_3/claim", 2, json!({})).await;
    let seen = app.quests(2, &early).await;
    assert_eq!(seen["open_3"]["status"], "in_progress");
    assert_eq!(seen["open_3"]["progress"], 1);
    assert_eq!(
        seen["tap_1000"]["goal"],
        json!({"kind": "taps", "target": 1000})
    );

    // Four rounds of play, the processor killed after each, mid-stream.
    for round in 0..4 {
        for user in USERS {
            app.write("/v1/taps", user, json!({ "count": 300 })).await;
            let at = if round == 0 { yesterday } else { now };
            app.write("/v1/checkins", user, json!({ "occurred_at": at }))
                .await;
            app.session(user, None).await;
            if round >= 2 {
                // Sessions reached three in round 1; claiming again changes nothing.
                app.write("/v1/quests/open_3/claim", user, json!({})).await;
            }
        }
        app.restart_processor();
    }
    // Copies of events already applied (a retried write or a re-emission makes them): counted
    // once, like the originals.
    reproduce(&app.writer, 60);
    wait_caught_up(&app.writer, &[&app.processor]).await;

    // Exactly one completion per user and quest on the topic, under one event id.
    let on_topic = quests_on_topic(&app.writer).await;
    for user in USERS {
        let quests = &on_topic[&user].completed;
        let ids: BTreeSet<String> = quests.keys().cloned().collect();
        assert_eq!(ids, expected_completions(user), "user {user}'s completions");
        for (quest, events) in quests {
            assert_eq!(
                events.len(),
                1,
                "user {user} completed {quest} as {events:?}"
            );
        }
    }

    // Served with read-your-writes: the last write's token shows every quest completed.
    let token = app.write("/v1/taps", 1, json!({ "count": 1 })).await;
    let served = app.quests(1, &token).await;
    for quest in expected_completions(1) {
        assert_eq!(served[&quest]["status"], "completed", "{quest}: {served:?}");
        assert!(served[&quest]["completed_at"].is_string());
    }
    assert_eq!(served["tap_1000"]["progress"], 1000, "capped at the target");
    wait_caught_up(&app.writer, &[&app.processor]).await;

    // The rewards are in every balance, ledger and leaderboard score, as a fold of the topic
    // (which prices each QuestCompleted by the coin rules) says.
    let expected = fold_topic(&app.writer, app.writer.record_count() as usize).await;
    assert_projections_equal_fold(&app.writer, &expected).await;
    let pool = pg_pool(&app.writer.id).await;
    let wallets = active_version(&app.writer, "wallets").await;
    let wallets = naming::table_prefix("wallets", wallets);
    let rows = sqlx::query(&format!(
        "SELECT user_id, count(*) AS n, sum(amount)::bigint AS coins FROM {wallets}_ledger WHERE kind = 'quest' GROUP BY user_id"
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    let rewards: BTreeMap<i64, (i64, i64)> = rows
        .iter()
        .map(|r| (r.get("user_id"), (r.get("n"), r.get("coins"))))
        .collect();
    assert_eq!(
        rewards[&1],
        (4, 1000 + 200 + 500 + 300),
        "user 1's quest ledger"
    );
    assert_eq!(rewards[&2], (3, 1000 + 200 + 300), "user 2's quest ledger");

    // The projection equals a fold of the topic, and so does a rebuild of it, which emits
    // nothing: the completions on the topic stay one per user and quest.
    let store = quests_in_store(&app.writer).await;
    let topic = quests_on_topic(&app.writer).await;
    assert_eq!(
        store, topic,
        "quests projection against a fold of the topic"
    );
    app.replay_quests(2);
    wait_caught_up(&app.writer, &[&app.processor]).await;
    assert_eq!(active_version(&app.writer, "quests").await, 2);
    assert_eq!(
        quests_in_store(&app.writer).await,
        topic,
        "the rebuilt quests"
    );
    assert_eq!(
        quests_on_topic(&app.writer).await,
        topic,
        "the rebuild emitted nothing"
    );

    // A later book adds a quest every user has already reached. A rebuild with it records no
    // completion nobody emitted (it emits nothing); the serving version completes the quest on
    // the user's next event, once, and pays it.
    let later = format!("{}-later.json", app.book.trim_end_matches(".json"));
    let mut book: Vec<Value> = serde_json::from_str(BOOK).unwrap();
    book.push(
        json!({"id": "tap_100", "title": "Tap 100 times", "reward": 50, "goal": {"taps": 100}}),
    );
    std::fs::write(&later, serde_json::to_string(&book).unwrap()).unwrap();
    app.book = later;
    app.restart_processor();
    app.replay_quests(3);
    wait_caught_up(&app.writer, &[&app.processor]).await;
    assert_eq!(
        quests_in_store(&app.writer).await,
        topic,
        "a rebuild under a new book records only completions that were emitted"
    );
    app.write("/v1/taps", 1, json!({ "count": 1 })).await;
    wait_caught_up(&app.writer, &[&app.processor]).await;
    let after = quests_on_topic(&app.writer).await;
    assert_eq!(after[&1].completed["tap_100"].len(), 1, "{:?}", after[&1]);
    assert!(
        !after[&2].completed.contains_key("tap_100"),
        "no event, no decision yet"
    );
    assert_eq!(quests_in_store(&app.writer).await, after);
    let expected = fold_topic(&app.writer, app.writer.record_count() as usize).await;
    assert_projections_equal_fold(&app.writer, &expected).await;
}
