//! The pre-filled topic: a repeatable, realistic mix of events over the last day, encoded with
//! the real codec (Confluent wire format through the schema registry) and produced keyed by user
//! id with the write API's partitioner, batching on.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use surge_schemas::{
    Codec, DailyCheckedIn, Envelope, Event, EventType, Payload, ProfileUpdated, SessionStarted,
    TapsSubmitted, headers,
};
use uuid::Uuid;

const DAY_MS: i64 = 86_400_000;
/// Telegram user ids are large numbers; start there so keys and feeds look real.
const FIRST_USER_ID: i64 = 6_000_000_000;
const FIRST_NAMES: &[&str] = &["Alex", "Maria", "Ivan", "Li", "Sam", "Olga", "Nina", "Omar"];
const LANGUAGES: &[&str] = &["en", "ru", "es", "pt", "id"];
const PLATFORMS: &[&str] = &["android", "ios", "tdesktop", "weba"];

/// Per-mille shares of the mix; taps take the rest.
const SESSIONS_PER_MILLE: u64 = 60;
const CHECKINS_PER_MILLE: u64 = 40;
const PROFILE_UPDATES_PER_MILLE: u64 = 20;

/// SplitMix64: deterministic and dependency-free; the mix only has to be repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// How many events of each type were generated.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Mix {
    pub(crate) taps: u64,
    pub(crate) sessions: u64,
    pub(crate) checkins: u64,
    pub(crate) profile_updates: u64,
}

/// `count` events of `users` users, uniformly, with `occurred_at` rising over the day before
/// `now_ms` (so leaderboard expiries lie in the future, as for live traffic).
pub(crate) fn generate(count: usize, users: u64, now_ms: i64) -> (Vec<Event>, Mix) {
    let mut rng = Rng(0x5EED_5EED_5EED_5EED);
    let mut mix = Mix::default();
    let start = now_ms - DAY_MS;
    let step = DAY_MS as f64 / count.max(1) as f64;
    let events = (0..count)
        .map(|i| {
            let n = rng.below(users.max(1));
            let user_id = FIRST_USER_ID + n as i64;
            let occurred_at = start + (i as f64 * step) as i64;
            let roll = rng.below(1000);
            let payload = if roll < SESSIONS_PER_MILLE {
                mix.sessions += 1;
                Payload::SessionStarted(session(n, &mut rng, users))
            } else if roll < SESSIONS_PER_MILLE + CHECKINS_PER_MILLE {
                mix.checkins += 1;
                Payload::DailyCheckedIn(DailyCheckedIn {
                    day: i32::try_from(occurred_at.div_euclid(DAY_MS)).expect("a day fits i32"),
                })
            } else if roll < SESSIONS_PER_MILLE + CHECKINS_PER_MILLE + PROFILE_UPDATES_PER_MILLE {
                mix.profile_updates += 1;
                Payload::ProfileUpdated(ProfileUpdated {
                    display_name: Some(format!("Player {n}")),
                    language_code: (rng.below(2) == 0).then(|| "en".to_owned()),
                    photo_url: None,
                })
            } else {
                mix.taps += 1;
                // A client submits the taps of a few seconds at once.
                Payload::TapsSubmitted(TapsSubmitted {
                    count: 1 + rng.below(80) as i32,
                })
            };
            Event {
                envelope: Envelope {
                    event_id: Uuid::now_v7(),
                    user_id,
                    occurred_at,
                    recorded_at: occurred_at + rng.below(500) as i64,
                },
                payload,
            }
        })
        .collect();
    (events, mix)
}

fn session(n: u64, rng: &mut Rng, users: u64) -> SessionStarted {
    let pick = |list: &[&str], i: u64| list[(i % list.len() as u64) as usize].to_owned();
    SessionStarted {
        first_name: pick(FIRST_NAMES, n),
        last_name: (!n.is_multiple_of(3)).then(|| format!("Surname{}", n % 997)),
        username: (!n.is_multiple_of(4)).then(|| format!("user{n}")),
        language_code: Some(pick(LANGUAGES, n)),
        is_premium: n.is_multiple_of(10),
        photo_url: Some(format!("https://t.me/i/userpic/320/{n}.jpg")),
        allows_write_to_pm: true,
        // Some sessions come from a referral link.
        start_param: (rng.below(20) == 0)
            .then(|| format!("ref_{}", FIRST_USER_ID as u64 + rng.below(users.max(1)))),
        platform: Some(pick(PLATFORMS, rng.below(4))),
    }
}

/// Encodes every event with the codec (registering the schemas on first use).
pub(crate) async fn encode_all(codec: &Codec, events: &[Event]) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut payloads = Vec::with_capacity(events.len());
    for event in events {
        payloads.push(
            codec
                .encode(event)
                .await
                .context("Failed to encode an event")?,
        );
    }
    Ok(payloads)
}

/// Counts failed deliveries (the first error is kept to say why) and notes each partition's end
/// from the offsets the broker gave the delivered events.
#[derive(Default)]
struct Deliveries {
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
    ends: Mutex<BTreeMap<i32, i64>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => {
                let mut ends = self.ends.lock().expect("lock");
                let end = ends.entry(message.partition()).or_default();
                *end = (*end).max(message.offset() + 1);
            }
            Err((error, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().expect("lock");
                first.get_or_insert_with(|| error.to_string());
            }
        }
    }
}

/// Produces `payloads` (of `events`, same order) keyed by user id, as the write API does (the
/// user id in decimal, murmur2, acks=all, idempotent), with a longer linger and bigger batches
/// since nobody waits. Blocking: call from a blocking thread. Returns the seconds it took from
/// the first send to the last acknowledgement, and each partition's end offset as the
/// acknowledgements gave it.
pub(crate) fn produce(
    brokers: &str,
    topic: &str,
    events: &[Event],
    payloads: &[Vec<u8>],
) -> anyhow::Result<(f64, BTreeMap<i32, i64>)> {
    let producer: ThreadedProducer<Deliveries> = surge_kafka::idempotent_producer_config(brokers)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "500000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", "300000")
        .create_with_context(Deliveries::default())
        .context("Failed to create the producer")?;
    let type_names: Vec<(EventType, String)> =
        EventType::ALL.iter().map(|t| (*t, t.full_name())).collect();
    let started = Instant::now();
    for (event, payload) in events.iter().zip(payloads) {
        let key = event.envelope.user_id.to_string();
        let type_name = type_names
            .iter()
            .find(|(t, _)| *t == event.event_type())
            .map(|(_, name)| name.as_str())
            .expect("every type is listed");
        let headers = OwnedHeaders::new().insert(Header {
            key: headers::EVENT_TYPE,
            value: Some(type_name),
        });
        let mut record = BaseRecord::to(topic)
            .key(key.as_str())
            .payload(payload.as_slice())
            .headers(headers);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    // The producer's own thread drains the queue; give it a moment.
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((error, _)) => return Err(error).context("Failed to enqueue an event"),
            }
        }
    }
    producer
        .flush(Duration::from_secs(300))
        .context("Failed to flush the producer")?;
    let secs = started.elapsed().as_secs_f64();
    let deliveries = producer.context();
    let failed = deliveries.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = deliveries.first_error.lock().expect("lock").clone();
        bail!(
            "{failed} events were not delivered; first error: {}",
            first.unwrap_or_default()
        );
    }
    let ends = deliveries.ends.lock().expect("lock").clone();
    Ok((secs, ends))
}
