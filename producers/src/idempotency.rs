//! `Idempotency-Key`: a retry of the same request within the TTL gets the first response and
//! appends nothing; the same key with another body is refused.
//!
//! Per (user, key) Redis holds a record {fingerprint, event ids, response}. The event ids are
//! written *before* producing, so a retry after a failed or uncertain attempt reuses them: if the
//! first attempt did land, the retry's events carry the same ids and projections deduplicate
//! them. A short lock (SET NX PX) serialises concurrent attempts with one key. Shared through
//! Redis, so it holds across write-API instances.
//!
//! Redis replicates asynchronously: a master that fails over right after saving a record can
//! lose it, and a retry would then choose new ids and append the taps twice. With
//! [`ReplicaWait`] the record of ids must reach that many replicas (`WAIT`) before anything is
//! produced; else the attempt fails, undone, with 503.

use std::time::Duration;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use surge_redis::Redis;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub fingerprint: String,
    pub event_ids: Vec<Uuid>,
    /// The 202 body, once the first attempt succeeded.
    pub response: Option<serde_json::Value>,
}

/// What a request with a key may do.
#[derive(Debug)]
pub enum Claim {
    /// Go ahead (holding the lock); reuse `event_ids` if an earlier attempt chose them.
    Proceed { event_ids: Option<Vec<Uuid>> },
    /// Answer this again.
    Replay(serde_json::Value),
    /// Another attempt with this key is in flight.
    InProgress,
    /// The key was used with a different request.
    Mismatch,
}

/// How many replicas must hold a record of ids before its events are produced, and how long
/// to wait for them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplicaWait {
    pub replicas: u32,
    pub timeout: Duration,
}

/// Why a record was not saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    /// The record reached fewer replicas than [`ReplicaWait`] asks for in its time, and was
    /// deleted again.
    #[error("the idempotency record reached {reached} of the {wanted} Redis replicas required")]
    NotReplicated { reached: u32, wanted: u32 },
}

impl SaveError {
    /// Whether the record is certainly not in Redis, so that the attempt's taps may be given
    /// back: a retry that found the record would reuse its ids without paying again. A refused
    /// replication was undone; a server's refusal ran nothing; but a timeout or a dropped
    /// connection may have come after the `SET` ran, and then the taps stay spent (the economy
    /// errs against the client, never for it).
    pub fn certainly_not_saved(&self) -> bool {
        match self {
            SaveError::NotReplicated { .. } => true,
            SaveError::Redis(error) => !error.is_io_error() || error.is_connection_refusal(),
        }
    }
}

#[derive(Clone)]
pub struct IdempotencyStore {
    redis: Redis,
    prefix: String,
    ttl: Duration,
    lock_ttl: Duration,
    replica_wait: Option<ReplicaWait>,
    claim: redis::Script,
}

/// Keys clients may send: printable ASCII, 1 to 255 bytes (UUIDs, ULIDs, hashes all fit).
pub fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// Identifies the request a key was first used with.
pub fn fingerprint(route: &str, canonical_body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(route.as_bytes());
    hash.update([0]);
    hash.update(canonical_body);
    hex::encode(hash.finalize())
}

/// `(lock, record)` of a user's key (`user`: the user's part, [`Redis::slot`]). Locks live in a
/// namespace of their own: were the lock the record's name plus a suffix, a client key ending
/// in that suffix (`abc:lock`) would name another key's lock and block it for the record's
/// lifetime.
fn redis_keys(prefix: &str, user: &str, key: &str) -> (String, String) {
    (
        format!("{prefix}:idem-lock:{user}:{key}"),
        format!("{prefix}:idem:{user}:{key}"),
    )
}

impl IdempotencyStore {
    /// `lock_ttl` must outlast one attempt (the produce timeout plus margin), so a crashed
    /// attempt's lock expires on its own.
    pub fn new(
        redis: Redis,
        prefix: &str,
        ttl: Duration,
        lock_ttl: Duration,
        replica_wait: Option<ReplicaWait>,
    ) -> Self {
        IdempotencyStore {
            redis,
            prefix: prefix.to_owned(),
            ttl,
            lock_ttl,
            replica_wait,
            // KEYS: the lock, the record; ARGV: the lock's lifetime in ms.
            claim: redis::Script::new(
                r"if not redis.call('SET', KEYS[1], 1, 'NX', 'PX', ARGV[1]) then return {0, false} end
                  return {1, redis.call('GET', KEYS[2])}",
            ),
        }
    }

