//! The profiles projection in PostgreSQL.

use super::*;

fn store() -> ProfileStore {
    ProfileStore::new(&Profiles::at(1).table_prefix())
}

#[tokio::test]
async fn a_batch_becomes_one_row_per_user_read_back_exactly() {
    let db = TestDb::new().await;
    db.migrate::<Profiles>().await;
    db.migrate::<Profiles>().await; // migrations are idempotent
    let records = batch(
        0,
        vec![
            (ALICE, session("Alice", Some("ref_42"))),
            (ALICE, taps(10)),
            (BOB, credit(ALICE)),
            (CAROL, checkin(19_000)),
            (
                ALICE,
                ProfileUpdated {
                    display_name: Some("Queen A".into()),
                    language_code: Some("fr".into()),
                    photo_url: None,
                }
                .into(),
            ),
            (CAROL, checkin(19_001)),
            (ALICE, session("Alice", Some("ref_5550000003"))),
        ],
    );
    db.apply(&Profiles::at(1), &records).await.unwrap();

    let alice = store()
        .profile(&db.pool, ALICE)
        .await
        .unwrap()
        .expect("alice has a row");
    assert_eq!(alice.first_name.as_deref(), Some("Alice"));
    assert_eq!(alice.username.as_deref(), Some("alice"));
    assert_eq!(alice.display_name.as_deref(), Some("Queen A"));
    assert_eq!(
        alice.language_code.as_deref(),
        Some("fr"),
        "the user's choice beats the later session"
    );
    assert_eq!(alice.photo_url.as_deref(), Some("https://t.me/Alice.jpg"));
    assert_eq!(alice.sessions_count, 2);
    assert_eq!(alice.referred_by, Some(42), "from the first session only");
    assert_eq!(alice.first_seen_at_ms, T0);
    assert_eq!(alice.last_seen_at_ms, T0 + 6_000);

    let carol = store()
        .profile(&db.pool, CAROL)
        .await
        .unwrap()
        .expect("a check-in creates the row");
    assert_eq!(
        (
            carol.streak_current,
            carol.streak_best,
            carol.streak_last_day
        ),
        (2, 2, Some(19_001))
    );
    assert_eq!(carol.sessions_count, 0);
    assert_eq!(carol.first_name, None);
    assert_eq!(
        (carol.first_seen_at_ms, carol.last_seen_at_ms),
        (T0 + 3_000, T0 + 5_000)
    );

    assert_eq!(
        store().profile(&db.pool, BOB).await.unwrap(),
        None,
        "a referral credit is not activity"
    );
    assert_eq!(db.count("SELECT count(*) FROM profiles_v1_users").await, 2);
}

#[tokio::test]
async fn later_batches_fold_onto_the_stored_rows() {
    let db = TestDb::new().await;
    db.migrate::<Profiles>().await;
    db.apply(
        &Profiles::at(1),
        &batch(
            0,
            vec![
                (CAROL, checkin(100)),
                (ALICE, session("Alice", Some("ref_x"))),
            ],
        ),
    )
    .await
    .unwrap();
    db.apply(
        &Profiles::at(1),
        &batch(
            2,
            vec![
                (CAROL, session("Carol", Some("ref_7000000001"))),
                (CAROL, checkin(101)),
                (CAROL, checkin(101)),
                (CAROL, checkin(102)),
                (ALICE, session("Alicia", Some("ref_42"))),
            ],
        ),
    )
    .await
    .unwrap();
    db.apply(
        &Profiles::at(1),
        &batch(
            7,
            vec![
                (CAROL, checkin(110)),
                (CAROL, session("Caroline", Some("ref_42"))),
            ],
        ),
    )
    .await
    .unwrap();

    let carol = store().profile(&db.pool, CAROL).await.unwrap().unwrap();
    assert_eq!(
        carol.referred_by,
        Some(ALICE),
        "set by the first session, after an earlier check-in"
    );
    assert_eq!(carol.sessions_count, 2);
    assert_eq!(carol.first_name.as_deref(), Some("Caroline"));
    assert_eq!(
        (
            carol.streak_current,
            carol.streak_best,
            carol.streak_last_day
        ),
        (1, 3, Some(110))
    );
    assert_eq!(
        (carol.first_seen_at_ms, carol.last_seen_at_ms),
        (T0, T0 + 8_000)
    );

    let alice = store().profile(&db.pool, ALICE).await.unwrap().unwrap();
    assert_eq!(
        alice.referred_by, None,
        "a malformed first start_param is final"
    );
    assert_eq!(alice.first_name.as_deref(), Some("Alicia"));
    assert_eq!(alice.sessions_count, 2);
}

#[tokio::test]
async fn a_batch_without_profile_events_writes_nothing() {
    let db = TestDb::new().await;
    db.migrate::<Profiles>().await;
    db.apply(
        &Profiles::at(1),
        &batch(0, vec![(BOB, credit(ALICE)), (BOB, credit(CAROL))]),
    )
    .await
    .unwrap();
    assert_eq!(db.count("SELECT count(*) FROM profiles_v1_users").await, 0);
    assert_eq!(store().profile(&db.pool, BOB).await.unwrap(), None);
}
