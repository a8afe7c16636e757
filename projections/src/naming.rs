//! Every naming scheme of Surge's stores, topics and groups, one function each. Stored data,
//! consumer groups, metrics labels and dead-letter headers carry these names, so a change here
//! is a migration: the strings they produce must stay byte-for-byte what they were.
//!
//! A projection *version* is one complete copy of a projection's state (see [`crate::versions`]):
//! - PostgreSQL: tables `<name>_v<N>_*` ([`table_prefix`]);
//! - Redis: keys under `<deployment prefix>:<name>:v<N>` ([`keys_base`]), each partition's in
//!   its own hash slot, `<keys base>:{p<P>}` ([`partition_keys_base`]);
//! - its processor is `<name>.v<N>` ([`processor_id`]), consuming in the group
//!   `<topic>.<name>.v<N>` ([`consumer_group`]).

/// The PostgreSQL table prefix of a version's tables: `<name>_v<version>`.
pub fn table_prefix(projection: &str, version: u32) -> String {
    format!("{projection}_v{version}")
}

/// A `LIKE` pattern matching every table of one version: `<name>_v<version>\_%`.
pub fn version_tables_like(projection: &str, version: u32) -> String {
    format!("{}\\_%", table_prefix(projection, version))
}

/// A `LIKE` pattern matching every table of every version of a projection: `<name>\_v%`.
pub fn all_versions_tables_like(projection: &str) -> String {
    format!("{projection}\\_v%")
}

/// The table of the event ids a PostgreSQL version has applied: `<table prefix>_seen_events`.
pub fn seen_events_table(table_prefix: &str) -> String {
    format!("{table_prefix}_seen_events")
}

/// The text hashed into the advisory lock every Surge migration holds
/// (`pg_advisory_xact_lock(hashtext(<this>))`).
pub const MIGRATIONS_LOCK: &str = "surge-migrations";

/// The text hashed into the advisory lock held by every change of a projection's versions in
/// PostgreSQL: `surge-versions:<name>`.
pub fn versions_lock(projection: &str) -> String {
    format!("surge-versions:{projection}")
}

/// The Redis key space of a version: `<deployment prefix>:<name>:v<version>`.
pub fn keys_base(deployment_prefix: &str, projection: &str, version: u32) -> String {
    format!("{deployment_prefix}:{projection}:v{version}")
}

/// The Redis key space of one partition of a version: `<keys base>:{p<partition>}`. Everything
/// a batch of the partition touches lives here (its position, generation, seen ids, parking,
/// freeze lease, and its users' states and data), so in a Redis Cluster the hash tag puts it in
/// one slot that the batch's script may touch at once, and the partitions spread over the
/// masters. On a single server the braces are just characters.
pub fn partition_keys_base(keys_base: &str, partition: i32) -> String {
    format!("{keys_base}:{{p{partition}}}")
}

/// A Redis `SCAN` pattern matching every key of one version: `<keys base>:*`.
pub fn version_keys_pattern(keys_base: &str) -> String {
    format!("{keys_base}:*")
}

/// A Redis `SCAN` pattern matching every key of every version of a projection, and its
/// [`versions_key`]: `<deployment prefix>:<name>:v*`.
pub fn all_versions_keys_pattern(deployment_prefix: &str, projection: &str) -> String {
    format!("{deployment_prefix}:{projection}:v*")
}

/// The Redis hash holding a projection's versions: `<deployment prefix>:<name>:versions`.
pub fn versions_key(deployment_prefix: &str, projection: &str) -> String {
    format!("{deployment_prefix}:{projection}:versions")
}

/// The Redis hash of a partition's position: `<partition keys base>:positions`, one field
/// ([`position_field`]), in the key space of [`partition_keys_base`].
pub fn positions_key(partition_keys_base: &str) -> String {
    format!("{partition_keys_base}:positions")
}

