//! Projection versions in the real stores: the registry's numbering, the switch (freeze, wait,
//! check, fence, move the active mark) in PostgreSQL and in Redis, what a frozen or retired
//! version's processor can still do (nothing), and dropping a version.

use std::time::{Duration, Instant};

use surge_processors::projectors::feed::Feed;
use surge_processors::projectors::profiles::Profiles;
use surge_processors::projectors::{Stores, entry};
use surge_processors::runtime::{Claim, PgSink, Record, RedisSink, Sink, SinkError};
use surge_processors::versions::{Switch, drop_version, freeze};
use surge_projections::naming;
use surge_projections::versions::{VersionRegistry, VersionState};
use surge_schemas::{Envelope, Event, TapsSubmitted};
use uuid::Uuid;

const TOPIC: &str = "versions.events";
const DEADLINE: Duration = Duration::from_secs(20);
/// Partitions of the topic.
const PARTITIONS: i32 = 2;

async fn stores() -> Stores {
    let id = surge_testkit::unique_id("versions_");
    Stores {
        pool: surge_testkit::pg_pool_with(&id, 6).await,
        redis: surge_testkit::redis().await,
        redis_prefix: id,
        events_partitions: PARTITIONS,
        activity_retention: Duration::from_secs(90 * 86_400),
    }
}

/// `n` taps of user 7 in partition 0 from `offset` on.
fn taps(offset: i64, n: i64) -> Vec<Record> {
    (offset..offset + n)
        .map(|offset| Record {
            partition: 0,
            offset,
            event: Event {
                envelope: Envelope {
                    event_id: Uuid::now_v7(),
                    user_id: 7,
                    occurred_at: 1_764_000_000_000 + offset,
                    recorded_at: 1_764_000_000_000 + offset,
                },
                payload: TapsSubmitted { count: 1 }.into(),
            },
        })
        .collect()
}

/// [`taps`] on `partition` instead.
fn taps_on(partition: i32, offset: i64, n: i64) -> Vec<Record> {
    let mut records = taps(offset, n);
    for record in &mut records {
        record.partition = partition;
    }
    records
}

fn claim_of(claims: &[Claim], partition: i32) -> Claim {
    *claims.iter().find(|c| c.partition == partition).unwrap()
}

async fn apply<S: Sink>(sink: &S, claim: Claim, records: &[Record]) -> Result<(), SinkError> {
    let next = records.last().unwrap().offset + 1;
    sink.apply(TOPIC, claim, records, next).await.map(drop)
}

#[tokio::test]
async fn the_registry_numbers_versions_after_every_one_it_has_seen_and_keeps_one_active() {
    let stores = stores().await;
    for entry in [entry("profiles").unwrap(), entry("feed").unwrap()] {
        let registry = stores.versions(entry);
        assert_eq!(registry.active().await.unwrap(), None, "{}", entry.name());
        let first = registry.ensure_active(1).await.unwrap();
        assert_eq!((first.version, first.state), (1, VersionState::Active));
        // Several processes starting at once still make one version 1.
        let again = registry.ensure_active(1).await.unwrap();
        assert_eq!(again.version, 1);
        let two = registry.create_building(1, None).await.unwrap();
        let three = registry.create_building(2, Some(5)).await.unwrap();
        assert_eq!((two.version, three.version), (2, 3), "{}", entry.name());
        assert_eq!(three.from_ms, Some(5));
        registry.set_state(3, VersionState::Dropped).await.unwrap();
        // A dropped version's number is not used again.
        let four = registry.create_building(1, None).await.unwrap();
        assert_eq!(four.version, 4, "{}", entry.name());
        let states: Vec<(u32, VersionState)> = registry
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|v| (v.version, v.state))
            .collect();
        assert_eq!(
            states,
            [
                (1, VersionState::Active),
                (2, VersionState::Building),
                (3, VersionState::Dropped),
                (4, VersionState::Building)
            ]
        );
    }
}

