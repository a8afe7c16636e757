use serde_json::{Value, json};
use surge_schemas::{
    DailyCheckedIn, Envelope, Payload, ProfileUpdated, ReferralCredited, SessionStarted,
    TapsSubmitted,
};
use uuid::Uuid;

use super::*;

const REFERRER: i64 = 7_000_000_001;
/// 2026-11-22T10:15:30.123Z.
const AT: i64 = 1_795_342_530_123;
const EVENT_ID: &str = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
/// Partitions of the events topic.
const PARTITIONS: i32 = 6;

/// The partition the user's events are on.
fn partition() -> i32 {
    surge_projections::partitioning::partition_of_user(REFERRER, PARTITIONS)
}

/// The key the query API reads the user's feed from.
fn read_key() -> String {
    let feeds = surge_projections::feed::Feeds {
        base: "test:feed:v1",
        partitions: PARTITIONS,
    };
    feeds.key(REFERRER)
}

fn record(occurred_at: i64, payload: impl Into<Payload>) -> Record {
    Record {
        partition: partition(),
        offset: 17,
        event: Event {
            envelope: Envelope {
                event_id: Uuid::parse_str(EVENT_ID).expect("uuid"),
                user_id: REFERRER,
                occurred_at,
                recorded_at: occurred_at,
            },
            payload: payload.into(),
        },
    }
}

/// The key space of the records' partition, as the sink hands it to the fold.
fn keys() -> KeySpace {
    KeySpace::new("test", Feed::NAME, 1).partition(partition())
}

fn writes(record: &Record) -> Result<Vec<RedisWrite>, ApplyError> {
    Feed.writes(&mut (), record, &keys())
}

/// The pushed item of `payload`, parsed.
fn item(payload: impl Into<Payload>) -> Value {
    match writes(&record(AT, payload)).expect("applies").first() {
        Some(RedisWrite::LPush { value, .. }) => serde_json::from_str(value).expect("JSON"),
        other => panic!("expected an LPUSH first, got {other:?}"),
    }
}

fn expected(kind: &str, fields: Value) -> Value {
    let mut item = json!({
        "event_id": EVENT_ID,
        "occurred_at": "2026-11-22T10:15:30.123Z",
        "type": kind,
    });
    item.as_object_mut()
        .expect("object")
        .extend(fields.as_object().expect("object").clone());
    item
}

#[test]
fn each_event_pushes_one_item_and_trims_the_list_to_its_cap() {
    let key = read_key();
    assert_eq!(
        key,
        format!("test:feed:v1:{{p{}}}:user:{REFERRER}", partition())
    );
    let writes = writes(&record(AT, TapsSubmitted { count: 25 })).expect("applies");
    assert_eq!(
        writes,
        vec![
            RedisWrite::LPush {
                key: key.clone(),
                value: format!(
                    r#"{{"event_id":"{EVENT_ID}","occurred_at":"2026-11-22T10:15:30.123Z","type":"taps","count":25}}"#
                ),
            },
            RedisWrite::LTrim {
                key,
                start: 0,
                stop: 199
            },
        ]
    );
}

#[test]
fn taps_and_check_ins_have_their_count_and_day() {
    assert_eq!(
        item(TapsSubmitted { count: 25 }),
        expected("taps", json!({ "count": 25 }))
    );
    assert_eq!(
        item(DailyCheckedIn { day: 20_779 }),
        expected("checkin", json!({ "day": "2026-11-22" }))
    );
}

#[test]
fn sessions_and_profile_changes_show_their_fields_with_nulls_for_absent_ones() {
    let started = SessionStarted {
        first_name: "Ada".to_owned(),
        last_name: None,
        username: Some("ada_l".to_owned()),
        language_code: Some("en".to_owned()),
        is_premium: true,
        photo_url: None,
        allows_write_to_pm: true,
        start_param: Some("ref_42".to_owned()),
        platform: Some("ios".to_owned()),
    };
    assert_eq!(
        item(started.clone()),
        expected("session", json!({ "platform": "ios" }))
    );
    let no_platform = SessionStarted {
        platform: None,
        ..started
    };
    assert_eq!(
        item(no_platform),
        expected("session", json!({ "platform": null }))
    );
    let updated = ProfileUpdated {
        display_name: Some("Countess".to_owned()),
        language_code: None,
        photo_url: Some("https://example.com/a.jpg".to_owned()),
    };
    assert_eq!(
        item(updated),
        expected(
            "profile",
            json!({
                "display_name": "Countess",
                "language_code": null,
                "photo_url": "https://example.com/a.jpg",
            })
        )
    );
}

#[test]
fn referral_credits_go_to_the_referrers_feed() {
    let credited = ReferralCredited {
        referred_user_id: 9_007_199_254_740_991,
        source_event_id: Uuid::from_u128(1),
    };
    let writes = writes(&record(AT, credited.clone())).expect("applies");
    assert!(
        matches!(&writes[0], RedisWrite::LPush { key, .. } if key == &read_key()),
        "{writes:?}"
    );
    assert_eq!(
        item(credited),
        expected(
            "referral",
            json!({ "referred_user_id": 9_007_199_254_740_991_i64 })
        )
    );
}

#[test]
fn the_same_event_gives_the_same_writes() {
    let record = record(AT, DailyCheckedIn { day: 20_779 });
    assert_eq!(writes(&record).unwrap(), writes(&record).unwrap());
}

#[test]
fn events_that_cannot_be_shown_are_poison() {
    for bad in [
        record(i64::MAX, TapsSubmitted { count: 1 }),
        record(AT, DailyCheckedIn { day: i32::MIN }),
    ] {
        let error = writes(&bad);
        assert!(
            matches!(&error, Err(ApplyError::Poison { event_id, .. }) if event_id.to_string() == EVENT_ID),
            "{error:?}"
        );
    }
}