    fn keys(&self, user_id: i64, key: &str) -> (String, String) {
        redis_keys(&self.prefix, &self.redis.slot(user_id), key)
    }

    pub async fn claim(
        &self,
        user_id: i64,
        key: &str,
        fingerprint: &str,
    ) -> redis::RedisResult<Claim> {
        let (lock, record_key) = self.keys(user_id, key);
        // The lock and the record in one round trip: `false` when another attempt holds the
        // lock, else the record (nil when there is none).
        let (locked, stored): (bool, Option<String>) = self
            .claim
            .key(&lock)
            .key(&record_key)
            .arg(self.lock_ttl.as_millis() as u64)
            .invoke_async(&mut self.redis.clone())
            .await?;
        if !locked {
            return Ok(Claim::InProgress);
        }
        let record = stored.and_then(|s| serde_json::from_str::<Record>(&s).ok());
        let claim = match record {
            None => Claim::Proceed { event_ids: None },
            Some(r) if r.fingerprint != fingerprint => Claim::Mismatch,
            Some(Record {
                response: Some(body),
                ..
            }) => Claim::Replay(body),
            Some(r) => Claim::Proceed {
                event_ids: Some(r.event_ids),
            },
        };
        if !matches!(claim, Claim::Proceed { .. }) {
            self.release(user_id, key).await?;
        }
        Ok(claim)
    }

    /// Saves the record of ids before producing, on as many replicas as [`ReplicaWait`] asks.
    pub async fn save(&self, user_id: i64, key: &str, record: &Record) -> Result<(), SaveError> {
        let (_, record_key) = self.keys(user_id, key);
        let json = serde_json::to_string(record).expect("record serialises");
        let mut conn = self.redis.clone();
        let Some(wait) = self.replica_wait else {
            return Ok(conn.set_ex(record_key, json, self.ttl.as_secs()).await?);
        };
        // In one pipeline, which a cluster routes to the record's master: `WAIT` then counts
        // the replicas of that master that have the record.
        let answer: redis::RedisResult<(u32,)> = redis::pipe()
            .set_ex(&record_key, json, self.ttl.as_secs())
            .ignore()
            .cmd("WAIT")
            .arg(wait.replicas)
            .arg(wait.timeout.as_millis() as u64)
            .query_async(&mut conn)
            .await;
        let failed = match answer {
            Ok((reached,)) if reached >= wait.replicas => return Ok(()),
            Ok((reached,)) => SaveError::NotReplicated {
                reached,
                wanted: wait.replicas,
            },
            // Redis answered with an error, which `WAIT` may have given after the `SET` ran.
            Err(error) if !error.is_io_error() => error.into(),
            // Whether the `SET` ran is unknown, and so is whether a `DEL` would.
            Err(error) => return Err(error.into()),
        };
        // Undone, so that the error means what it says, nothing saved, and a retry chooses its
        // ids (and pays for its taps) afresh.
        let _: () = conn.del(&record_key).await?;
        Err(failed)
    }

    /// Saves the record with its response and releases the lock, in one round trip.
    pub async fn finish(&self, user_id: i64, key: &str, record: &Record) -> redis::RedisResult<()> {
        let (lock, record_key) = self.keys(user_id, key);
        let json = serde_json::to_string(record).expect("record serialises");
        redis::pipe()
            .atomic()
            .set_ex(record_key, json, self.ttl.as_secs())
            .ignore()
            .del(lock)
            .ignore()
            .query_async(&mut self.redis.clone())
            .await
    }

