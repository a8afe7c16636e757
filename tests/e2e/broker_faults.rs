//! The real broker killed (SIGKILL) or paused (SIGSTOP) past the produce timeout under a steady
//! write load, then brought back on the same log directory. Every write that got a 202 is on
//! the topic; no 202 is given while the broker cannot acknowledge; every other answer is a
//! prompt 503 with Retry-After; the write API and the processors recover by themselves.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::Message;
use serde_json::json;

use crate::broker_process::BrokerProcess;
use crate::fold::fold_topic;
use crate::helpers::{Options, TestApp, json, start, unique_id};
use crate::projected::{assert_projections_equal_fold, wait_caught_up};

const PRODUCE_TIMEOUT: Duration = Duration::from_millis(2000);
const DEADLINE: Duration = Duration::from_secs(120);
/// How long answers may take at most while the broker is away: librdkafka's message timeout,
/// the API's outer bound (twice it) and slack for a loaded machine. A hang check, not a speed goal.
const ANSWER_BOUND: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_broker_killed_under_writes_and_restarted_loses_no_acknowledged_event() {
    broker_outage("KILL").await;
}

#[tokio::test]
async fn a_broker_paused_past_the_produce_timeout_gives_no_202_until_it_answers_again() {
    broker_outage("STOP").await;
}

struct Answer {
    sent: Instant,
    answered: Instant,
    status: u16,
    retry_after: bool,
    event_id: Option<String>,
}

type Answers = Arc<Mutex<Vec<Answer>>>;

async fn broker_outage(signal: &str) {
    let broker = BrokerProcess::start();
    let id = unique_id();
    let on_broker = |role: Option<&'static str>| Options {
        brokers: Some(broker.brokers.clone()),
        role,
        env: vec![
            (
                "SURGE_PRODUCE_TIMEOUT_MS",
                PRODUCE_TIMEOUT.as_millis().to_string(),
            ),
            ("SURGE_PROCESS_SESSION_TIMEOUT_MS", "6000".into()),
        ],
    };
    let writer = start(&id, on_broker(None)).expect("write API starts");
    let processor = start(&id, on_broker(Some("process"))).expect("processors start");

    let answers: Answers = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|worker| {
            tokio::spawn(steady_writes(
                writer_handle(&writer),
                worker,
                answers.clone(),
                stop.clone(),
            ))
        })
        .collect();

    wait_for(&answers, "50 acknowledged writes before the outage", |a| {
        count_202(a, None) >= 50
    })
    .await;
    let down = Instant::now();
    broker.signal(signal);
    // Keep the broker away longer than the produce timeout, until writes sent since have been
    // refused.
    wait_for(&answers, "refused writes during the outage", |a| {
        down.elapsed() > PRODUCE_TIMEOUT * 3
            && a.iter()
                .filter(|x| x.sent >= down && x.status == 503)
                .count()
                >= 4
    })
    .await;
    let up = Instant::now();
    if signal == "STOP" {
        broker.signal("CONT");
    } else {
        broker.restart();
    }
    wait_for(&answers, "50 acknowledged writes after the outage", |a| {
        count_202(a, Some(up)) >= 50
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for worker in load {
        worker.await.unwrap();
    }
    let answers = std::mem::take(&mut *answers.lock().unwrap());

    for answer in &answers {
        assert!(
            matches!(answer.status, 202 | 503),
            "only 202 or 503 expected, got {}",
            answer.status
        );
        if answer.status == 503 {
            assert!(answer.retry_after, "a 503 without Retry-After");
        }
        assert!(
            answer.answered - answer.sent < ANSWER_BOUND,
            "an answer took {:?}",
            answer.answered - answer.sent
        );
        assert!(
            !(answer.status == 202 && answer.sent >= down && answer.answered < up),
            "a 202 sent {:?} after the broker went away and answered before it was back",
            answer.sent - down
        );
    }

    // Every acknowledged event is on the topic.
    let acknowledged: BTreeSet<String> =
        answers.iter().filter_map(|a| a.event_id.clone()).collect();
    let (codec, _registry) = writer.codec().await;
    let mut on_topic = BTreeSet::new();
    for record in writer.read_all() {
        let event = codec
            .decode(record.payload().unwrap_or_default())
            .await
            .expect("every record decodes");
        on_topic.insert(event.envelope.event_id.to_string());
    }
    let missing: Vec<_> = acknowledged.difference(&on_topic).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not on the topic: {missing:?}"
    );

    // The processors recovered by themselves.
    wait_caught_up(&writer, &[&processor]).await;
    let expected = fold_topic(&writer, writer.record_count() as usize).await;
    assert_projections_equal_fold(&writer, &expected).await;
}

/// What a load worker needs of the app: its URL and HTTP client.
fn writer_handle(app: &TestApp) -> (String, reqwest::Client) {
    (app.url.clone(), app.http.clone())
}

/// One worker's writes, back to back, as users `worker*50 ..` in turn, until `stop`.
async fn steady_writes(
    (url, http): (String, reqwest::Client),
    worker: i64,
    answers: Answers,
    stop: Arc<AtomicBool>,
) {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let user = 1 + worker * 50 + n % 50;
        n += 1;
        let sent = Instant::now();
        let response = http
            .post(format!("{url}/v1/taps"))
            .header(
                "authorization",
                format!("tma {}", crate::helpers::init_data(user)),
            )
            .json(&json!({ "count": 1 }))
            .send()
            .await
            .expect("the write API answers");
        let status = response.status().as_u16();
        let retry_after = response.headers().contains_key("retry-after");
        let event_id = if status == 202 {
            json(response).await["event_id"].as_str().map(str::to_owned)
        } else {
            None
        };
        answers.lock().unwrap().push(Answer {
            sent,
            answered: Instant::now(),
            status,
            retry_after,
            event_id,
        });
        if status == 503 {
            tokio::time::sleep(Duration::from_millis(100)).await; // as Retry-After asks, briefly
        }
    }
}

fn count_202(answers: &[Answer], since: Option<Instant>) -> usize {
    answers
        .iter()
        .filter(|a| a.status == 202 && since.is_none_or(|s| a.sent >= s))
        .count()
}

async fn wait_for(answers: &Answers, what: &str, done: impl Fn(&[Answer]) -> bool) {
    let started = Instant::now();
    loop {
        {
            let answers = answers.lock().unwrap();
            if done(&answers) {
                return;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "no {what} within {DEADLINE:?}; statuses so far: {:?}",
                answers.iter().map(|a| a.status).collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
