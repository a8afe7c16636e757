//! `surge tap` as a user runs it: every event type round-trips through its JSON lines; the type,
//! user and time filters; undecodable records are shown, not fatal; `--group` resumes where the
//! last run stopped and commits nowhere else; a processor's group name is refused.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use surge_projections::naming;
use surge_schemas::{
    Codec, DailyCheckedIn, Envelope, Event, Payload, ProfileUpdated, ReferralCredited,
    SessionStarted, TapsSubmitted, json::from_json,
};
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app};

struct Tapped {
    success: bool,
    lines: Vec<Value>,
    stderr: String,
}

/// Runs `surge tap --exit-at-end <args>` against the app's broker and registry.
fn tap(app: &TestApp, args: &[&str]) -> Tapped {
    let mut child = app
        .cli("tap")
        .arg("--exit-at-end")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn surge tap");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).unwrap();
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "surge tap {args:?} did not reach the end: {}",
                err.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let lines = out
        .join()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect();
    Tapped {
        success: status.success(),
        lines,
        stderr: err.join().unwrap(),
    }
}

fn producer(app: &TestApp) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", &app.brokers)
        .create()
        .unwrap()
}

async fn produce(app: &TestApp, producer: &FutureProducer, key: i64, bytes: &[u8]) {
    let key = key.to_string();
    producer
        .send(
            FutureRecord::to(&app.topic).key(&key).payload(bytes),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
}

async fn produce_event(app: &TestApp, producer: &FutureProducer, codec: &Codec, event: &Event) {
    let bytes = codec.encode(event).await.unwrap();
    produce(app, producer, event.envelope.user_id, &bytes).await;
}

fn event(user_id: i64, payload: Payload) -> Event {
    Event {
        envelope: Envelope {
            event_id: Uuid::now_v7(),
            user_id,
            occurred_at: 1_795_379_397_123,
            recorded_at: 1_795_379_397_456,
        },
        payload,
    }
}

/// One event of every type, optional fields both set and unset.
fn every_type() -> Vec<Event> {
    vec![
        event(
            1,
            SessionStarted {
                first_name: "Ada".into(),
                last_name: Some("Lovelace".into()),
                username: Some("ada".into()),
                language_code: Some("en".into()),
                is_premium: true,
                photo_url: Some("https://t.me/i/ada.jpg".into()),
                allows_write_to_pm: true,
                start_param: Some("ref_2".into()),
                platform: Some("ios".into()),
            }
            .into(),
        ),
        event(
            2,
            SessionStarted {
                first_name: "Ünïcødé ✓".into(),
                last_name: None,
                username: None,
                language_code: None,
                is_premium: false,
                photo_url: None,
                allows_write_to_pm: false,
                start_param: None,
                platform: None,
            }
            .into(),
        ),
        event(
            1,
            ProfileUpdated {
                display_name: Some("Countess".into()),
                language_code: None,
                photo_url: None,
            }
            .into(),
        ),
        event(2, TapsSubmitted { count: 250 }.into()),
        event(1, DailyCheckedIn { day: 20_779 }.into()),
        event(
            2,
            ReferralCredited {
                referred_user_id: 1,
                source_event_id: Uuid::now_v7(),
            }
            .into(),
        ),
    ]
}

#[tokio::test]
async fn every_event_type_round_trips_through_tap_output() {
    let app = spawn_app().await;
    let (codec, _registry) = app.codec().await;
    let producer = producer(&app);
    let events = every_type();
    for event in &events {
        produce_event(&app, &producer, &codec, event).await;
    }
    // One through the write API, for the headers it sets.
    let written = app
        .write("POST", "/v1/taps", 3, json!({ "count": 7 }))
        .await;
    assert_eq!(written.status(), 202);

    let tapped = tap(&app, &["--from-beginning"]);
    assert!(tapped.success, "{}", tapped.stderr);
    assert_eq!(tapped.lines.len(), events.len() + 1, "{:?}", tapped.lines);
    for original in &events {
        let line = tapped
            .lines
            .iter()
            .find(|l| l["event"]["event_id"] == original.envelope.event_id.to_string())
            .unwrap_or_else(|| panic!("{original:?} not printed"));
        assert_eq!(&from_json(&line["event"]).unwrap(), original);
        assert_eq!(line["key"], original.envelope.user_id.to_string());
        assert_eq!(line["topic"], app.topic.as_str());
        assert!(
            line["partition"].is_i64() && line["offset"].is_i64(),
            "{line}"
        );
        assert!(line["timestamp"].is_string(), "{line}");
    }
    let from_api = tapped
        .lines
        .iter()
        .find(|l| l["event"]["user_id"] == 3)
        .unwrap();
    assert_eq!(from_api["event"]["payload"], json!({ "count": 7 }));
    assert_eq!(
        from_api["headers"]["surge-event-type"], "app.surge.events.TapsSubmitted",
        "{from_api}"
    );
}

#[tokio::test]
async fn filters_pick_events_by_type_user_and_time() {
    let app = spawn_app().await;
    let (codec, _registry) = app.codec().await;
    let producer = producer(&app);
    for event in every_type() {
        produce_event(&app, &producer, &codec, &event).await;
    }
    produce(&app, &producer, 9, b"not avro at all").await;

    let all = tap(&app, &["--from-beginning"]);
    let garbage: Vec<&Value> = all
        .lines
        .iter()
        .filter(|l| l.get("error").is_some())
        .collect();
    assert_eq!(garbage.len(), 1, "the undecodable record is shown once");
    assert_eq!(garbage[0]["value_base64"], "bm90IGF2cm8gYXQgYWxs");
    assert_eq!(all.lines.len(), 7);

    let sessions = tap(&app, &["--from-beginning", "--type", "SessionStarted"]);
    assert_eq!(sessions.lines.len(), 2);
    assert!(
        sessions
            .lines
            .iter()
            .all(|l| l["event"]["type"] == "SessionStarted")
    );

    let user_two = tap(&app, &["--from-beginning", "--user", "2"]);
    assert_eq!(user_two.lines.len(), 3);
    assert!(user_two.lines.iter().all(|l| l["event"]["user_id"] == 2));

    assert_eq!(
        tap(&app, &["--from", "1970-01-01T00:00:00Z"]).lines.len(),
        7
    );
    assert_eq!(
        tap(&app, &["--from", "2999-01-01T00:00:00Z"]).lines.len(),
        0
    );

    let bad = tap(&app, &["--type", "Teleported"]);
    assert!(!bad.success);
    assert!(
        bad.stderr.contains("known: SessionStarted"),
        "{}",
        bad.stderr
    );
}

#[tokio::test]
async fn a_group_resumes_where_it_stopped_and_serving_groups_are_refused() {
    let app = spawn_app().await;
    let (codec, _registry) = app.codec().await;
    let producer = producer(&app);
    let events = every_type();
    for event in &events[..4] {
        produce_event(&app, &producer, &codec, event).await;
    }
    let group = format!("{}-tap", app.id);
    let first = tap(&app, &["--group", &group, "--from-beginning"]);
    assert!(first.success, "{}", first.stderr);
    assert_eq!(first.lines.len(), 4);
    let again = tap(&app, &["--group", &group]);
    assert!(again.success, "{}", again.stderr);
    assert_eq!(again.lines.len(), 0, "nothing new since the commit");
    for event in &events[4..] {
        produce_event(&app, &producer, &codec, event).await;
    }
    let rest = tap(&app, &["--group", &group]);
    let ids: Vec<&Value> = rest.lines.iter().map(|l| &l["event"]["event_id"]).collect();
    let expected: Vec<Value> = events[4..]
        .iter()
        .map(|e| e.envelope.event_id.to_string().into())
        .collect();
    assert_eq!(ids.len(), expected.len());
    assert!(expected.iter().all(|id| ids.contains(&id)), "{ids:?}");

    let serving = naming::consumer_group(&app.topic, &naming::processor_id("profiles", 1));
    let refused = tap(&app, &["--group", &serving]);
    assert!(!refused.success);
    assert!(
        refused.stderr.contains("processor's group"),
        "{}",
        refused.stderr
    );
}

/// `--from` starts each partition where the broker's time index says (the first record stamped at
/// or after the instant) and reads on from there, as Kafka's own tools do: a later record with
/// an older stamp is still printed, and nothing before the start is read.
#[tokio::test]
async fn from_seeks_each_partition_by_the_brokers_time_index() {
    let app = spawn_app().await;
    let producer = producer(&app);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let hour = 3_600_000;
    for (stamp, body) in [
        (now - 2 * hour, "before"),
        (now, "at"),
        (now - 2 * hour, "late"),
    ] {
        producer
            .send(
                FutureRecord::to(&app.topic)
                    .partition(0)
                    .key("1")
                    .timestamp(stamp)
                    .payload(body.as_bytes()),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    let from = (now - hour).to_string();
    let tapped = tap(&app, &["--from", &from]);
    assert!(tapped.success, "{}", tapped.stderr);
    let offsets: Vec<i64> = tapped
        .lines
        .iter()
        .map(|l| l["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(
        offsets,
        [1, 2],
        "from the record stamped now on: {:?}",
        tapped.lines
    );
}
