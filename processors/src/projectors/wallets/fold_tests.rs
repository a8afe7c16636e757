use std::collections::{HashMap, HashSet};

use surge_projections::wallets::{Balance, StreakRow};
use surge_schemas::{
    DailyCheckedIn, Envelope, Event, Payload, ProfileUpdated, ReferralCredited, TapsSubmitted,
};
use uuid::Uuid;

use super::{checkin_users, earning_users, number, plan};
use crate::runtime::{ApplyError, Record};

const ALICE: i64 = 7_000_000_001;
const BOB: i64 = 42;

fn records(events: Vec<(i64, Payload)>) -> Vec<Record> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, (user_id, payload))| Record {
            partition: 3,
            offset: 100 + i as i64,
            event: Event {
                envelope: Envelope {
                    event_id: Uuid::now_v7(),
                    user_id,
                    occurred_at: 1_000 * i as i64,
                    recorded_at: 1_000 * i as i64,
                },
                payload,
            },
        })
        .collect()
}

fn taps(count: i32) -> Payload {
    TapsSubmitted { count }.into()
}

fn checkin(day: i32) -> Payload {
    DailyCheckedIn { day }.into()
}

fn credit(referred: i64) -> Payload {
    ReferralCredited {
        referred_user_id: referred,
        source_event_id: Uuid::now_v7(),
    }
    .into()
}

/// (user, kind, amount) of each planned ledger row.
fn amounts(records: &[Record], stored: HashMap<i64, StreakRow>) -> Vec<(i64, &'static str, i64)> {
    let plan = plan(records, stored).unwrap();
    plan.entries
        .iter()
        .map(|e| (e.user_id, e.kind, e.amount))
        .collect()
}

#[test]
fn each_earning_event_becomes_one_entry_with_its_origin() {
    let batch = records(vec![
        (ALICE, taps(25)),
        (
            ALICE,
            ProfileUpdated {
                display_name: None,
                language_code: None,
                photo_url: None,
            }
            .into(),
        ),
        (BOB, credit(ALICE)),
        (ALICE, taps(0)),
    ]);
    let plan = plan(&batch, HashMap::new()).unwrap();
    assert_eq!(plan.entries.len(), 2);
    let taps = &plan.entries[0];
    assert_eq!(
        (taps.user_id, taps.kind, taps.amount),
        (ALICE, "taps", 25)
    );
    assert_eq!(taps.event_id, batch[0].event.envelope.event_id);
    assert_eq!(
        (taps.partition, taps.offset, taps.occurred_at_ms),
        (3, 100, 0)
    );
    let referral = &plan.entries[1];
    assert_eq!(
        (referral.user_id, referral.kind, referral.amount),
        (BOB, "referral", 500)
    );
    assert!(plan.streaks.is_empty());
}

#[test]
fn check_ins_earn_the_streak_bonus_once_per_day() {
    let batch = records(vec![
        (ALICE, checkin(10)),
        (ALICE, checkin(11)),
        (ALICE, checkin(11)),
        (ALICE, checkin(9)),
        (ALICE, checkin(12)),
        (ALICE, checkin(20)),
    ]);
    assert_eq!(
        amounts(&batch, HashMap::new()),
        [
            (ALICE, "checkin", 100),
            (ALICE, "checkin", 200),
            (ALICE, "checkin", 300),
            (ALICE, "checkin", 100)
        ]
    );
    let plan = plan(&batch, HashMap::new()).unwrap();
    assert_eq!(
        plan.streaks,
        [StreakRow {
            user_id: ALICE,
            current: 1,
            best: 3,
            last_day: Some(20)
        }]
    );
}

#[test]
fn streaks_continue_from_the_stored_state_and_the_bonus_is_capped() {
    let stored = HashMap::from([(
        ALICE,
        StreakRow {
            user_id: ALICE,
            current: 6,
            best: 6,
            last_day: Some(10),
        },
    )]);
    let batch = records(vec![(ALICE, checkin(11)), (ALICE, checkin(12))]);
    assert_eq!(
        amounts(&batch, stored.clone()),
        [(ALICE, "checkin", 700), (ALICE, "checkin", 700)]
    );
    assert_eq!(
        plan(&batch, stored).unwrap().streaks,
        [StreakRow {
            user_id: ALICE,
            current: 8,
            best: 8,
            last_day: Some(12)
        }]
    );
}

