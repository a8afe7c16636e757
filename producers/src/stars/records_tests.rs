//! The payment records on a single Redis and on a Redis Cluster: a refund wins over a payment
//! recorded before, after or between its two halves, and a cluster takes every script.

use super::*;

async fn records(redis: Redis) -> (PaymentRecords, String) {
    let prefix = surge_testkit::unique_id("stars");
    (PaymentRecords::new(redis, &prefix), prefix)
}

fn charge(user_id: i64) -> Charge {
    Charge {
        user_id,
        invoice_payload: "payload".into(),
        stars: 50,
        refunded: false,
    }
}

async fn both() -> [Redis; 2] {
    [
        surge_testkit::redis().await,
        surge_testkit::redis_cluster().await,
    ]
}

#[tokio::test]
async fn a_paid_once_only_item_is_owned_until_its_refund_on_redis_and_on_redis_cluster() {
    for redis in both().await {
        let (records, prefix) = records(redis.clone()).await;
        let purchase = Uuid::now_v7();
        assert!(records.hold(7, "skin", purchase).await.unwrap());
        records
            .paid("ch-1", &charge(7), "skin", true)
            .await
            .unwrap();
        assert!(records.owns(7, "skin").await.unwrap());
        assert!(
            records.hold(7, "skin", Uuid::now_v7()).await.unwrap(),
            "the payment released the hold"
        );
        records.refunded("ch-1", &charge(7), "skin").await.unwrap();
        assert!(!records.owns(7, "skin").await.unwrap());
        let stored = records.charge("ch-1").await.unwrap().expect("recorded");
        assert!(stored.refunded);
        surge_testkit::delete_keys(&mut redis.clone(), &prefix)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_payment_redelivered_after_its_refund_owns_nothing_on_redis_and_on_redis_cluster() {
    for redis in both().await {
        let (records, prefix) = records(redis.clone()).await;
        records
            .paid("ch-2", &charge(8), "skin", true)
            .await
            .unwrap();
        records.refunded("ch-2", &charge(8), "skin").await.unwrap();
        records
            .paid("ch-2", &charge(8), "skin", true)
            .await
            .unwrap();
        assert!(!records.owns(8, "skin").await.unwrap());
        assert!(records.charge("ch-2").await.unwrap().unwrap().refunded);
        surge_testkit::delete_keys(&mut redis.clone(), &prefix)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_refund_between_the_two_halves_of_a_payment_still_wins_on_redis_and_on_redis_cluster() {
    for redis in both().await {
        let (records, prefix) = records(redis.clone()).await;
        // The payment's charge half, then the whole refund, then the payment's user half.
        assert!(records.record_payment("ch-3", &charge(9)).await.unwrap());
        records.refunded("ch-3", &charge(9), "skin").await.unwrap();
        records.own("ch-3", 9, "skin", true).await.unwrap();
        assert!(!records.owns(9, "skin").await.unwrap());
        assert!(records.charge("ch-3").await.unwrap().unwrap().refunded);
        surge_testkit::delete_keys(&mut redis.clone(), &prefix)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_payment_cut_off_between_its_halves_owns_its_item_when_reported_again_on_redis_and_on_redis_cluster()
 {
    for redis in both().await {
        let (records, prefix) = records(redis.clone()).await;
        // The charge's half, then the crash: the redelivery finds the charge recorded.
        assert!(records.record_payment("ch-5", &charge(10)).await.unwrap());
        assert!(!records.owns(10, "skin").await.unwrap());
        let recorded = records.charge("ch-5").await.unwrap().expect("recorded");
        records
            .paid_again("ch-5", &recorded, "skin", true)
            .await
            .unwrap();
        assert!(records.owns(10, "skin").await.unwrap());
        // Refunded, a payment reported again owns nothing.
        records.refunded("ch-5", &charge(10), "skin").await.unwrap();
        let recorded = records.charge("ch-5").await.unwrap().expect("recorded");
        records
            .paid_again("ch-5", &recorded, "skin", true)
            .await
            .unwrap();
        assert!(!records.owns(10, "skin").await.unwrap());
        surge_testkit::delete_keys(&mut redis.clone(), &prefix)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_users_keys_share_one_slot_on_redis_cluster() {
    let redis = surge_testkit::redis_cluster().await;
    let (records, _) = records(redis.clone()).await;
    let keys = [
        records.owned(42),
        records.hold_key(42, "skin"),
        records.refund_marker(42, "ch-4"),
    ];
    let mut slots = Vec::new();
    for key in &keys {
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(&mut redis.clone())
            .await
            .unwrap();
        slots.push(slot);
    }
    assert!(slots.iter().all(|s| *s == slots[0]), "{keys:?}: {slots:?}");
    assert!(keys.iter().all(|k| k.contains(":{42}")), "{keys:?}");
}
