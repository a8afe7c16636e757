//! The wallets projection in PostgreSQL.

use std::collections::{HashMap, HashSet};

use surge_processors::projectors::wallets::{number, plan};

use super::*;

fn store() -> WalletStore {
    WalletStore::new(&Wallets::at(1).table_prefix())
}

/// Users whose balance or entry count differs from their ledger, or whose ledger's
/// `balance_after`/`seq` is not the running sum/count in `seq` order. Empty when consistent.
async fn inconsistencies(db: &TestDb) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT user_id FROM wallets_v1_balances b
         WHERE balance <> (SELECT coalesce(sum(amount), 0) FROM wallets_v1_ledger l WHERE l.user_id = b.user_id)
            OR entries <> (SELECT count(*) FROM wallets_v1_ledger l WHERE l.user_id = b.user_id)
         UNION
         SELECT user_id FROM wallets_v1_ledger l
         WHERE NOT EXISTS (SELECT 1 FROM wallets_v1_balances b WHERE b.user_id = l.user_id)
            OR balance_after <> (SELECT sum(amount) FROM wallets_v1_ledger p
                                 WHERE p.user_id = l.user_id AND p.seq <= l.seq)
            OR seq <> (SELECT count(*) FROM wallets_v1_ledger p
                       WHERE p.user_id = l.user_id AND p.seq <= l.seq)",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

async fn balance(db: &TestDb, user_id: i64) -> Option<i64> {
    store()
        .wallet(&db.pool, user_id, 0)
        .await
        .unwrap()
        .map(|w| w.balance)
}

/// A mixed batch: Alice taps, checks in three days running (one repeat), has a session and is
/// credited a referral; Bob taps nothing, then some; Carol only starts a session.
fn mixed() -> Vec<Record> {
    batch(
        0,
        vec![
            (ALICE, session("Alice", None)),
            (ALICE, taps(25)),
            (ALICE, checkin(200)),
            (BOB, taps(0)),
            (ALICE, checkin(201)),
            (ALICE, checkin(201)),
            (BOB, taps(7)),
            (ALICE, credit(CAROL)),
            (ALICE, checkin(202)),
            (CAROL, session("Carol", Some("ref_7000000001"))),
        ],
    )
}

#[tokio::test]
async fn a_mixed_batch_keeps_every_balance_equal_to_its_ledger() {
    let db = TestDb::new().await;
    db.migrate::<Wallets>().await;
    db.migrate::<Wallets>().await; // migrations are idempotent
    let records = mixed();
    db.apply(&Wallets::at(1), &records).await.unwrap();

    // 25 taps + 100 + 200 (check-ins) + 500 (referral) + 300 (check-in).
    let alice = store()
        .wallet(&db.pool, ALICE, 10)
        .await
        .unwrap()
        .expect("alice earned");
    assert_eq!(alice.balance, 1_125);
    assert_eq!(alice.entries, 5);
    assert_eq!(alice.updated_at_ms, T0 + 8_000);
    assert_eq!(
        alice.streak,
        StreakRow {
            user_id: ALICE,
            current: 3,
            best: 3,
            last_day: Some(202)
        }
    );
    let ledger: Vec<_> = alice
        .latest
        .iter()
        .map(|e| (e.seq, e.kind.as_str(), e.amount, e.balance_after))
        .collect();
    assert_eq!(
        ledger,
        [
            (5, "checkin", 300, 1_125),
            (4, "referral", 500, 825),
            (3, "checkin", 200, 325),
            (2, "checkin", 100, 125),
            (1, "taps", 25, 25),
        ]
    );
    let newest = &alice.latest[0];
    assert_eq!(newest.event_id, records[8].event.envelope.event_id);
    assert_eq!(
        (newest.partition, newest.offset, newest.occurred_at_ms),
        (2, 8, T0 + 8_000)
    );

    let bob = store()
        .wallet(&db.pool, BOB, 10)
        .await
        .unwrap()
        .expect("bob earned");
    assert_eq!((bob.balance, bob.entries, bob.latest.len()), (7, 1, 1));
    assert_eq!(
        bob.streak,
        StreakRow {
            user_id: BOB,
            current: 0,
            best: 0,
            last_day: None
        }
    );
    assert_eq!(
        store().wallet(&db.pool, CAROL, 10).await.unwrap(),
        None,
        "sessions earn nothing"
    );

    assert_eq!(
        db.count("SELECT count(*) FROM wallets_v1_ledger").await,
        6,
        "no rows for 0 coins"
    );
    assert_eq!(inconsistencies(&db).await, Vec::<i64>::new());
}

