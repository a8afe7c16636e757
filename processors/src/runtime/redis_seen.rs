//! Which events a Redis projection version has applied: the 16-byte event ids in one set per
//! partition and UTC day, `<base>:seen:<topic>:<partition>:<day>` (days since 1970-01-01) in the
//! partition's key space `<base>` (`KeySpace::partition`).
//!
//! A batch's ids are checked with one `SMISMEMBER` per recent day and added with one `SADD`, so
//! a batch of a thousand events costs Redis a handful of commands instead of two per event, and
//! an id takes about 80 bytes instead of the 149 of a key of its own with a TTL (measured on
//! Redis 7.0.15, see the README's Capacity). Re-deliveries keep the id and the user, so they land
//! in the same partition; the day is the processor's clock when the id was applied.
//!
//! An id applied on day `d` is found by batches of days `d - 1` to `d + 2`: at least 48 hours,
//! past the write path's 24 h idempotency window within which a client's retry reuses its event
//! ids. Every batch unlinks the set that just aged out (freed in the background, so a large set
//! never blocks Redis); each set also expires a day later, for a partition no batch visits.

use std::time::{SystemTime, UNIX_EPOCH};

use super::KeySpace;

const SECS_PER_DAY: i64 = 86_400;

/// The seen-id sets of one partition of a version.
pub(crate) struct SeenIds {
    /// `<base>:seen:`
    prefix: String,
}

/// The sets one batch of one partition reads and writes on `day`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SeenSets {
    /// The days `day - 2` to `day + 1` (a processor whose clock is a little ahead may have
    /// filed an id under tomorrow); an id in any of them was applied. The batch's ids go into
    /// today's, `check[2]` (the scripts take it by that place).
    pub(crate) check: [String; 4],
    /// When today's set expires on its own (Unix seconds): the start of day `day + 4`.
    pub(crate) expire_at: i64,
    /// The set no batch of `day` or later reads: day `day - 3`.
    pub(crate) stale: String,
}

impl SeenIds {
    pub(crate) fn new(keys: &KeySpace) -> Self {
        SeenIds {
            prefix: keys.key("seen:"),
        }
    }

    /// The sets of the partition whose position field is `field`, on `day`.
    pub(crate) fn sets(&self, field: &str, day: i64) -> SeenSets {
        let set = |d: i64| format!("{}{field}:{d}", self.prefix);
        SeenSets {
            check: [set(day - 2), set(day - 1), set(day), set(day + 1)],
            expire_at: (day + 4) * SECS_PER_DAY,
            stale: set(day - 3),
        }
    }
}

/// Today's UTC day, in days since 1970-01-01, by this machine's clock.
pub(crate) fn today() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(secs).unwrap_or(i64::MAX) / SECS_PER_DAY
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen() -> SeenIds {
        SeenIds::new(&KeySpace::new("surge", "feed", 2))
    }

    #[test]
    fn sets_are_named_by_partition_and_day() {
        let sets = seen().sets("surge.events:3", 20_430);
        assert_eq!(sets.check[2], "surge:feed:v2:seen:surge.events:3:20430");
        assert_eq!(sets.check[0], "surge:feed:v2:seen:surge.events:3:20428");
        assert_eq!(sets.check[3], "surge:feed:v2:seen:surge.events:3:20431");
        assert_eq!(sets.stale, "surge:feed:v2:seen:surge.events:3:20427");
        assert_eq!(sets.expire_at, 20_434 * 86_400);
    }

    /// An id added on some day is checked by every batch of the next 48 hours and more, and its
    /// set is neither unlinked nor expired while a batch may still read it.
    #[test]
    fn an_id_is_found_for_at_least_48_hours_and_its_set_outlives_every_read() {
        let seen = seen();
        let field = "surge.events:0";
        for added_on in [0_i64, 1, 20_430] {
            let set = seen.sets(field, added_on);
            let today = &set.check[2];
            let read_on: Vec<i64> = (added_on - 5..added_on + 6)
                .filter(|&day| seen.sets(field, day).check.contains(today))
                .collect();
            // Added at the last second of its day, it is still found 48 h later.
            assert_eq!(
                read_on,
                vec![added_on - 1, added_on, added_on + 1, added_on + 2]
            );
            let unlinked_on: Vec<i64> = (added_on - 5..added_on + 6)
                .filter(|&day| seen.sets(field, day).stale == *today)
                .collect();
            assert_eq!(unlinked_on, vec![added_on + 3]);
            assert!(set.expire_at >= (added_on + 3) * SECS_PER_DAY + SECS_PER_DAY);
        }
    }

    #[test]
    fn today_is_a_day_of_this_century() {
        assert!((20_000..40_000).contains(&today()));
    }
}
