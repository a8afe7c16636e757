use surge_schemas::{
    DailyCheckedIn, Envelope, ProfileUpdated, ReferralCredited, SessionStarted, TapsSubmitted,
};
use uuid::Uuid;

use super::*;

const USER: i64 = 7_000_000_001;
/// 2026-11-22T10:00:00Z, a Sunday in ISO week 2026-W47 (day 20779 since 1970-01-01).
const SUNDAY_10AM: i64 = 1_795_341_600_000;
/// 2026-11-23T00:00:00Z, the Monday that opens 2026-W48.
const MONDAY_MIDNIGHT: i64 = 1_795_392_000_000;
/// 2027-01-01T00:00:00Z, a Friday, still in ISO week 2026-W53.
const NEW_YEAR_2027: i64 = 1_798_761_600_000;

/// The partition of the records: every key the fold writes is its shard.
const PARTITION: i32 = 3;

/// The key space of the records' partition, as the sink hands it to the fold.
fn keys() -> KeySpace {
    KeySpace::new("test", Leaderboard::NAME, 1).partition(PARTITION)
}

fn record(n: u128, occurred_at: i64, payload: impl Into<Payload>) -> Record {
    Record {
        partition: PARTITION,
        offset: n as i64,
        event: Event {
            envelope: Envelope {
                event_id: Uuid::from_u128(n),
                user_id: USER,
                occurred_at,
                recorded_at: occurred_at,
            },
            payload: payload.into(),
        },
    }
}

fn taps(n: u128, at: i64, count: i32) -> Record {
    record(n, at, TapsSubmitted { count })
}

fn session(n: u128, username: Option<&str>, first_name: &str) -> Record {
    let started = SessionStarted {
        first_name: first_name.to_owned(),
        last_name: None,
        username: username.map(str::to_owned),
        language_code: None,
        is_premium: false,
        photo_url: None,
        allows_write_to_pm: true,
        start_param: None,
        platform: None,
    };
    record(n, SUNDAY_10AM, started)
}

fn profile(n: u128, display_name: Option<&str>) -> Record {
    let updated = ProfileUpdated {
        display_name: display_name.map(str::to_owned),
        language_code: Some("en".to_owned()),
        photo_url: None,
    };
    record(n, SUNDAY_10AM, updated)
}

fn fold(state: &mut LeaderboardState, record: &Record) -> Vec<RedisWrite> {
    Leaderboard.writes(state, record, &keys()).expect("applies")
}

fn incr(suffix: &str, by: i64) -> RedisWrite {
    RedisWrite::ZIncrBy {
        key: format!("test:leaderboard:v1:{{p{PARTITION}}}:{suffix}"),
        member: USER.to_string(),
        by,
    }
}

fn expire(suffix: &str, unix_secs: i64) -> RedisWrite {
    RedisWrite::ExpireAt {
        key: format!("test:leaderboard:v1:{{p{PARTITION}}}:{suffix}"),
        unix_secs,
    }
}

fn name(value: &str) -> RedisWrite {
    RedisWrite::HSet {
        key: format!("test:leaderboard:v1:{{p{PARTITION}}}:names"),
        field: USER.to_string(),
        value: value.to_owned(),
    }
}