#[tokio::test]
async fn a_postgres_switch_waits_for_the_rebuilt_version_then_fences_and_retires_the_old_one() {
    let stores = stores().await;
    let profiles = entry("profiles").unwrap();
    let registry = VersionRegistry::postgres(stores.pool.clone(), "profiles");
    registry.ensure_active(1).await.unwrap();
    let old = PgSink::new(Profiles::at(1), stores.pool.clone());
    old.migrate().await.unwrap();
    let new_version = registry.create_building(1, None).await.unwrap().version;
    let new = PgSink::new(Profiles::at(new_version), stores.pool.clone());
    new.migrate().await.unwrap();
    let old_claim = claim_of(&old.claim(TOPIC, &[0]).await.unwrap(), 0);
    let new_claim = claim_of(&new.claim(TOPIC, &[0]).await.unwrap(), 0);
    let events = taps(0, 10);
    apply(&old, old_claim, &events).await.unwrap();
    apply(&new, new_claim, &events[..6]).await.unwrap();

    // Behind: nothing changes and the old version goes on.
    let frozen = freeze(&stores, profiles, TOPIC, 1, new_version)
        .await
        .unwrap();
    assert_eq!(frozen.serving().get(&0), Some(&10));
    let Switch::Behind(behind) = frozen.switch().await.unwrap() else {
        panic!("switched while 4 events behind");
    };
    assert_eq!((behind[0].serving, behind[0].rebuilt), (10, 6));
    assert_eq!(registry.active().await.unwrap().unwrap().version, 1);

    // While frozen, the old version's next batch waits on its position row.
    let more = taps(10, 2);
    let frozen = freeze(&stores, profiles, TOPIC, 1, new_version)
        .await
        .unwrap();
    let blocked = tokio::spawn({
        let pool = stores.pool.clone();
        let more = more.clone();
        async move {
            let old = PgSink::new(Profiles::at(1), pool);
            apply(&old, old_claim, &more).await
        }
    });
    wait_until("the old version's batch waits on the freeze", || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = $1",
        )
        .bind(&stores.redis_prefix)
        .fetch_one(&stores.pool)
        .await
        .unwrap();
        waiting > 0
    })
    .await;
    apply(&new, new_claim, &events[6..]).await.unwrap();
    assert_eq!(frozen.switch().await.unwrap(), Switch::Done);

    // The waiting batch then finds itself fenced, and a retired version is never claimed again.
    let outcome = tokio::time::timeout(DEADLINE, blocked)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(outcome, Err(SinkError::Fenced)), "{outcome:?}");
    assert!(old.claim(TOPIC, &[0, 1]).await.unwrap().is_empty());
    let states: Vec<VersionState> = registry
        .list()
        .await
        .unwrap()
        .iter()
        .map(|v| v.state)
        .collect();
    assert_eq!(states, [VersionState::Retired, VersionState::Active]);
    let new_claim = claim_of(&new.claim(TOPIC, &[0]).await.unwrap(), 0);
    assert_eq!(
        new_claim.next_offset, 10,
        "the new version serves from where it stood"
    );

    // A switch from a version that no longer serves is refused.
    assert!(
        freeze(&stores, profiles, TOPIC, 1, new_version)
            .await
            .is_err()
    );

    drop_version(&stores, profiles, 1).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE $1",
    )
    .bind(naming::version_tables_like("profiles", 1))
    .fetch_one(&stores.pool)
    .await
    .unwrap();
    let positions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM projection_positions WHERE projection = 'profiles' AND version = 1",
    )
    .fetch_one(&stores.pool)
    .await
    .unwrap();
    assert_eq!((tables, positions), (0, 0));
    assert_eq!(
        registry.list().await.unwrap()[0].state,
        VersionState::Dropped
    );
}

/// The feed's active version 1 and a version being built beside it, each with its sink.
async fn feed_rebuild() -> (Stores, VersionRegistry, RedisSink<Feed>, RedisSink<Feed>) {
    let stores = stores().await;
    let registry = stores.versions(entry("feed").unwrap());
    registry.ensure_active(1).await.unwrap();
    let new_version = registry.create_building(1, None).await.unwrap().version;
    let sink = |version| {
        let (redis, prefix) = (stores.redis.clone(), &stores.redis_prefix);
        RedisSink::new(Feed, redis, prefix, version, PARTITIONS)
    };
    let (old, new) = (sink(1), sink(new_version));
    (stores, registry, old, new)
}

#[tokio::test]
async fn a_redis_switch_freezes_the_old_version_then_fences_and_retires_it() {
    let (stores, registry, old, new) = feed_rebuild().await;
    let (feed, new_version) = (entry("feed").unwrap(), new.version());
    let old_claim = claim_of(&old.claim(TOPIC, &[0]).await.unwrap(), 0);
    let new_claim = claim_of(&new.claim(TOPIC, &[0]).await.unwrap(), 0);
    let events = taps(0, 10);
    apply(&old, old_claim, &events).await.unwrap();
    apply(&new, new_claim, &events[..6]).await.unwrap();

    let frozen = freeze(&stores, feed, TOPIC, 1, new_version).await.unwrap();
    assert_eq!(frozen.serving().get(&0), Some(&10));
    // Frozen: the old version's batches are refused for now (retried), not applied.
    match apply(&old, old_claim, &taps(10, 1)).await {
        Err(SinkError::Transient(reason)) => assert!(reason.contains("frozen"), "{reason}"),
        other => panic!("a frozen version applied a batch: {other:?}"),
    }
    let Switch::Behind(behind) = frozen.switch().await.unwrap() else {
        panic!("switched while 4 events behind");
    };
    assert_eq!((behind[0].serving, behind[0].rebuilt), (10, 6));
    // The failed switch ended the freeze: the old version applies again.
    apply(&old, old_claim, &taps(10, 1)).await.unwrap();

    let frozen = freeze(&stores, feed, TOPIC, 1, new_version).await.unwrap();
    assert_eq!(frozen.serving().get(&0), Some(&11));
    apply(&new, new_claim, &events[6..]).await.unwrap();
    let released = frozen;
    // Releasing without switching also lets the old version go on.
    released.release().await.unwrap();
    apply(&old, old_claim, &taps(11, 1)).await.unwrap();
    let frozen = freeze(&stores, feed, TOPIC, 1, new_version).await.unwrap();
    let tail: Vec<Record> = taps(10, 2);
    apply(&new, new_claim, &tail).await.unwrap();
    assert_eq!(frozen.switch().await.unwrap(), Switch::Done);

    let outcome = apply(&old, old_claim, &taps(12, 1)).await;
    assert!(matches!(outcome, Err(SinkError::Fenced)), "{outcome:?}");
    assert!(old.claim(TOPIC, &[0]).await.unwrap().is_empty());
    let active = registry.active().await.unwrap().unwrap();
    assert_eq!(active.version, new_version);
    assert!(active.switched_at_ms.is_some());

    drop_version(&stores, feed, 1).await.unwrap();
    let mut conn = stores.redis.clone();
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(naming::version_keys_pattern(&naming::keys_base(
            &stores.redis_prefix,
            "feed",
            1,
        )))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
    let kept: Vec<String> = redis::cmd("KEYS")
        .arg(naming::version_keys_pattern(&naming::keys_base(
            &stores.redis_prefix,
            "feed",
            new_version,
        )))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!kept.is_empty());
    let _: () = redis::cmd("DEL")
        .arg(&kept)
        .query_async(&mut conn)
        .await
        .unwrap();
}

