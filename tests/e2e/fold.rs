//! An independent fold over the topic: what every projection must equal after processing.
//! Reads the events straight from Kafka and applies the game's rules in plain Rust, sharing
//! nothing with the projectors or their stores but the coin rules themselves.

use std::collections::{BTreeMap, HashSet};

use rdkafka::Message;
use surge_processors::projectors::economy::{self, Streak};
use surge_schemas::{Event, Payload};

use crate::helpers::TestApp;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UserFold {
    pub balance: i64,
    pub ledger_entries: i64,
    pub streak: Streak,
    pub sessions: i64,
    /// Event ids, newest first, as the feed shows them (capped at 200).
    pub feed: Vec<String>,
}

/// Reads the topic (expecting `count` records) and folds it in partition order, each event id once.
pub async fn fold_topic(app: &TestApp, count: usize) -> BTreeMap<i64, UserFold> {
    let (codec, _registry) = app.codec().await;
    let mut records = app.read_records(count);
    records.sort_by_key(|r| (r.partition(), r.offset()));

    let mut seen = HashSet::new();
    let mut users: BTreeMap<i64, UserFold> = BTreeMap::new();
    for record in records {
        let event = match codec.decode(record.payload().unwrap_or_default()).await {
            Ok(event) => event,
            // The poison test's garbage record is the only undecodable one; anything else is a failure.
            Err(surge_schemas::Error::Malformed(reason))
                if reason.contains("Schema 99 not found") =>
            {
                continue;
            }
            Err(error) => panic!(
                "record {}/{} does not decode: {error}",
                record.partition(),
                record.offset()
            ),
        };
        if !seen.insert(event.envelope.event_id) {
            continue;
        }
        apply(users.entry(event.envelope.user_id).or_default(), &event);
    }
    for user in users.values_mut() {
        user.feed.truncate(200);
    }
    users
}

fn apply(user: &mut UserFold, event: &Event) {
    // The write API accepts no event the coin rules cannot price.
    let coins = economy::coins(event, &mut user.streak).expect("priced");
    if coins != 0 {
        user.balance += coins;
        user.ledger_entries += 1;
    }
    if let Payload::SessionStarted(_) = event.payload {
        user.sessions += 1;
    }
    user.feed.insert(0, event.envelope.event_id.to_string());
}