/// A Redis `SCAN` pattern matching the positions hash of every partition of every version of a
/// projection.
pub fn all_positions_keys_pattern(deployment_prefix: &str, projection: &str) -> String {
    format!("{deployment_prefix}:{projection}:v*:positions")
}

/// The version whose partition's positions hash `key` is (see [`positions_key`]); `None` for
/// another key.
pub fn version_of_positions_key(
    deployment_prefix: &str,
    projection: &str,
    key: &str,
) -> Option<u32> {
    let (version, partition) = key
        .strip_prefix(deployment_prefix)?
        .strip_prefix(':')?
        .strip_prefix(projection)?
        .strip_prefix(":v")?
        .strip_suffix(":positions")?
        .split_once(':')?;
    let partition = partition.strip_prefix("{p")?.strip_suffix('}')?;
    partition.parse::<i32>().ok()?;
    version.parse().ok()
}

/// The Redis hash of a partition's fencing generation: `<partition keys base>:generations`,
/// one field ([`position_field`]).
pub fn generations_key(partition_keys_base: &str) -> String {
    format!("{partition_keys_base}:generations")
}

/// The Redis key of a partition's freeze lease (`<partition keys base>:frozen`): while it
/// exists, the version's batches of that partition wait (see `versions::switch`).
pub fn freeze_lease_key(partition_keys_base: &str) -> String {
    format!("{partition_keys_base}:frozen")
}

/// The field of a Redis positions or generations hash for one partition: `<topic>:<partition>`.
pub fn position_field(topic: &str, partition: i32) -> String {
    format!("{topic}:{partition}")
}

/// The prefix every [`position_field`] of `topic` starts with: `<topic>:`.
pub fn position_field_prefix(topic: &str) -> String {
    format!("{topic}:")
}

/// The partition a Redis positions or generations field of `topic` names; `None` for another
/// topic's field.
pub fn partition_of(field: &str, topic: &str) -> Option<i32> {
    field.strip_prefix(topic)?.strip_prefix(':')?.parse().ok()
}

/// The Redis key space every sender of one bot shares, whatever version or instance sends:
/// `<deployment prefix>:bot:{<bot id>}` (the bot id is the bot token's prefix, not secret).
/// Telegram's limits are per bot token, so its pause and pacing live here; the hash tag keeps
/// them in one slot of a Redis Cluster, for the pacing script.
pub fn bot_keys_base(deployment_prefix: &str, bot_id: &str) -> String {
    format!("{deployment_prefix}:bot:{{{bot_id}}}")
}

/// The Redis pub/sub channel on which processors of `projection` announce each committed batch
/// (see [`crate::live`]): `<deployment prefix>:live:<projection>`, whatever the version.
pub fn live_channel(deployment_prefix: &str, projection: &str) -> String {
    format!("{deployment_prefix}:live:{projection}")
}

/// The key of a live-stream ticket: `<deployment prefix>:live:ticket:<ticket>`.
pub fn live_ticket_key(deployment_prefix: &str, ticket: &str) -> String {
    format!("{deployment_prefix}:live:ticket:{ticket}")
}

/// A projection version's processor (or deriver): `<name>.v<version>`. It names the consumer
/// group, the metrics, the dead letters and a deriver's transactions.
pub fn processor_id(projection: &str, version: u32) -> String {
    format!("{projection}.v{version}")
}

/// The consumer group of a processor reading `topic`: `<topic>.<processor id>`.
pub fn consumer_group(topic: &str, processor_id: &str) -> String {
    format!("{topic}.{processor_id}")
}

/// Whether `group` is named like a processor's group on `topic` (see [`consumer_group`]).
pub fn is_processor_group(topic: &str, group: &str) -> bool {
    group
        .strip_prefix(topic)
        .is_some_and(|rest| rest.starts_with('.'))
}

/// The consumer group a rebuild of a version reads `topic` in:
/// `<topic>.<name>.v<version>.replay`.
pub fn replay_group(topic: &str, projection: &str, version: u32) -> String {
    format!(
        "{}.replay",
        consumer_group(topic, &processor_id(projection, version))
    )
}

