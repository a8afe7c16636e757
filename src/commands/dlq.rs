//! `surge dlq`: the events each projection version holds parked, and releasing them.
//!
//! - `surge dlq [--json]` lists, per projection version, each parked user's events in order:
//!   first the dead-lettered event that parked them, with its reason, then the events waiting
//!   behind it.
//! - `surge dlq retry <projection> [--user N]` applies the users' parked events again, in order,
//!   once a fix is deployed; `surge dlq skip <projection> [--user N]` drops each user's first
//!   parked event (the dead-lettered one), then applies the rest in order.
//!
//! Both act on the projection's serving and building versions built by this build's revision,
//! and keep the guarantees of `surge_processors::runtime` parking: each event is applied (or
//! dropped) exactly once, atomically with its removal, never interleaved with a processor's
//! batch; the first event rejected again stays first with the new reason, and the command then
//! fails. A deriver's events are emitted in the idempotent mode (acknowledged before the
//! release commits; a repeat has the same event id), whatever `SURGE_DERIVED_DELIVERY` says:
//! the transactional ids belong to the running processors.

use std::collections::BTreeSet;

use anyhow::{Context, bail};
use serde_json::json;
use surge_processors::emit::Delivery;
use surge_processors::projectors::{CATALOG, Entry, SinkContext, UseSink, with_sink};
use surge_processors::runtime::{Parked, Release, Released, Sink, SinkError};
use surge_projections::naming;
use surge_projections::versions::VersionState;

use crate::infra;
use crate::settings::{Common, Process};

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) process: Process,
    /// Print the parked events as one JSON array instead of a table.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Applies the parked events again, each user's in order, once a fix is deployed.
    Retry(Target),
    /// Drops each user's dead-lettered event, then applies their later parked events in order.
    Skip(Target),
}

#[derive(clap::Args, Debug)]
struct Target {
    /// The projection (`surge projections` lists them).
    projection: String,
    /// Only this user's parked events; default: every parked user's.
    #[arg(long)]
    user: Option<i64>,
}

pub(crate) async fn run(mut args: Args) -> anyhow::Result<()> {
    // Parked events of a deriver are emitted idempotently (see the header).
    args.process.derived_delivery = Delivery::Idempotent;
    let common = &args.common;
    let registry = infra::schema_registry(common).await?;
    let brokers = common.kafka_brokers.clone().unwrap_or_default();
    let metrics = prometheus::Registry::new();
    let context =
        super::process::sink_context(common, &args.process, &brokers, &registry.url, &metrics)
            .await?;
    let (entries, how, user): (Vec<&Entry>, _, _) = match &args.action {
        None => (CATALOG.iter().collect(), None, None),
        Some(action @ (Action::Retry(target) | Action::Skip(target))) => {
            if brokers.is_empty() {
                bail!("releasing parked events may emit derived events: set SURGE_KAFKA_BROKERS");
            }
            let how = match action {
                Action::Retry(_) => Release::Retry,
                Action::Skip(_) => Release::Skip,
            };
            let entry = surge_processors::projectors::entry(&target.projection)?;
            (vec![entry], Some(how), target.user)
        }
    };
    let mut listed = Vec::new();
    let mut rejected = 0;
    for entry in entries {
        for (version, serving) in versions(&context, entry).await? {
            let id = naming::processor_id(entry.name(), version);
            let act = Act {
                topic: common.events_topic.clone(),
                how,
                user,
                serving,
            };
            let done = with_sink(entry.name(), version, &context, act)
                .await?
                .with_context(|| format!("Failed to read or release the parked events of {id}"))?;
            match done {
                Done::Listed(parked) => listed.extend(parked.into_iter().map(|p| (id.clone(), p))),
                Done::Released(users) => {
                    for (user, released) in users {
                        rejected += usize::from(released.rejected.is_some());
                        println!("{}", summary(&id, user, &released));
                    }
                }
            }
        }
    }
    if how.is_none() {
        print_list(&listed, args.json);
    }
    if rejected > 0 {
        bail!("{rejected} user(s) stay parked: an event was rejected again (see above)");
    }
    Ok(())
}

/// The versions of `entry` this build may write, and whether each serves: the active one and
/// any being rebuilt (version 1 before anything registered one).
async fn versions(context: &SinkContext, entry: &Entry) -> anyhow::Result<Vec<(u32, bool)>> {
    let all = context
        .stores
        .versions(entry)
        .list()
        .await
        .with_context(|| format!("Failed to read the versions of {}", entry.name()))?;
    if all.is_empty() {
        return Ok(vec![(1, true)]);
    }
    Ok(all
        .into_iter()
        .filter(|v| v.revision == entry.revision())
        .filter_map(|v| match v.state {
            VersionState::Active => Some((v.version, true)),
            VersionState::Building => Some((v.version, false)),
            VersionState::Retired | VersionState::Dropped => None,
        })
        .collect())
}

/// Lists or releases the parked events of one version.
struct Act {
    topic: String,
    how: Option<Release>,
    user: Option<i64>,
    serving: bool,
}

enum Done {
    Listed(Vec<Parked>),
    Released(Vec<(i64, Released)>),
}

impl UseSink for Act {
    type Output = Result<Done, SinkError>;

    async fn use_sink<S: Sink>(self, sink: S) -> Self::Output {
        sink.migrate().await?;
        sink.set_serving(self.serving);
        let parked = sink.parked().await?;
        let Some(how) = self.how else {
            return Ok(Done::Listed(parked));
        };
        let users: BTreeSet<i64> = match self.user {
            Some(user) => BTreeSet::from([user]),
            None => parked.iter().map(|p| p.user_id).collect(),
        };
        let mut released = Vec::new();
        for user in users {
            released.push((user, sink.release(&self.topic, user, how).await?));
        }
        Ok(Done::Released(released))
    }
}

fn summary(id: &str, user: i64, released: &Released) -> String {
    let mut line = format!(
        "{id} user {user}: {} applied, {} skipped",
        released.applied, released.skipped
    );
    if let Some(reason) = &released.rejected {
        line += &format!(
            "; {} still parked, the first rejected again: {reason}",
            released.still_parked
        );
    } else if released.applied + released.skipped == 0 {
        line += "; nothing was parked";
    }
    line
}

fn print_list(listed: &[(String, Parked)], as_json: bool) {
    if as_json {
        let all: Vec<_> = listed
            .iter()
            .map(|(id, p)| json!({"projection": id, "parked": p}))
            .collect();
        println!("{}", serde_json::Value::Array(all));
        return;
    }
    println!(
        "{:<16} {:>20} {:>9} {:>10}  {:<16} {:<36}  REASON",
        "PROJECTION", "USER", "PARTITION", "OFFSET", "EVENT", "EVENT ID"
    );
    for (id, p) in listed {
        let reason = match &p.reason {
            Some(reason) => format!("dead-lettered: {reason}"),
            None => "parked behind it".to_owned(),
        };
        println!(
            "{id:<16} {:>20} {:>9} {:>10}  {:<16} {:<36}  {reason}",
            p.user_id, p.partition, p.offset, p.event_type, p.event_id
        );
    }
    let users: BTreeSet<(&str, i64)> = (listed.iter())
        .map(|(id, p)| (id.as_str(), p.user_id))
        .collect();
    println!(
        "{} event(s) parked for {} user(s); undecodable events are only in the dead-letter topic (`surge tap <topic>.dlq`)",
        listed.len(),
        users.len()
    );
}
