use super::*;
use surge_telegram_auth::WebAppUser;

const NOW: i64 = 1_764_000_000_000;

fn auth() -> InitData {
    InitData {
        user: WebAppUser {
            id: 5_000_000_001,
            first_name: "Ада".into(),
            last_name: None,
            username: Some("ada".into()),
            language_code: Some("en".into()),
            is_premium: true,
            is_bot: false,
            photo_url: None,
            allows_write_to_pm: true,
        },
        auth_date: NOW / 1000,
        start_param: Some("ref_42".into()),
        query_id: None,
        chat_type: None,
        chat_instance: None,
    }
}

fn one(action: Action) -> Result<Event, Invalid> {
    build_events(&[action], &auth(), NOW, None).map(|mut v| v.remove(0))
}

#[test]
fn session_snapshots_the_validated_profile_and_start_param() {
    let event = one(Action::Session(SessionBody {
        platform: Some("ios".into()),
    }))
    .unwrap();
    assert_eq!(event.envelope.user_id, 5_000_000_001);
    let Payload::SessionStarted(s) = event.payload else {
        panic!("not a session")
    };
    assert_eq!(s.first_name, "Ада");
    assert_eq!(s.start_param.as_deref(), Some("ref_42"));
    assert_eq!(s.platform.as_deref(), Some("ios"));
}

#[test]
fn taps_are_bounded() {
    for bad in [0, -1, MAX_TAPS + 1, i64::MAX] {
        let err = one(Action::Taps(TapsBody {
            count: bad,
            occurred_at: None,
        }))
        .unwrap_err();
        assert_eq!(err.field, "count", "{bad}");
    }
    let ok = one(Action::Taps(TapsBody {
        count: MAX_TAPS,
        occurred_at: None,
    }))
    .unwrap();
    assert_eq!(ok.payload, TapsSubmitted { count: 1000 }.into());
}

#[test]
fn occurred_at_is_bounded_and_sets_the_checkin_day() {
    let stale = Some(NOW - MAX_PAST_MS - 1);
    let future = Some(NOW + MAX_FUTURE_MS + 1);
    for at in [stale, future] {
        let err = one(Action::Checkin(CheckinBody { occurred_at: at })).unwrap_err();
        assert_eq!(err.field, "occurred_at");
    }
    let yesterday = NOW - DAY_MS;
    let event = one(Action::Checkin(CheckinBody {
        occurred_at: Some(yesterday),
    }))
    .unwrap();
    assert_eq!(event.envelope.occurred_at, yesterday);
    let day = i32::try_from(yesterday / DAY_MS).unwrap();
    assert_eq!(event.payload, DailyCheckedIn { day }.into());
}

#[test]
fn profile_needs_a_valid_field() {
    let empty = ProfileBody {
        display_name: None,
        language_code: None,
        photo_url: None,
    };
    assert_eq!(
        one(Action::Profile(empty.clone())).unwrap_err().field,
        "profile"
    );
    let cases = [
        ProfileBody {
            display_name: Some("  ".into()),
            ..empty.clone()
        },
        ProfileBody {
            display_name: Some("x".repeat(65)),
            ..empty.clone()
        },
        ProfileBody {
            language_code: Some("e n".into()),
            ..empty.clone()
        },
        ProfileBody {
            photo_url: Some("http://plain.example/a.jpg".into()),
            ..empty.clone()
        },
    ];
    for body in cases {
        assert!(one(Action::Profile(body.clone())).is_err(), "{body:?}");
    }
    let ok = ProfileBody {
        display_name: Some(" Ada ".into()),
        ..empty
    };
    let Payload::ProfileUpdated(p) = one(Action::Profile(ok)).unwrap().payload else {
        panic!()
    };
    assert_eq!(p.display_name.as_deref(), Some("Ada"));
}

#[test]
fn a_batch_names_the_bad_action_and_builds_nothing() {
    let actions = vec![
        Action::Taps(TapsBody {
            count: 5,
            occurred_at: None,
        }),
        Action::Taps(TapsBody {
            count: 0,
            occurred_at: None,
        }),
    ];
    let err = build_events(&actions, &auth(), NOW, None).unwrap_err();
    assert_eq!(err.field, "actions[1].count");
    let too_many = vec![Action::Checkin(CheckinBody { occurred_at: None }); MAX_BATCH + 1];
    assert_eq!(
        build_events(&too_many, &auth(), NOW, None)
            .unwrap_err()
            .field,
        "actions"
    );
}

#[test]
fn retries_reuse_the_given_ids_in_order() {
    let actions = vec![Action::Checkin(CheckinBody { occurred_at: None }); 3];
    let ids: Vec<_> = (0..3).map(|_| Uuid::now_v7()).collect();
    let events = build_events(&actions, &auth(), NOW, Some(&ids)).unwrap();
    let got: Vec<_> = events.iter().map(|e| e.envelope.event_id).collect();
    assert_eq!(got, ids);
}

#[test]
fn batch_json_is_tagged_by_type() {
    let body: BatchBody = serde_json::from_str(
        r#"{"actions":[{"type":"taps","count":3},{"type":"checkin"},{"type":"profile","display_name":"A"}]}"#,
    )
    .unwrap();
    assert_eq!(body.actions.len(), 3);
    assert!(
        serde_json::from_str::<BatchBody>(r#"{"actions":[{"type":"mint","coins":1}]}"#).is_err()
    );
    assert!(serde_json::from_str::<TapsBody>(r#"{"count":1,"coins":9}"#).is_err());
}

#[test]
fn every_event_meets_its_rules_and_initdata_fields_are_named_as_such() {
    let mut who = auth();
    who.user.first_name = "Ada\u{0}".into();
    let err = build_events(
        &[Action::Session(SessionBody { platform: None })],
        &who,
        NOW,
        None,
    )
    .unwrap_err();
    assert_eq!(err.field, "init_data.first_name");
    assert!(err.bad_text);
    let err = one(Action::Profile(ProfileBody {
        display_name: None,
        language_code: None,
        photo_url: Some("https://x/\u{0}y".into()),
    }))
    .unwrap_err();
    assert_eq!((err.field.as_str(), err.bad_text), ("photo_url", true));
    let err = one(Action::Session(SessionBody {
        platform: Some("x".repeat(33)),
    }))
    .unwrap_err();
    assert_eq!((err.field.as_str(), err.bad_text), ("platform", false));
}

#[test]
fn a_claim_must_name_a_quest_of_the_book_that_is_claimed() {
    let book = surge_schemas::quests::QuestBook::builtin();
    let claim = |id: &str| {
        Action::QuestClaim(QuestClaimBody {
            quest_id: id.into(),
        })
    };
    assert_eq!(check_claims(&[claim("open_5")], &book), Ok(()));
    assert_eq!(
        check_claims(&[claim("open_5"), claim("nope")], &book),
        Err(ClaimRefused::Unknown("nope".into()))
    );
    assert_eq!(
        check_claims(&[claim("tap_1000")], &book),
        Err(ClaimRefused::NotClaimable("tap_1000".into()))
    );
    let events = build_events(&[claim("open_5")], &auth(), NOW, None).unwrap();
    assert_eq!(
        events[0].payload,
        QuestClaimed {
            quest_id: "open_5".into()
        }
        .into()
    );
}