#[test]
fn a_check_in_that_does_not_count_writes_nothing() {
    let stored = HashMap::from([(
        ALICE,
        StreakRow {
            user_id: ALICE,
            current: 2,
            best: 5,
            last_day: Some(10),
        },
    )]);
    let batch = records(vec![(ALICE, checkin(10)), (ALICE, checkin(8))]);
    assert_eq!(plan(&batch, stored).unwrap(), super::Plan::default());
}

#[test]
fn an_event_id_seen_earlier_in_the_batch_is_skipped() {
    let mut batch = records(vec![(ALICE, taps(5))]);
    let mut again = batch[0].clone();
    again.offset += 1;
    batch.push(again);
    assert_eq!(amounts(&batch, HashMap::new()), [(ALICE, "taps", 5)]);
}

#[test]
fn a_negative_tap_count_is_poison() {
    let batch = records(vec![(ALICE, taps(3)), (BOB, taps(-1))]);
    let poisoned = batch[1].event.envelope.event_id;
    match plan(&batch, HashMap::new()) {
        Err(ApplyError::Poison { event_id, .. }) => assert_eq!(event_id, poisoned),
        other => panic!("expected poison, got {other:?}"),
    }
}

#[test]
fn only_check_in_users_need_their_streaks_loaded() {
    let batch = records(vec![
        (BOB, checkin(1)),
        (ALICE, taps(1)),
        (BOB, checkin(2)),
        (ALICE + 1, checkin(1)),
    ]);
    assert_eq!(checkin_users(&batch), [BOB, ALICE + 1]);
}

/// (user, seq, amount, balance_after) of each numbered row.
fn numbered(
    records: &[Record],
    stored: &HashMap<i64, Balance>,
    applied: &HashSet<Uuid>,
) -> Vec<(i64, i64, i64, i64)> {
    let plan = plan(records, HashMap::new()).unwrap();
    number(&plan.entries, stored, applied)
        .iter()
        .map(|e| (e.user_id, e.seq, e.amount, e.balance_after))
        .collect()
}

#[test]
fn rows_continue_each_users_stored_ledger() {
    let batch = records(vec![
        (ALICE, taps(5)),
        (BOB, credit(ALICE)),
        (ALICE, checkin(3)),
        (ALICE, taps(7)),
    ]);
    let stored = HashMap::from([(
        ALICE,
        Balance {
            balance: 1_000,
            entries: 9,
        },
    )]);
    assert_eq!(
        numbered(&batch, &stored, &HashSet::new()),
        [
            (ALICE, 10, 5, 1_005),
            (BOB, 1, 500, 500),
            (ALICE, 11, 100, 1_105),
            (ALICE, 12, 7, 1_112)
        ]
    );
    let rows = number(
        &plan(&batch, HashMap::new()).unwrap().entries,
        &stored,
        &HashSet::new(),
    );
    let last = &rows[3];
    assert_eq!(last.event_id, batch[3].event.envelope.event_id);
    assert_eq!(
        (last.kind.as_str(), last.partition, last.offset, last.occurred_at_ms),
        ("taps", 3, 103, 3_000)
    );
}

#[test]
fn events_already_in_the_ledger_take_no_number() {
    let batch = records(vec![(ALICE, taps(5)), (ALICE, taps(6)), (ALICE, taps(7))]);
    let applied = HashSet::from([batch[1].event.envelope.event_id]);
    assert_eq!(
        numbered(&batch, &HashMap::new(), &applied),
        [(ALICE, 1, 5, 5), (ALICE, 2, 7, 12)]
    );
}

#[test]
fn every_user_whose_events_may_earn_is_loaded() {
    let batch = records(vec![
        (BOB, checkin(1)),
        (ALICE, taps(1)),
        (ALICE + 1, credit(ALICE)),
        (
            ALICE + 2,
            ProfileUpdated {
                display_name: None,
                language_code: None,
                photo_url: None,
            }
            .into(),
        ),
    ]);
    assert_eq!(earning_users(&batch), [BOB, ALICE, ALICE + 1]);
}