/// The `ZINCRBY` amounts only, by key suffix (the partition's key space cut off) in order
/// all/daily/weekly.
fn scores(writes: &[RedisWrite]) -> Vec<(String, i64)> {
    writes
        .iter()
        .filter_map(|w| match w {
            RedisWrite::ZIncrBy { key, by, .. } => Some((
                (key.strip_prefix(&format!("test:leaderboard:v1:{{p{PARTITION}}}:")))
                    .expect("a shard of the records' partition")
                    .to_owned(),
                *by,
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn taps_score_in_all_time_day_and_week_with_expiry_after_each_write() {
    let writes = fold(&mut LeaderboardState::default(), &taps(1, SUNDAY_10AM, 25));
    assert_eq!(
        writes,
        vec![
            incr("all", 25),
            incr("daily:2026-11-22", 25),
            // 2026-11-25T00:00:00Z: two days after the day ends.
            expire("daily:2026-11-22", 1_795_564_800),
            incr("weekly:2026-W47", 25),
            // 2026-12-07T00:00:00Z: two weeks after W47 ends on 2026-11-23.
            expire("weekly:2026-W47", 1_796_601_600),
        ]
    );
}

#[test]
fn check_ins_score_by_streak_and_repeats_score_nothing() {
    let day = SUNDAY_10AM / 86_400_000;
    let checkin = |n: u128, day_offset: i64| {
        let at = SUNDAY_10AM + day_offset * 86_400_000;
        let day = i32::try_from(day + day_offset).expect("small");
        record(n, at, DailyCheckedIn { day })
    };
    let mut state = LeaderboardState::default();
    let all = |w: Vec<RedisWrite>| {
        scores(&w)
            .into_iter()
            .find(|(k, _)| k == "all")
            .map(|s| s.1)
    };

    assert_eq!(all(fold(&mut state, &checkin(1, 0))), Some(100));
    assert_eq!(all(fold(&mut state, &checkin(2, 1))), Some(200));
    assert_eq!(
        fold(&mut state, &checkin(3, 1)),
        vec![],
        "a second check-in the same day"
    );
    assert_eq!(all(fold(&mut state, &checkin(4, 2))), Some(300));
    assert_eq!(fold(&mut state, &checkin(5, 0)), vec![], "a late check-in");
    assert_eq!(
        all(fold(&mut state, &checkin(6, 4))),
        Some(100),
        "a gap resets"
    );
    let last = i32::try_from(day + 4).expect("small");
    assert_eq!(
        state.streak,
        Streak {
            current: 1,
            best: 3,
            last_day: Some(last)
        }
    );
}

#[test]
fn referral_credits_score_the_referrer() {
    let credited = ReferralCredited {
        referred_user_id: 42,
        source_event_id: Uuid::from_u128(99),
    };
    let writes = fold(
        &mut LeaderboardState::default(),
        &record(1, SUNDAY_10AM, credited),
    );
    assert_eq!(
        scores(&writes),
        vec![
            ("all".to_owned(), 500),
            ("daily:2026-11-22".to_owned(), 500),
            ("weekly:2026-W47".to_owned(), 500),
        ]
    );
    assert!(writes.iter().all(|w| match w {
        RedisWrite::ZIncrBy { member, .. } => member == &USER.to_string(),
        _ => true,
    }));
}

#[test]
fn periods_turn_at_utc_midnight_and_on_monday() {
    let mut state = LeaderboardState::default();
    let before = scores(&fold(&mut state, &taps(1, MONDAY_MIDNIGHT - 1, 1)));
    let after = scores(&fold(&mut state, &taps(2, MONDAY_MIDNIGHT, 1)));
    assert_eq!(before[1].0, "daily:2026-11-22");
    assert_eq!(before[2].0, "weekly:2026-W47");
    assert_eq!(after[1].0, "daily:2026-11-23");
    assert_eq!(after[2].0, "weekly:2026-W48");
}

#[test]
fn the_year_turns_daily_sets_but_not_the_iso_week() {
    let mut state = LeaderboardState::default();
    let old_year = fold(&mut state, &taps(1, NEW_YEAR_2027 - 1, 1));
    let new_year = fold(&mut state, &taps(2, NEW_YEAR_2027, 1));
    assert_eq!(
        old_year[1..],
        [
            incr("daily:2026-12-31", 1),
            expire("daily:2026-12-31", 1_798_934_400), // 2027-01-03T00:00:00Z
            incr("weekly:2026-W53", 1),
            expire("weekly:2026-W53", 1_800_230_400), // 2027-01-18T00:00:00Z
        ]
    );
    assert_eq!(
        new_year[1..],
        [
            incr("daily:2027-01-01", 1),
            expire("daily:2027-01-01", 1_799_020_800), // 2027-01-04T00:00:00Z
            incr("weekly:2026-W53", 1),
            expire("weekly:2026-W53", 1_800_230_400),
        ]
    );
}

#[test]
fn sessions_name_users_until_they_choose_a_display_name() {
    let mut state = LeaderboardState::default();
    assert_eq!(
        fold(&mut state, &session(1, None, "Ada")),
        vec![name("Ada")]
    );
    assert_eq!(
        fold(&mut state, &session(2, Some("ada_l"), "Ada")),
        vec![name("ada_l")],
        "a username is preferred"
    );
    assert_eq!(
        fold(&mut state, &session(3, Some("ada_l"), "Ada")),
        vec![],
        "unchanged"
    );
    assert_eq!(
        fold(&mut state, &profile(4, None)),
        vec![],
        "no display name in it"
    );
    assert_eq!(
        fold(&mut state, &profile(5, Some("Countess"))),
        vec![name("Countess")]
    );
    assert_eq!(
        fold(&mut state, &session(6, Some("ada_new"), "Ada")),
        vec![],
        "a chosen name stays"
    );
    assert_eq!(
        fold(&mut state, &profile(7, Some("Ada L."))),
        vec![name("Ada L.")]
    );
    assert_eq!(state.name.as_deref(), Some("Ada L."));
    assert!(state.name_chosen);
}

#[test]
fn the_same_events_from_the_same_state_give_the_same_writes() {
    let events = [
        session(1, Some("ada_l"), "Ada"),
        taps(2, SUNDAY_10AM, 10),
        record(3, SUNDAY_10AM, DailyCheckedIn { day: 20_779 }),
        record(4, MONDAY_MIDNIGHT, DailyCheckedIn { day: 20_780 }),
        profile(5, Some("Countess")),
        taps(6, NEW_YEAR_2027, 3),
    ];
    let run = || {
        let mut state = LeaderboardState::default();
        let writes: Vec<_> = events.iter().map(|e| fold(&mut state, e)).collect();
        (writes, state)
    };
    let (first, second) = (run(), run());
    assert_eq!(first, second);
    assert_eq!(
        first.0.iter().map(Vec::len).sum::<usize>(),
        1 + 5 + 5 + 5 + 1 + 5
    );
}

#[test]
fn events_outside_the_calendar_are_poison_and_leave_the_state_alone() {
    let mut state = LeaderboardState::default();
    let bad = record(9, i64::MAX, DailyCheckedIn { day: 20_779 });
    let error = Leaderboard.writes(&mut state, &bad, &keys());
    assert!(
        matches!(error, Err(ApplyError::Poison { event_id, .. }) if event_id == Uuid::from_u128(9)),
        "{error:?}"
    );
    assert_eq!(state, LeaderboardState::default());
}

#[test]
fn a_negative_tap_count_is_poison_as_in_wallets_and_leaves_the_state_alone() {
    let mut state = LeaderboardState::default();
    fold(&mut state, &session(1, None, "Ada"));
    let before = state.clone();
    let error = Leaderboard.writes(&mut state, &taps(2, NEW_YEAR_2027, -5), &keys());
    assert!(
        matches!(&error, Err(ApplyError::Poison { reason, .. }) if reason.contains("negative count (-5)")),
        "{error:?}"
    );
    assert_eq!(state, before);
}

#[test]
fn stored_state_reads_back_and_tolerates_missing_fields() {
    let mut state = LeaderboardState::default();
    fold(&mut state, &session(1, None, "Ada"));
    fold(
        &mut state,
        &record(2, SUNDAY_10AM, DailyCheckedIn { day: 20_779 }),
    );
    let json = serde_json::to_string(&state).expect("serializes");
    assert_eq!(
        serde_json::from_str::<LeaderboardState>(&json).ok(),
        Some(state)
    );
    let partial: LeaderboardState =
        serde_json::from_str(r#"{"streak":{"current":2,"best":2,"last_day":5}}"#).expect("parses");
    assert_eq!(partial.streak.current, 2);
    assert_eq!(partial.name, None);
}