async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !condition().await {
        assert!(started.elapsed() < DEADLINE, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The Redis freeze is a lease on every partition of the topic: a partition the serving version
/// claims only after the freeze is frozen too, and the switch finds the rebuilt version behind
/// where the serving one applied more, rather than lose it; and a switch leaves the old version
/// frozen for good, so a batch of a processor that claims it again (the claim read the mark
/// before the switch) changes nothing.
#[tokio::test]
async fn a_redis_switch_freezes_every_partition_even_one_claimed_after_the_freeze_and_keeps_the_old_version_frozen()
 {
    let (stores, registry, old, new) = feed_rebuild().await;
    let (feed, new_version) = (entry("feed").unwrap(), new.version());
    let old_0 = claim_of(&old.claim(TOPIC, &[0]).await.unwrap(), 0);
    let new_claims = new.claim(TOPIC, &[0, 1]).await.unwrap();
    let (new_0, new_1) = (claim_of(&new_claims, 0), claim_of(&new_claims, 1));
    apply(&old, old_0, &taps(0, 5)).await.unwrap();
    apply(&new, new_0, &taps(0, 5)).await.unwrap();
    let old_1 = claim_of(&old.claim(TOPIC, &[1]).await.unwrap(), 1);
    apply(&old, old_1, &taps_on(1, 0, 3)).await.unwrap();

    let frozen = freeze(&stores, feed, TOPIC, 1, new_version).await.unwrap();
    assert_eq!(frozen.serving().get(&1), Some(&3));
    // Partition 1, claimed again by the old version after the freeze, is frozen all the same.
    let old_1 = claim_of(&old.claim(TOPIC, &[1]).await.unwrap(), 1);
    match apply(&old, old_1, &taps_on(1, 3, 1)).await {
        Err(SinkError::Transient(reason)) => assert!(reason.contains("frozen"), "{reason}"),
        other => panic!("a partition claimed after the freeze applied a batch: {other:?}"),
    }
    let Switch::Behind(behind) = frozen.switch().await.unwrap() else {
        panic!("switched without partition 1's three events");
    };
    assert_eq!(
        behind
            .iter()
            .map(|b| (b.partition, b.serving, b.rebuilt))
            .collect::<Vec<_>>(),
        vec![(1, 3, 0)]
    );

    let frozen = freeze(&stores, feed, TOPIC, 1, new_version).await.unwrap();
    assert_eq!(frozen.serving().get(&1), Some(&3));
    apply(&new, new_1, &taps_on(1, 0, 3)).await.unwrap();
    assert_eq!(frozen.switch().await.unwrap(), Switch::Done);

    // A claim that read the mark before the switch bumps the generation past the fence; its
    // batches still find the partition frozen, however long after the lease would have ended.
    assert_eq!(
        registry.active().await.unwrap().unwrap().version,
        new_version
    );
    let mut conn = stores.redis.clone();
    let version = naming::keys_base(&stores.redis_prefix, "feed", 1);
    let base = naming::partition_keys_base(&version, 0);
    let field = naming::position_field(TOPIC, 0);
    let generation: i64 = redis::cmd("HINCRBY")
        .arg(naming::generations_key(&base))
        .arg(&field)
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(naming::freeze_lease_key(&base))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(ttl, -1, "the old version's lease never ends");
    let reclaimed = Claim {
        generation,
        ..old_0
    };
    match apply(&old, reclaimed, &taps(5, 1)).await {
        Err(SinkError::Transient(reason)) => assert!(reason.contains("frozen"), "{reason}"),
        other => panic!("a retired version applied a batch: {other:?}"),
    }
    drop_version(&stores, feed, 1).await.unwrap();
    drop_version(&stores, feed, new_version).await.unwrap();
}
