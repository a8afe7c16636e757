//! Which partition of the events topic holds a user's events: Kafka's default partitioner, the
//! one every Surge producer uses (`surge_kafka::EventLog`, librdkafka's `murmur2_random`, as
//! Java clients do) on the record key, the user id in decimal. A projection keeping a shard per
//! partition (the leaderboard's sorted sets) finds a user's shard with it.

/// The partition of `user_id`'s events on a topic of `partitions` partitions.
///
/// # Panics
/// When `partitions` is not positive.
pub fn partition_of_user(user_id: i64, partitions: i32) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition");
    let hash = murmur2::murmur2(user_id.to_string().as_bytes(), murmur2::KAFKA_SEED);
    // Kafka's `Utils.toPositive`: the sign bit cleared, not the absolute value.
    (hash & 0x7fff_ffff) as i32 % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Placements computed apart from this crate, with a transcription of Kafka's Java
    /// `Utils.murmur2` (the e2e tests' `java_partition` is another, which they check against
    /// librdkafka's placement of the write API's records).
    #[test]
    fn users_land_where_kafkas_partitioner_puts_their_key() {
        let placed = |partitions| -> Vec<i32> {
            [1, 2, 3, 4, 42, 123_456_789, 7_000_000_001]
                .iter()
                .map(|&user| partition_of_user(user, partitions))
                .collect()
        };
        assert_eq!(placed(6), [3, 2, 5, 1, 4, 0, 5]);
        assert_eq!(placed(12), [3, 8, 11, 1, 4, 6, 5]);
        assert_eq!(partition_of_user(42, 1), 0);
    }
}