    pub async fn release(&self, user_id: i64, key: &str) -> redis::RedisResult<()> {
        let (lock, _) = self.keys(user_id, key);
        let mut conn = self.redis.clone();
        conn.del(lock).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_printable_and_bounded() {
        assert!(valid_key("0193a4b2-7c1e-7000-8000-000000000000"));
        for bad in ["", "has space", "tab\t", "ключ", &"k".repeat(256)] {
            assert!(!valid_key(bad), "{bad:?}");
        }
    }

    #[test]
    fn no_key_names_another_keys_lock_or_record() {
        let (lock, record) = redis_keys("surge", "7", "abc");
        let (other_lock, other_record) = redis_keys("surge", "7", "abc:lock");
        let names = [&lock, &record, &other_lock, &other_record];
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    fn record() -> Record {
        Record {
            fingerprint: "f".into(),
            event_ids: vec![Uuid::now_v7()],
            response: None,
        }
    }

    async fn exists(redis: &Redis, store: &IdempotencyStore, user: i64, key: &str) -> bool {
        let (_, record_key) = store.keys(user, key);
        redis.clone().exists(record_key).await.unwrap()
    }

    #[tokio::test]
    async fn a_record_of_ids_waits_for_a_replica_on_redis_cluster_and_is_undone_without_one() {
        let wait = |replicas, ms| {
            Some(ReplicaWait {
                replicas,
                timeout: Duration::from_millis(ms),
            })
        };
        let prefix = surge_testkit::unique_id("idem");
        let (day, lock) = (Duration::from_secs(60), Duration::from_secs(5));
        // Every master of the test cluster has one replica.
        let cluster = surge_testkit::redis_cluster().await;
        let store = IdempotencyStore::new(cluster.clone(), &prefix, day, lock, wait(1, 1_000));
        for user in [2, 3, 4] {
            store.save(user, "k", &record()).await.unwrap();
            assert!(exists(&cluster, &store, user, "k").await);
        }
        let store = IdempotencyStore::new(cluster.clone(), &prefix, day, lock, wait(2, 50));
        match store.save(5, "k", &record()).await {
            Err(SaveError::NotReplicated { reached, wanted }) => {
                assert_eq!((reached, wanted), (1, 2))
            }
            other => panic!("two replicas of a master that has one: {other:?}"),
        }
        assert!(!exists(&cluster, &store, 5, "k").await, "undone");
        // The single test Redis has no replica.
        let single = surge_testkit::redis().await;
        let store = IdempotencyStore::new(single.clone(), &prefix, day, lock, wait(1, 50));
        assert!(matches!(
            store.save(6, "k", &record()).await,
            Err(SaveError::NotReplicated {
                reached: 0,
                wanted: 1
            })
        ));
        assert!(!exists(&single, &store, 6, "k").await, "undone");
        let store = IdempotencyStore::new(single.clone(), &prefix, day, lock, None);
        store.save(6, "k", &record()).await.unwrap();
        assert!(
            exists(&single, &store, 6, "k").await,
            "without a wait, the master alone"
        );
        for redis in [cluster, single] {
            surge_testkit::delete_keys(&mut redis.clone(), &prefix)
                .await
                .unwrap();
        }
    }

    #[test]
    fn only_a_save_that_certainly_wrote_nothing_gives_the_taps_back() {
        let io = |kind| SaveError::Redis(std::io::Error::from(kind).into());
        let server = SaveError::Redis((redis::ErrorKind::ResponseError, "OOM").into());
        let unreplicated = SaveError::NotReplicated {
            reached: 0,
            wanted: 1,
        };
        for certain in [
            io(std::io::ErrorKind::ConnectionRefused),
            server,
            unreplicated,
        ] {
            assert!(certain.certainly_not_saved(), "{certain:?}");
        }
        for uncertain in [
            io(std::io::ErrorKind::TimedOut),
            io(std::io::ErrorKind::ConnectionReset),
            io(std::io::ErrorKind::BrokenPipe),
        ] {
            assert!(!uncertain.certainly_not_saved(), "{uncertain:?}");
        }
    }

    #[test]
    fn fingerprints_separate_route_from_body() {
        assert_ne!(fingerprint("taps", b"{}"), fingerprint("checkins", b"{}"));
        assert_ne!(fingerprint("ab", b"c"), fingerprint("a", b"bc"));
        assert_eq!(
            fingerprint("taps", b"{\"count\":1}"),
            fingerprint("taps", b"{\"count\":1}")
        );
    }
}
