//! `surge tap [TOPIC]`: prints a topic's events as JSON lines (partition, offset, timestamp, key,
//! headers, and the event decoded through the schema registry), for debugging and ad-hoc
//! analytics. It assigns itself every partition instead of joining a consumer group, so it never
//! takes partitions from a serving processor, and commits nothing unless `--group` names a group
//! of its own to resume from.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::time::Duration;

use crate::infra;
use crate::settings::{Common, instant_ms};
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::{Map, Value, json};
use surge_projections::feed::rfc3339_millis;
use surge_projections::naming;
use surge_schemas::{Codec, Event, EventType};

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    /// The topic to read; default the events topic (SURGE_EVENTS_TOPIC).
    topic: Option<String>,
    /// Start at the first record of every partition (default: only records from now on).
    #[arg(long, conflicts_with = "from")]
    from_beginning: bool,
    /// Start each partition at its first record stamped at or after this instant (the broker's
    /// time index), then read on: RFC 3339 (`2026-11-22T10:00:00Z`) or unix milliseconds.
    #[arg(long, value_parser = instant_ms)]
    from: Option<i64>,
    /// Only events of this type (short or full name, e.g. `TapsSubmitted`).
    #[arg(long = "type", value_parser = event_type)]
    event_type: Option<EventType>,
    /// Only events of this user.
    #[arg(long)]
    user: Option<i64>,
    /// Resume from, and commit to, this consumer group of the tap's own. Without it nothing is
    /// committed anywhere.
    #[arg(long)]
    group: Option<String>,
    /// Stop once every partition has been read to the end it had when reached.
    #[arg(long)]
    exit_at_end: bool,
}

fn event_type(text: &str) -> Result<EventType, String> {
    EventType::from_name(text).ok_or_else(|| {
        let known: Vec<&str> = EventType::ALL.iter().map(|t| t.name()).collect();
        format!("no event type {text:?}; known: {}", known.join(", "))
    })
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let brokers = args.common.kafka_brokers.clone().context(
        "surge tap reads a running broker: set SURGE_KAFKA_BROKERS (the embedded one lives inside `surge dev`)",
    )?;
    let topic = args
        .topic
        .clone()
        .unwrap_or_else(|| args.common.events_topic.clone());
    if let Some(group) = &args.group
        && naming::is_processor_group(&args.common.events_topic, group)
    {
        bail!(
            "group {group:?} is named like a processor's group (<events topic>.<projection>.v<version>); give the tap a group of its own"
        );
    }
    let registry = infra::schema_registry(&args.common).await?;
    let codec = Codec::new(&registry.url, &topic, Duration::from_secs(5))?;
    let consumer = consumer(&brokers, args.group.as_deref())?;
    let partitions = infra::topic_partitions(&consumer, &topic)?;
    let start = match args.from {
        // The broker's time index: each partition's first record at or after the instant.
        Some(from) => Offset::Offset(from),
        None if args.from_beginning => Offset::Beginning,
        None if args.group.is_some() => Offset::Stored,
        None => Offset::End,
    };
    let mut assignment = TopicPartitionList::new();
    for partition in &partitions {
        assignment.add_partition_offset(&topic, *partition, start)?;
    }
    if args.from.is_some() {
        assignment = consumer
            .offsets_for_times(assignment, Duration::from_secs(10))
            .context("Failed to look up the offsets of --from in the broker's time index")?;
    }
    consumer.assign(&assignment)?;

    let mut at_end: HashSet<i32> = HashSet::new();
    let mut out = std::io::stdout().lock();
    let stopped_by = loop {
        let received = tokio::select! {
            _ = tokio::signal::ctrl_c() => break "interrupt",
            received = consumer.recv() => received,
        };
        match received {
            Ok(message) => {
                at_end.remove(&message.partition());
                if let Some(line) = line(&codec, &message, &args).await
                    && writeln!(out, "{line}").is_err()
                {
                    break "stdout closed";
                }
            }
            Err(KafkaError::PartitionEOF(partition)) => {
                at_end.insert(partition);
                if args.exit_at_end && at_end.len() == partitions.len() {
                    break "end of every partition";
                }
            }
            Err(error) => bail!("reading {topic} failed: {error}"),
        }
    };
    let _ = out.flush();
    if args.group.is_some() {
        match consumer.commit_consumer_state(CommitMode::Sync) {
            // Nothing was read, so the group's position stands.
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(error) => {
                return Err(error).context("Failed to commit the tap's position to its group");
            }
        }
    }
    tracing::info!(stopped_by, "surge tap stopped.");
    Ok(())
}

type TapConsumer = StreamConsumer<infra::PartitionEndsExpected>;

fn consumer(brokers: &str, group: Option<&str>) -> anyhow::Result<TapConsumer> {
    let mut config = surge_kafka::client_config(brokers);
    config
        .set("enable.partition.eof", "true")
        // Offset::Stored without a committed offset: the tap starts at the end.
        .set("auto.offset.reset", "latest");
    match group {
        Some(group) => config
            .set("group.id", group)
            .set("enable.auto.commit", "true"),
        // librdkafka wants a group id even for assigned partitions; this one never commits.
        None => config
            .set(
                "group.id",
                format!("surge-tap-{}", uuid::Uuid::now_v7().simple()),
            )
            .set("enable.auto.commit", "false"),
    };
    Ok(config.create_with_context(infra::PartitionEndsExpected)?)
}

/// The JSON line for `message`, or `None` when the filters leave it out. A record that does not
/// decode is printed with its error and raw bytes, unless a filter is set (it matches none).
async fn line(codec: &Codec, message: &BorrowedMessage<'_>, args: &Args) -> Option<Value> {
    let timestamp_ms = message.timestamp().to_millis();
    let mut line = json!({
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "timestamp": timestamp_ms.and_then(rfc3339_millis),
        "key": message.key().map(|k| String::from_utf8_lossy(k).into_owned()),
        "headers": headers(message),
    });
    let filtered = args.event_type.is_some() || args.user.is_some();
    match codec.decode(message.payload().unwrap_or_default()).await {
        Ok(event) if matches(&event, args) => line["event"] = surge_schemas::json::to_json(&event),
        Ok(_) => return None,
        Err(_) if filtered => return None,
        Err(error) => {
            line["error"] = error.to_string().into();
            line["value_base64"] = STANDARD
                .encode(message.payload().unwrap_or_default())
                .into();
        }
    }
    Some(line)
}

fn matches(event: &Event, args: &Args) -> bool {
    args.event_type.is_none_or(|t| t == event.event_type())
        && args.user.is_none_or(|u| u == event.envelope.user_id)
}

fn headers(message: &BorrowedMessage<'_>) -> Map<String, Value> {
    let mut headers = BTreeMap::new();
    if let Some(all) = message.headers() {
        for header in all.iter() {
            let value = header
                .value
                .map(|v| String::from_utf8_lossy(v).into_owned());
            headers.insert(header.key.to_owned(), value.into());
        }
    }
    headers.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_type_lists_the_known_ones() {
        assert_eq!(event_type("TapsSubmitted"), Ok(EventType::TapsSubmitted));
        assert_eq!(
            event_type("app.surge.events.DailyCheckedIn"),
            Ok(EventType::DailyCheckedIn)
        );
        let error = event_type("Teleported").unwrap_err();
        assert!(error.contains("SessionStarted"), "{error}");
    }
}
