use std::collections::HashMap;

use surge_projections::profiles::Profile;
use surge_schemas::{
    DailyCheckedIn, Envelope, Event, Payload, ProfileUpdated, ReferralCredited, SessionStarted,
    TapsSubmitted,
};
use uuid::Uuid;

use super::{fold, fold_batch, referrer};
use crate::runtime::Record;

const ALICE: i64 = 7_000_000_001;
const BOB: i64 = 42;

fn event(user_id: i64, occurred_at: i64, payload: impl Into<Payload>) -> Event {
    Event {
        envelope: Envelope {
            event_id: Uuid::now_v7(),
            user_id,
            occurred_at,
            recorded_at: occurred_at,
        },
        payload: payload.into(),
    }
}

fn session(start_param: Option<&str>, language: Option<&str>) -> SessionStarted {
    SessionStarted {
        first_name: "Alice".into(),
        last_name: Some("Liddell".into()),
        username: Some("alice".into()),
        language_code: language.map(Into::into),
        is_premium: true,
        photo_url: Some("https://t.me/a.jpg".into()),
        allows_write_to_pm: true,
        start_param: start_param.map(Into::into),
        platform: Some("ios".into()),
    }
}

fn update(name: Option<&str>, language: Option<&str>, photo: Option<&str>) -> ProfileUpdated {
    ProfileUpdated {
        display_name: name.map(Into::into),
        language_code: language.map(Into::into),
        photo_url: photo.map(Into::into),
    }
}

fn folded(events: &[Event]) -> Option<Profile> {
    let mut profile = None;
    for e in events {
        fold(&mut profile, e);
    }
    profile
}

#[test]
fn referrer_accepts_only_canonical_ref_ids_of_someone_else() {
    assert_eq!(referrer(Some("ref_42"), ALICE), Some(42));
    assert_eq!(
        referrer(Some("ref_9223372036854775807"), ALICE),
        Some(i64::MAX)
    );
    for malformed in [
        "ref_",
        "ref_abc",
        "ref_+42",
        "ref_-42",
        "ref_042",
        "ref_0",
        "ref_42x",
        "REF_42",
        "xref_42",
        "ref_9223372036854775808",
        "42",
        "",
    ] {
        assert_eq!(referrer(Some(malformed), ALICE), None, "{malformed:?}");
    }
    assert_eq!(
        referrer(Some("ref_7000000001"), ALICE),
        None,
        "self-referral"
    );
    assert_eq!(referrer(None, ALICE), None);
}

#[test]
fn the_first_session_creates_the_profile_and_fixes_the_referrer() {
    let p = folded(&[
        event(ALICE, 1_000, session(Some("ref_42"), Some("en"))),
        event(ALICE, 2_000, session(Some("ref_43"), Some("de"))),
    ])
    .unwrap();
    assert_eq!(p.user_id, ALICE);
    assert_eq!(p.referred_by, Some(42));
    assert_eq!(p.sessions_count, 2);
    assert_eq!((p.first_seen_at_ms, p.last_seen_at_ms), (1_000, 2_000));
    assert_eq!(p.first_name.as_deref(), Some("Alice"));
    assert_eq!(p.username.as_deref(), Some("alice"));
    assert!(p.is_premium);
    assert_eq!(
        p.language_code.as_deref(),
        Some("de"),
        "sessions refresh the snapshot"
    );
}

#[test]
fn a_malformed_or_self_referral_on_the_first_session_is_final() {
    let malformed = folded(&[
        event(ALICE, 1_000, session(Some("ref_x"), None)),
        event(ALICE, 2_000, session(Some("ref_42"), None)),
    ]);
    assert_eq!(malformed.unwrap().referred_by, None);
    let own = folded(&[
        event(ALICE, 1_000, session(Some("ref_7000000001"), None)),
        event(ALICE, 2_000, session(Some("ref_42"), None)),
    ]);
    assert_eq!(own.unwrap().referred_by, None);
}

