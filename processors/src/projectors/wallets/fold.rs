//! What each event earns, as [`economy::earning`] decides for every event type (a negative tap
//! count is poison; a check-in earns only when it counts). Pure: no I/O.
//!
//! Events that earn nothing write no ledger row. [`plan`] decides the amounts and streaks;
//! [`number`] then places each row in its user's ledger (`seq`, running `balance_after`).

use std::collections::{HashMap, HashSet};

use surge_projections::wallets::{Balance, LedgerEntry, NewEntry, StreakRow};
use uuid::Uuid;

use crate::projectors::economy::{self, Earning, Streak};
use crate::runtime::{ApplyError, Record};

/// What a batch writes: ledger rows in partition order, and the streaks it changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub entries: Vec<NewEntry>,
    pub streaks: Vec<StreakRow>,
}

/// The users of `records` who check in: only their streaks need loading. Sorted, distinct.
pub fn checkin_users(records: &[Record]) -> Vec<i64> {
    let mut users: Vec<i64> = records
        .iter()
        .filter(|r| economy::earning(&r.event.payload).is_ok_and(Earning::moves_streak))
        .map(|r| r.event.envelope.user_id)
        .collect();
    users.sort_unstable();
    users.dedup();
    users
}

/// The users of `records` whose events may earn coins: whose balances (and, for check-ins,
/// streaks) the batch needs. Sorted, distinct.
pub fn earning_users(records: &[Record]) -> Vec<i64> {
    let mut users: Vec<i64> = records
        .iter()
        .filter(|r| economy::earning(&r.event.payload).is_ok_and(Earning::may_earn))
        .map(|r| r.event.envelope.user_id)
        .collect();
    users.sort_unstable();
    users.dedup();
    users
}

/// The ledger row `record` earns its user (as `earning`, the coin rules' answer for it), moving
/// `streak` for check-ins; `None` when it earns nothing.
fn entry(record: &Record, earning: Earning, streak: &mut Streak) -> Option<NewEntry> {
    let event = &record.event;
    let kind = earning.kind()?;
    let amount = earning.coins(streak);
    (amount != 0).then_some(NewEntry {
        event_id: event.envelope.event_id,
        user_id: event.envelope.user_id,
        kind,
        amount,
        occurred_at_ms: event.envelope.occurred_at,
        partition: record.partition,
        offset: record.offset,
    })
}

/// Folds a batch (one partition, in order) onto the stored streaks of its check-in users
/// ([`checkin_users`]). An event id seen earlier in the batch is skipped. Fails with the first
/// poison event, before anything is written.
pub fn plan(records: &[Record], mut stored: HashMap<i64, StreakRow>) -> Result<Plan, ApplyError> {
    let mut seen = HashSet::with_capacity(records.len());
    let mut streaks: HashMap<i64, (Streak, Streak)> = HashMap::new();
    let mut order = Vec::new();
    let mut entries = Vec::with_capacity(records.len());
    let mut no_streak = Streak::default();
    for record in records {
        if !seen.insert(record.event.envelope.event_id) {
            continue;
        }
        let earning = economy::priced(&record.event)?;
        // Only check-ins read or move the streak.
        let streak = if earning.moves_streak() {
            let user_id = record.event.envelope.user_id;
            let (_, now) = streaks.entry(user_id).or_insert_with(|| {
                order.push(user_id);
                let before = stored.remove(&user_id).map(streak).unwrap_or_default();
                (before.clone(), before)
            });
            now
        } else {
            &mut no_streak
        };
        entries.extend(entry(record, earning, streak));
    }
    let streaks = order
        .into_iter()
        .filter_map(|user_id| {
            let (before, now) = streaks.remove(&user_id)?;
            (now != before).then_some(StreakRow {
                user_id,
                current: now.current,
                best: now.best,
                last_day: now.last_day,
            })
        })
        .collect();
    Ok(Plan { entries, streaks })
}

/// Numbers `entries` (a batch's, in order) into their users' ledgers after the `stored`
/// balances: `seq` counts each user's rows, `balance_after` is the running balance. Entries in
/// `applied` (already in the ledger) are left out and take no number.
pub fn number(
    entries: &[NewEntry],
    stored: &HashMap<i64, Balance>,
    applied: &HashSet<Uuid>,
) -> Vec<LedgerEntry> {
    let mut running: HashMap<i64, Balance> = HashMap::new();
    entries
        .iter()
        .filter(|e| !applied.contains(&e.event_id))
        .map(|e| {
            let user = running
                .entry(e.user_id)
                .or_insert_with(|| stored.get(&e.user_id).copied().unwrap_or_default());
            user.balance += e.amount;
            user.entries += 1;
            LedgerEntry {
                event_id: e.event_id,
                user_id: e.user_id,
                seq: user.entries,
                kind: e.kind.to_owned(),
                amount: e.amount,
                balance_after: user.balance,
                occurred_at_ms: e.occurred_at_ms,
                partition: e.partition,
                offset: e.offset,
            }
        })
        .collect()
}

fn streak(row: StreakRow) -> Streak {
    Streak {
        current: row.current,
        best: row.best,
        last_day: row.last_day,
    }
}

#[cfg(test)]
#[path = "fold_tests.rs"]
mod tests;