#[tokio::test]
async fn applying_the_same_events_again_cannot_double_count() {
    let db = TestDb::new().await;
    db.migrate::<Wallets>().await;
    let records = mixed();
    db.apply(&Wallets::at(1), &records).await.unwrap();

    // The same events again in a fresh call, as if the runtime's deduplication had failed,
    // with new events placed after duplicates of their users' events.
    let mut again = records.clone();
    let new = batch(10, vec![(ALICE, taps(1)), (BOB, taps(3))]);
    again.insert(3, new[0].clone());
    again.push(new[1].clone());
    db.apply(&Wallets::at(1), &again).await.unwrap();

    let alice = store().wallet(&db.pool, ALICE, 1).await.unwrap().unwrap();
    assert_eq!((alice.balance, alice.entries), (1_126, 6));
    let newest: Vec<_> = alice
        .latest
        .iter()
        .map(|e| (e.event_id, e.seq, e.balance_after))
        .collect();
    assert_eq!(
        newest,
        [(new[0].event.envelope.event_id, 6, 1_126)],
        "new events continue the ledger"
    );
    let bob = store().wallet(&db.pool, BOB, 1).await.unwrap().unwrap();
    assert_eq!((bob.balance, bob.entries), (10, 2));
    let newest: Vec<_> = bob
        .latest
        .iter()
        .map(|e| (e.event_id, e.seq, e.balance_after))
        .collect();
    assert_eq!(
        newest,
        [(new[1].event.envelope.event_id, 2, 10)],
        "new events continue the ledger"
    );
    assert_eq!(db.count("SELECT count(*) FROM wallets_v1_ledger").await, 8);
    assert_eq!(inconsistencies(&db).await, Vec::<i64>::new());

    // A third time: nothing moves.
    db.apply(&Wallets::at(1), &again).await.unwrap();
    assert_eq!(
        (balance(&db, ALICE).await, balance(&db, BOB).await),
        (Some(1_126), Some(10))
    );
    assert_eq!(inconsistencies(&db).await, Vec::<i64>::new());
}

#[tokio::test]
async fn streaks_carry_across_batches() {
    let db = TestDb::new().await;
    db.migrate::<Wallets>().await;
    db.apply(
        &Wallets::at(1),
        &batch(0, vec![(ALICE, checkin(10)), (ALICE, checkin(11))]),
    )
    .await
    .unwrap();
    db.apply(
        &Wallets::at(1),
        &batch(
            2,
            vec![(ALICE, taps(1)), (ALICE, checkin(11)), (ALICE, checkin(12))],
        ),
    )
    .await
    .unwrap();
    db.apply(
        &Wallets::at(1),
        &batch(5, vec![(ALICE, checkin(9)), (ALICE, checkin(14))]),
    )
    .await
    .unwrap();

    // 100 + 200, then 1 + 300 (day 11 again earns nothing), then day 9 is late and day 14
    // starts over: 100.
    let alice = store().wallet(&db.pool, ALICE, 100).await.unwrap().unwrap();
    assert_eq!(alice.balance, 701);
    assert_eq!(alice.entries, 5);
    assert_eq!(
        alice.streak,
        StreakRow {
            user_id: ALICE,
            current: 1,
            best: 3,
            last_day: Some(14)
        }
    );
    assert_eq!(inconsistencies(&db).await, Vec::<i64>::new());
}

#[tokio::test]
async fn a_poison_event_fails_its_batch_before_anything_is_written() {
    let db = TestDb::new().await;
    db.migrate::<Wallets>().await;
    let records = batch(
        0,
        vec![(ALICE, taps(5)), (BOB, taps(-3)), (ALICE, checkin(1))],
    );
    match db.apply(&Wallets::at(1), &records).await {
        Err(ApplyError::Poison { event_id, .. }) => {
            assert_eq!(event_id, records[1].event.envelope.event_id)
        }
        other => panic!("expected poison, got {other:?}"),
    }
    assert_eq!(db.count("SELECT count(*) FROM wallets_v1_ledger").await, 0);
    assert_eq!(db.count("SELECT count(*) FROM wallets_v1_streaks").await, 0);
}