#[test]
fn a_session_after_a_check_in_is_still_the_first_session() {
    let p = folded(&[
        event(ALICE, 1_000, DailyCheckedIn { day: 10 }),
        event(ALICE, 2_000, session(Some("ref_42"), None)),
    ])
    .unwrap();
    assert_eq!(p.referred_by, Some(42));
    assert_eq!(p.sessions_count, 1);
}

#[test]
fn profile_updates_set_present_fields_and_chosen_ones_survive_sessions() {
    let p = folded(&[
        event(ALICE, 1_000, session(None, Some("en"))),
        event(ALICE, 2_000, update(Some("Queen A"), Some("fr"), None)),
        event(ALICE, 3_000, update(None, None, None)),
        event(ALICE, 4_000, session(None, Some("en"))),
    ])
    .unwrap();
    assert_eq!(p.display_name.as_deref(), Some("Queen A"));
    assert_eq!(p.language_code.as_deref(), Some("fr"));
    assert!(p.language_code_chosen);
    assert_eq!(
        p.photo_url.as_deref(),
        Some("https://t.me/a.jpg"),
        "not chosen: Telegram's"
    );
    assert!(!p.photo_url_chosen);
    assert_eq!(p.last_seen_at_ms, 4_000);
}

#[test]
fn check_ins_move_the_streak_and_create_a_missing_profile() {
    let p = folded(&[
        event(ALICE, 1_000, DailyCheckedIn { day: 10 }),
        event(ALICE, 1_100, DailyCheckedIn { day: 11 }),
        event(ALICE, 1_200, DailyCheckedIn { day: 11 }),
        event(ALICE, 1_300, DailyCheckedIn { day: 12 }),
        event(ALICE, 1_400, DailyCheckedIn { day: 9 }),
        event(ALICE, 1_500, DailyCheckedIn { day: 20 }),
    ])
    .unwrap();
    assert_eq!(
        (p.streak_current, p.streak_best, p.streak_last_day),
        (1, 3, Some(20))
    );
    assert_eq!(p.sessions_count, 0);
    assert_eq!(p.first_name, None);
    assert_eq!((p.first_seen_at_ms, p.last_seen_at_ms), (1_000, 1_500));
}

#[test]
fn taps_are_activity_and_late_events_widen_the_seen_range() {
    let p = folded(&[
        event(ALICE, 5_000, session(None, None)),
        event(ALICE, 9_000, TapsSubmitted { count: 3 }),
        event(ALICE, 2_000, TapsSubmitted { count: 1 }),
    ])
    .unwrap();
    assert_eq!((p.first_seen_at_ms, p.last_seen_at_ms), (2_000, 9_000));
    assert_eq!(p.sessions_count, 1);
}

#[test]
fn referral_credits_leave_profiles_alone() {
    let credit = ReferralCredited {
        referred_user_id: ALICE,
        source_event_id: Uuid::now_v7(),
    };
    assert_eq!(folded(&[event(BOB, 1_000, credit)]), None);
}

#[test]
fn a_batch_folds_onto_stored_rows_and_returns_each_touched_user_once() {
    let stored = folded(&[event(ALICE, 1_000, session(Some("ref_42"), Some("en")))]).unwrap();
    let credit = ReferralCredited {
        referred_user_id: ALICE,
        source_event_id: Uuid::now_v7(),
    };
    let records: Vec<Record> = [
        event(BOB, 3_000, TapsSubmitted { count: 1 }),
        event(ALICE, 4_000, session(Some("ref_43"), Some("en"))),
        event(BOB, 5_000, session(Some("ref_7000000001"), None)),
        event(42, 6_000, credit),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, event)| Record {
        partition: 0,
        offset: i as i64,
        event,
    })
    .collect();
    let rows = fold_batch(HashMap::from([(ALICE, stored)]), &records);
    let summary: Vec<_> = rows
        .iter()
        .map(|p| {
            (
                p.user_id,
                p.sessions_count,
                p.referred_by,
                p.first_seen_at_ms,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [(BOB, 1, Some(ALICE), 3_000), (ALICE, 2, Some(42), 1_000)]
    );
}
