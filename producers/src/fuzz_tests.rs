//! Property-based fuzzing of every JSON body the write API reads: arbitrary bytes and hostile
//! JSON never panic the depth guard, the parser or the event builder, and whatever the builder
//! accepts meets the event rules and encodes as Avro (so it can never fail at the append).
//! `PROPTEST_CASES=100000 cargo test -p surge-producers fuzz` runs longer.

use proptest::prelude::*;
use serde::de::DeserializeOwned;
use surge_schemas::rules;
use surge_telegram_auth::{InitData, WebAppUser};

use crate::actions::{
    Action, BatchBody, CheckinBody, ProfileBody, SessionBody, TapsBody, build_events,
};
use crate::http::json::parse;

const NOW: i64 = 1_800_000_000_000;
const MAX_DEPTH: usize = 8;

fn auth(first_name: String, start_param: Option<String>) -> InitData {
    InitData {
        user: WebAppUser {
            id: 5_000_000_001,
            first_name,
            last_name: None,
            username: Some("ada".into()),
            language_code: Some("en".into()),
            is_premium: false,
            is_bot: false,
            photo_url: None,
            allows_write_to_pm: true,
        },
        auth_date: NOW / 1000,
        start_param,
        query_id: None,
        chat_type: None,
        chat_instance: None,
    }
}

/// What an accepted request becomes must be appendable.
fn accepted_events_are_sound(actions: &[Action], who: &InitData) -> Result<(), TestCaseError> {
    match build_events(actions, who, NOW, None) {
        Ok(events) => {
            prop_assert_eq!(events.len(), actions.len());
            for event in &events {
                prop_assert_eq!(rules::check(&event.payload), Ok(()));
                let encoded = surge_schemas::avro::to_value(event);
                prop_assert!(encoded.is_ok(), "{event:?}: {encoded:?}");
            }
        }
        Err(invalid) => prop_assert!(!invalid.field.is_empty() && !invalid.message.is_empty()),
    }
    Ok(())
}

/// The extractor's path for one body type: shape checks, then parse; then the builder.
fn read<T: DeserializeOwned>(
    bytes: &[u8],
    to_actions: fn(T) -> Vec<Action>,
) -> Result<(), TestCaseError> {
    if let Ok(body) = parse::<T>(bytes, MAX_DEPTH) {
        accepted_events_are_sound(&to_actions(body), &auth("Ada".into(), None))?;
    }
    Ok(())
}

fn read_every_body(bytes: &[u8]) -> Result<(), TestCaseError> {
    read::<SessionBody>(bytes, |b| vec![Action::Session(b)])?;
    read::<TapsBody>(bytes, |b| vec![Action::Taps(b)])?;
    read::<CheckinBody>(bytes, |b| vec![Action::Checkin(b)])?;
    read::<ProfileBody>(bytes, |b| vec![Action::Profile(b)])?;
    read::<BatchBody>(bytes, |b| b.actions)
}

/// JSON-ish tokens: structure, the bodies' own keys, extreme numbers, escapes of control
/// characters, lone surrogates and bidirectional overrides.
fn json_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(",".to_owned()),
        Just(":".to_owned()),
        Just(r#""actions":"#.to_owned()),
        Just(r#""type":"taps","#.to_owned()),
        Just(r#""type":"profile","#.to_owned()),
        Just(r#""type":"session","#.to_owned()),
        Just(r#""type":"checkin""#.to_owned()),
        Just(r#""count":"#.to_owned()),
        Just(r#""occurred_at":"#.to_owned()),
        Just(r#""display_name":"#.to_owned()),
        Just(r#""photo_url":"https://"#.to_owned()),
        Just(r#""language_code":"#.to_owned()),
        Just(r#""platform":"#.to_owned()),
        Just(r#""\u0000""#.to_owned()),
        Just(r#""\ud800""#.to_owned()),
        Just(r#""\u202e""#.to_owned()),
        Just("null".to_owned()),
        Just("1e400".to_owned()),
        Just("-0".to_owned()),
        Just("9223372036854775808".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<String>().prop_map(|s| serde_json::to_string(&s).expect("a string serialises")),
        any::<String>(),
    ]
}

fn text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        any::<String>(),
        "[a-z]{0,3}",
        Just("https://t.me/i/a.jpg".to_owned()),
        Just("\u{200B}".to_owned()),
    ])
}

fn action() -> impl Strategy<Value = Action> {
    let at = proptest::option::of(prop_oneof![
        any::<i64>(),
        (NOW - 90_000_000)..(NOW + 90_000)
    ]);
    prop_oneof![
        text().prop_map(|platform| Action::Session(SessionBody { platform })),
        (prop_oneof![any::<i64>(), -2i64..1002], at.clone())
            .prop_map(|(count, occurred_at)| Action::Taps(TapsBody { count, occurred_at })),
        at.prop_map(|occurred_at| Action::Checkin(CheckinBody { occurred_at })),
        (text(), text(), text()).prop_map(|(display_name, language_code, photo_url)| {
            Action::Profile(ProfileBody {
                display_name,
                language_code,
                photo_url,
            })
        }),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_any_body(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        read_every_body(&bytes)?;
    }

    #[test]
    fn hostile_json_never_panics_any_body(pieces in proptest::collection::vec(json_piece(), 0..40)) {
        read_every_body(pieces.concat().as_bytes())?;
    }

    #[test]
    fn every_batch_the_builder_accepts_is_appendable(
        actions in proptest::collection::vec(action(), 0..8),
        first_name in any::<String>(),
        start_param in proptest::option::of(any::<String>()),
    ) {
        let json = serde_json::to_vec(&BatchBody { actions: actions.clone() }).expect("serialises");
        let parsed: BatchBody = serde_json::from_slice(&json).expect("its own JSON parses");
        prop_assert_eq!(&parsed.actions, &actions);
        accepted_events_are_sound(&actions, &auth(first_name, start_param))?;
    }
}