/// The groups and transactional ids of a deriver emitting to `topic`:
/// `<topic>.<deriver id>.<suffix>`.
pub fn deriver_scoped(topic: &str, deriver_id: &str, suffix: &str) -> String {
    format!("{topic}.{deriver_id}.{suffix}")
}

/// The dead-letter topic of `topic`: `<topic>.dlq`.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_ones_stored_data_carries() {
        assert_eq!(table_prefix("wallets", 2), "wallets_v2");
        assert_eq!(version_tables_like("wallets", 2), r"wallets_v2\_%");
        assert_eq!(all_versions_tables_like("wallets"), r"wallets\_v%");
        assert_eq!(seen_events_table("wallets_v2"), "wallets_v2_seen_events");
        assert_eq!(versions_lock("wallets"), "surge-versions:wallets");
        assert_eq!(keys_base("p", "feed", 3), "p:feed:v3");
        assert_eq!(version_keys_pattern("p:feed:v3"), "p:feed:v3:*");
        assert_eq!(all_versions_keys_pattern("p", "feed"), "p:feed:v*");
        assert_eq!(versions_key("p", "feed"), "p:feed:versions");
        assert_eq!(partition_keys_base("p:feed:v3", 2), "p:feed:v3:{p2}");
        assert_eq!(positions_key("p:feed:v3:{p2}"), "p:feed:v3:{p2}:positions");
        assert_eq!(
            all_positions_keys_pattern("p", "feed"),
            "p:feed:v*:positions"
        );
        assert_eq!(
            generations_key("p:feed:v3:{p2}"),
            "p:feed:v3:{p2}:generations"
        );
        assert_eq!(freeze_lease_key("p:feed:v3:{p2}"), "p:feed:v3:{p2}:frozen");
        assert_eq!(bot_keys_base("p", "123"), "p:bot:{123}");
        assert_eq!(processor_id("feed", 3), "feed.v3");
        assert_eq!(consumer_group("t.events", "feed.v3"), "t.events.feed.v3");
        assert_eq!(
            replay_group("t.events", "feed", 3),
            "t.events.feed.v3.replay"
        );
        assert_eq!(
            deriver_scoped("t.events", "quests.v1", "p0"),
            "t.events.quests.v1.p0"
        );
        assert_eq!(dead_letter_topic("t.events"), "t.events.dlq");
    }

    #[test]
    fn a_positions_key_names_its_version() {
        let key = positions_key(&partition_keys_base(&keys_base("p", "feed", 12), 5));
        assert_eq!(version_of_positions_key("p", "feed", &key), Some(12));
        assert_eq!(version_of_positions_key("p", "fee", &key), None);
        assert_eq!(
            version_of_positions_key("p", "feed", "p:feed:v12:{x}:positions"),
            None
        );
        assert_eq!(
            version_of_positions_key("p", "feed", "p:feed:v1:state"),
            None
        );
        assert_eq!(
            version_of_positions_key("p", "feed", "p:feed:versions"),
            None
        );
    }

    #[test]
    fn position_fields_name_a_partition_of_one_topic() {
        assert_eq!(position_field("surge.events", 3), "surge.events:3");
        assert_eq!(position_field_prefix("surge.events"), "surge.events:");
        assert_eq!(partition_of("surge.events:3", "surge.events"), Some(3));
        assert_eq!(partition_of("surge.events.dlq:3", "surge.events"), None);
        assert_eq!(partition_of("other:3", "surge.events"), None);
        assert_eq!(partition_of("surge.events:x", "surge.events"), None);
    }

    #[test]
    fn only_groups_under_the_topic_are_processor_groups() {
        assert!(is_processor_group("t.events", "t.events.feed.v1"));
        assert!(!is_processor_group("t.events", "t.events-tap"));
        assert!(!is_processor_group("t.events", "mine"));
    }
}
