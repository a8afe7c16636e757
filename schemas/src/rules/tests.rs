use super::*;
use crate::events::*;

fn profile(display_name: Option<&str>, photo_url: Option<&str>) -> Payload {
    ProfileUpdated {
        display_name: display_name.map(str::to_owned),
        language_code: None,
        photo_url: photo_url.map(str::to_owned),
    }
    .into()
}

fn session(first_name: &str) -> SessionStarted {
    SessionStarted {
        first_name: first_name.into(),
        last_name: None,
        username: Some("ada_l".into()),
        language_code: Some("pt-BR".into()),
        is_premium: false,
        photo_url: Some("https://t.me/i/userpic/320/a.svg".into()),
        allows_write_to_pm: true,
        start_param: Some("ref_42".into()),
        platform: Some("ios".into()),
    }
}

fn characters(payload: &Payload) -> &'static str {
    match check(payload) {
        Err(Violation {
            problem: Problem::Characters(_),
            field,
        }) => field,
        other => panic!("{payload:?}: {other:?}"),
    }
}

type Spoil = fn(&mut SessionStarted);

#[test]
fn every_text_field_refuses_nul_and_control_characters() {
    assert_eq!(
        characters(&profile(None, Some("https://x/\u{0}y"))),
        "photo_url"
    );
    assert_eq!(characters(&profile(Some("A\u{0}B"), None)), "display_name");
    assert_eq!(
        characters(&profile(Some("line\nbreak"), None)),
        "display_name"
    );
    assert_eq!(
        characters(&profile(Some("esc\u{1b}[31m"), None)),
        "display_name"
    );
    assert_eq!(characters(&profile(Some("c1\u{85}"), None)), "display_name");
    assert_eq!(characters(&session("Ada\u{0}").into()), "first_name");
    let fields: [(Spoil, &str); 6] = [
        (|s| s.last_name = Some("L\u{7f}".into()), "last_name"),
        (|s| s.username = Some("a\u{0}".into()), "username"),
        (
            |s| s.language_code = Some("en\u{0}".into()),
            "language_code",
        ),
        (
            |s| s.photo_url = Some("https://a/\u{0}".into()),
            "photo_url",
        ),
        (|s| s.start_param = Some("r\u{0}".into()), "start_param"),
        (|s| s.platform = Some("\u{0}".into()), "platform"),
    ];
    for (spoil, field) in fields {
        let mut s = session("Ada");
        spoil(&mut s);
        assert_eq!(characters(&s.into()), field);
    }
}

#[test]
fn names_refuse_bidirectional_controls() {
    for c in [
        '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2069}',
    ] {
        let name = format!("gg{c}ez");
        assert_eq!(
            characters(&profile(Some(&name), None)),
            "display_name",
            "{c:?}"
        );
        assert_eq!(characters(&session(&name).into()), "first_name", "{c:?}");
    }
    // Right-to-left scripts themselves are names like any other.
    assert_eq!(check(&profile(Some("שלום عالم"), None)), Ok(()));
}

#[test]
fn display_names_must_show_something() {
    for blank in [
        "\u{200B}",
        "\u{200B}\u{200D}\u{FEFF}",
        "\u{3164}",
        "\u{2800}\u{2800}",
        "\u{00AD}",
        "\u{3000}",
    ] {
        let err = check(&profile(Some(blank), None)).unwrap_err();
        assert_eq!(
            err.problem,
            Problem::Characters("only invisible characters"),
            "{blank:?}"
        );
    }
    assert_eq!(check(&profile(Some("A\u{200D}B"), None)), Ok(()));
    assert_eq!(check(&profile(Some("👩\u{200D}🚀"), None)), Ok(()));
    // A Telegram name may look blank: the player did not choose it for this game.
    assert_eq!(check(&session("\u{3164}").into()), Ok(()));
}

#[test]
fn lengths_are_bounded_per_field() {
    let value = |payload: Payload| match check(&payload) {
        Err(Violation {
            problem: Problem::Value(_),
            field,
        }) => field,
        other => panic!("{payload:?}: {other:?}"),
    };
    assert_eq!(value(profile(Some(&"я".repeat(65)), None)), "display_name");
    assert_eq!(check(&profile(Some(&"я".repeat(64)), None)), Ok(()));
    assert_eq!(value(profile(Some(""), None)), "display_name");
    let long_url = format!("https://x/{}", "a".repeat(503));
    assert_eq!(value(profile(None, Some(&long_url))), "photo_url");
    assert_eq!(
        value(profile(None, Some("http://plain/a.jpg"))),
        "photo_url"
    );
    assert_eq!(value(session(&"n".repeat(65)).into()), "first_name");
    let mut s = session("Ada");
    s.start_param = Some("r".repeat(513));
    assert_eq!(value(s.into()), "start_param");
    let mut s = session("Ada");
    s.username = Some("u".repeat(33));
    assert_eq!(value(s.into()), "username");
    for count in [0, -1, MAX_TAPS + 1] {
        assert_eq!(value(TapsSubmitted { count }.into()), "count");
    }
    assert_eq!(check(&session("Ada").into()), Ok(()));
}