#[tokio::test]
async fn the_ledger_reads_newest_first_in_pages() {
    let db = TestDb::new().await;
    db.migrate::<Wallets>().await;
    let records = batch(0, (1..=5).map(|n| (ALICE, taps(n))).collect());
    db.apply(&Wallets::at(1), &records).await.unwrap();

    let wallet = store().wallet(&db.pool, ALICE, 2).await.unwrap().unwrap();
    assert_eq!((wallet.balance, wallet.entries), (15, 5));
    assert_eq!(
        wallet.latest.iter().map(|e| e.amount).collect::<Vec<_>>(),
        [5, 4]
    );
    let none = store().wallet(&db.pool, ALICE, 0).await.unwrap().unwrap();
    assert!(none.latest.is_empty());

    let first = store().ledger(&db.pool, ALICE, None, 3).await.unwrap();
    assert_eq!(first.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 4, 3]);
    let rest = store().ledger(&db.pool, ALICE, Some(3), 3).await.unwrap();
    assert_eq!(
        rest.iter()
            .map(|e| (e.seq, e.amount, e.balance_after))
            .collect::<Vec<_>>(),
        [(2, 2, 3), (1, 1, 1)]
    );
    assert!(
        store()
            .ledger(&db.pool, BOB, None, 3)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_write_moves_balances_only_by_the_ledger_rows_it_inserts() {
    let db = TestDb::new().await;
    db.migrate::<Wallets>().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let first = plan(
        &batch(0, vec![(ALICE, taps(5)), (ALICE, taps(6))]),
        HashMap::new(),
    )
    .unwrap();
    let rows = number(&first.entries, &HashMap::new(), &HashSet::new());
    assert_eq!(
        store()
            .write(&mut conn, &rows, &first.streaks)
            .await
            .unwrap(),
        2
    );

    // The same two events offered straight to the store again, ahead of a new one, without
    // the savepoint-and-renumber the projector adds: the ledger keeps them out, and only the
    // one row inserted moves the balance.
    let new = plan(&batch(2, vec![(ALICE, taps(7))]), HashMap::new()).unwrap();
    let offered: Vec<_> = first.entries.iter().chain(&new.entries).cloned().collect();
    let stored = store().load(&mut conn, &[ALICE]).await.unwrap();
    let rows = number(&offered, &stored.balances, &HashSet::new());
    assert_eq!(store().write(&mut conn, &rows, &[]).await.unwrap(), 1);

    let alice = store().wallet(&db.pool, ALICE, 10).await.unwrap().unwrap();
    assert_eq!((alice.balance, alice.entries), (18, 3));
    assert_eq!(
        db.count("SELECT sum(amount)::bigint FROM wallets_v1_ledger")
            .await,
        18
    );
}

/// Which kinds of coins exist is the coin rules' decision alone: a ledger made while the store
/// still listed them in a CHECK loses that CHECK when it is migrated, so a kind added to the
/// rules later is stored rather than refused.
#[tokio::test]
async fn migrating_an_old_ledger_drops_the_check_that_listed_the_kinds() {
    let db = TestDb::new().await;
    db.migrate::<Wallets>().await;
    let old_check = "ALTER TABLE wallets_v1_ledger ADD CONSTRAINT wallets_v1_ledger_kind_check \
                     CHECK (kind IN ('taps', 'checkin', 'referral'))";
    sqlx::query(old_check).execute(&db.pool).await.unwrap();
    let insert = "INSERT INTO wallets_v1_ledger VALUES \
                  (gen_random_uuid(), 1, 1, 'quest', 10, 10, now(), 0, 0)";
    let refused = sqlx::query(insert).execute(&db.pool).await.unwrap_err();
    assert!(refused.to_string().contains("kind_check"), "{refused}");

    db.migrate::<Wallets>().await;
    sqlx::query(insert).execute(&db.pool).await.unwrap();
}