#[test]
fn violations_name_their_field() {
    let err = check(&profile(None, Some("https://x/\u{0}y"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "photo_url: must not contain control characters (NUL, newlines, escapes)"
    );
}

#[test]
fn quest_events_name_a_token_id_and_pay_a_bounded_reward() {
    let claimed = |id: &str| {
        Payload::from(QuestClaimed {
            quest_id: id.into(),
        })
    };
    assert_eq!(check(&claimed("open_5")), Ok(()));
    assert_eq!(characters(&claimed("open\u{0}5")), "quest_id");
    assert!(
        check(&claimed(&"q".repeat(33))).is_err(),
        "longer than an id"
    );
    let completed = |reward: i64| {
        Payload::from(QuestCompleted {
            quest_id: "tap_1000".into(),
            reward,
            source_event_id: uuid::Uuid::nil(),
        })
    };
    assert_eq!(check(&completed(1000)), Ok(()));
    assert_eq!(check(&completed(0)).unwrap_err().field, "reward");
}

#[test]
fn payment_events_bound_their_ids_amounts_and_grants() {
    let received = |charge: &str, stars: i64, coins: i64| {
        Payload::from(StarsPaymentReceived {
            telegram_payment_charge_id: charge.into(),
            purchase_id: uuid::Uuid::nil(),
            item_id: "coins_1000".into(),
            stars,
            coins,
            subscription: None,
            subscription_expires_at: None,
            recurring: false,
        })
    };
    assert_eq!(check(&received("stxAbc-_.+=", 50, 1000)), Ok(()));
    assert_eq!(
        characters(&received("stx\u{0}", 50, 1000)),
        "telegram_payment_charge_id"
    );
    let field = |p: Payload| check(&p).unwrap_err().field;
    assert_eq!(
        field(received("a b", 50, 1000)),
        "telegram_payment_charge_id"
    );
    assert_eq!(
        field(received(&"c".repeat(257), 50, 1000)),
        "telegram_payment_charge_id"
    );
    assert_eq!(field(received("stx", 0, 1000)), "stars");
    assert_eq!(field(received("stx", 50, -1)), "coins");
    let started = |item: &str, stars: i64| {
        Payload::from(PurchaseStarted {
            purchase_id: uuid::Uuid::nil(),
            item_id: item.into(),
            stars,
        })
    };
    assert_eq!(check(&started("vip", 250)), Ok(()));
    assert_eq!(field(started("v.p", 250)), "item_id");
    assert_eq!(field(started("vip", 10_001)), "stars");
    let refunded = Payload::from(StarsPaymentRefunded {
        telegram_payment_charge_id: "stx".into(),
        purchase_id: uuid::Uuid::nil(),
        item_id: "coins_1000".into(),
        stars: 50,
        coins: 1_000_000_001,
    });
    assert_eq!(field(refunded), "coins");
}

#[test]
fn broadcasts_hold_a_message_with_newlines_and_a_bounded_audience() {
    let broadcast =
        |text: &str, button: Option<&str>, days: Option<i32>, language: Option<&str>| {
            Payload::from(BroadcastRequested {
                broadcast_id: uuid::Uuid::nil(),
                text: text.into(),
                button_text: button.map(Into::into),
                active_within_days: days,
                language: language.map(Into::into),
            })
        };
    assert_eq!(
        check(&broadcast(
            "Line one\nline two",
            Some("Play"),
            Some(7),
            Some("en")
        )),
        Ok(())
    );
    assert_eq!(
        check(&broadcast(&"é".repeat(4096), None, None, None)),
        Ok(())
    );
    let field = |p: Payload| check(&p).unwrap_err().field;
    assert_eq!(field(broadcast("", None, None, None)), "text");
    assert_eq!(
        field(broadcast(&"a".repeat(4097), None, None, None)),
        "text"
    );
    assert_eq!(
        characters(&broadcast("tab\there", None, None, None)),
        "text"
    );
    assert_eq!(characters(&broadcast("nul\u{0}", None, None, None)), "text");
    assert_eq!(
        field(broadcast("hi", Some(&"b".repeat(65)), None, None)),
        "button_text"
    );
    assert_eq!(field(broadcast("hi", Some(" "), None, None)), "button_text");
    assert_eq!(
        field(broadcast("hi", None, Some(0), None)),
        "active_within_days"
    );
    assert_eq!(field(broadcast("hi", None, None, Some("e n"))), "language");
    let blocked = |reason: &str| {
        Payload::from(BotBlocked {
            reason: reason.into(),
        })
    };
    assert_eq!(
        check(&blocked("Forbidden: bot was blocked by the user")),
        Ok(())
    );
    assert_eq!(field(blocked("")), "reason");
}
