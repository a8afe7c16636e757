//! `GET /v1/me/live` through the real binaries: a ticket opens the caller's stream; each write
//! of theirs arrives as `me`, `feed` and `quests` events once the projections applied it, with an id that reads it back
//! as a consistency token; other users' writes never reach it, except as the caller's `rank`; a reconnect with Last-Event-ID
//! resumes; heartbeats keep an idle stream open past the server's idle timeout; tickets are
//! single-use, initData in a URL is refused, and streams are capped per user.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{init_data, json as body};
use crate::proxy::TcpProxy;
use crate::query::{Stack, get, stack, write};

const DEADLINE: Duration = Duration::from_secs(60);

/// One Server-Sent Event.
#[derive(Debug, Clone, Default)]
pub struct Sse {
    event: String,
    id: Option<String>,
    data: String,
}

/// A live stream being read, frame by frame.
pub struct Stream {
    response: reqwest::Response,
    buffer: String,
    /// Heartbeat comments seen.
    heartbeats: usize,
    /// Whose stream it is.
    user: i64,
    /// Events read while looking for another name, oldest first.
    set_aside: std::collections::VecDeque<Sse>,
}

/// Where a reconnect names the last event it saw: `EventSource` sends the header; a client that
/// needs a new ticket (they are single-use) passes `?last_event_id=`.
#[derive(Clone, Copy)]
pub enum Resume<'a> {
    Fresh,
    Header(&'a str),
    Query(&'a str),
}

impl Stream {
    pub async fn open(stack: &Stack, user: i64, resume: Resume<'_>) -> Stream {
        let ticket = ticket(stack, user).await;
        let mut path = format!("/v1/me/live?ticket={ticket}");
        if let Resume::Query(id) = resume {
            path.push_str(&format!("&last_event_id={id}"));
        }
        let mut request = stack.query.request("GET", &path);
        if let Resume::Header(id) = resume {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Stream {
            response,
            buffer: String::new(),
            heartbeats: 0,
            user,
            set_aside: Default::default(),
        }
    }

    /// A public stream (no user): the leaderboard's.
    async fn public(stack: &Stack, path: &str) -> Stream {
        let response = stack.query.request("GET", path).send().await.unwrap();
        assert_eq!(response.status(), 200);
        Stream {
            response,
            buffer: String::new(),
            heartbeats: 0,
            user: 0,
            set_aside: Default::default(),
        }
    }

    /// The next event (heartbeats counted, not returned).
    pub async fn next(&mut self) -> Sse {
        let started = Instant::now();
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let mut sse = Sse::default();
                let mut comment = true;
                for line in frame.lines().filter(|l| !l.is_empty()) {
                    if let Some(value) = line.strip_prefix("event:") {
                        sse.event = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("id:") {
                        sse.id = Some(value.trim().to_owned());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        sse.data.push_str(value.trim_start());
                    }
                    comment &= line.starts_with(':') || line.starts_with("retry:");
                }
                if comment {
                    self.heartbeats += 1;
                    continue;
                }
                return sse;
            }
            let left = DEADLINE.saturating_sub(started.elapsed());
            let chunk = tokio::time::timeout(left, self.response.chunk())
                .await
                .expect("an event within the deadline")
                .expect("the stream stays open")
                .expect("the stream does not end");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The first event named `name` whose data satisfies `wanted`, from those read and set
    /// aside before or from the stream; events of other names are set aside for later, and
    /// earlier ones of this name that do not match are dropped (a later state replaces them).
    pub async fn first(
        &mut self,
        name: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> (Value, Option<String>) {
        loop {
            let event = match self.set_aside.iter().position(|e| e.event == name) {
                Some(at) => self.set_aside.remove(at).unwrap(),
                None => {
                    let event = self.next().await;
                    if event.event != name {
                        self.set_aside.push_back(event);
                        continue;
                    }
                    event
                }
            };
            let data: Value = serde_json::from_str(&event.data).unwrap();
            if name == "me" {
                assert_eq!(
                    data["user_id"], self.user,
                    "another user's state on this stream"
                );
            }
            if wanted(&data) {
                return (data, event.id);
            }
        }
    }

    /// The first `feed` event whose newest item is of `kind`.
    async fn feed(&mut self, kind: &str) -> Value {
        self.first("feed", |feed| feed["items"][0]["type"] == kind)
            .await
            .0
    }

    /// The first `me` event whose balance is `balance`.
    async fn balance(&mut self, balance: i64) -> (Value, Option<String>) {
        self.first("me", |me| me["wallet"]["balance"] == balance)
            .await
    }
}

async fn ticket(stack: &Stack, user: i64) -> String {
    let response = stack
        .query
        .request("POST", "/v1/live/tickets")
        .header("authorization", format!("tma {}", init_data(user)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let answer = body(response).await;
    assert_eq!(answer["expires_in"], 60);
    answer["ticket"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_users_writes_arrive_live_readable_by_their_id_and_nobody_elses_do() {
    // A 4 s idle timeout: the 2 s heartbeats must keep idle streams open past it.
    let stack = stack(true, vec![("SURGE_HTTP_HEADER_TIMEOUT_MS", "4000".into())]).await;
    write(&stack, "POST", "/v1/sessions", 7, json!({})).await;
    write(&stack, "POST", "/v1/sessions", 8, json!({})).await;
    let mut seven = Stream::open(&stack, 7, Resume::Fresh).await;
    let mut eight = Stream::open(&stack, 8, Resume::Fresh).await;
    let first = seven.next().await;
    assert_eq!(first.event, "me");
    let me: Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(me["user_id"], 7);

    write(&stack, "POST", "/v1/taps", 7, json!({ "count": 3 })).await;
    let (me, id) = seven.balance(3).await;
    assert_eq!(me["wallet"]["latest"][0]["amount"], 3, "{me}");
    // The id is a consistency token: a read with it shows at least what the event showed.
    let id = id.expect("a change's event has an id");
    let read = get(&stack, "/v1/me", Some(7), Some(&id)).await;
    assert_eq!(read.status(), 200);
    assert_eq!(body(read).await["wallet"]["balance"], 3);

    // The feed follows: the tap's item, alone (the session's was sent on connect).
    let feed = seven.feed("taps").await;
    assert_eq!(feed["items"].as_array().unwrap().len(), 1, "{feed}");
    assert_eq!(feed["items"][0]["count"], 3);
    assert_eq!(feed["complete"], true);

    // So do the quests: the tap quest's progress.
    let tap_progress = |quests: &Value| {
        quests["quests"]
            .as_array()
            .and_then(|all| all.iter().find(|q| q["id"] == "tap_1000"))
            .map(|q| q["progress"].clone())
    };
    let (_, id) = seven
        .first("quests", |quests| tap_progress(quests) == Some(json!(3)))
        .await;
    assert!(id.is_some());

    // User 8's taps reach 8's stream only.
    write(&stack, "POST", "/v1/taps", 8, json!({ "count": 5 })).await;
    let (me, _) = eight.balance(5).await;
    assert_eq!(me["user_id"], 8);
    // Seven's rank moves when eight overtakes, without a write of seven's. Rank events carry
    // no id: they show the leaderboard when read, not a position a token could name.
    let (rank, id) = seven.first("rank", |rank| rank["daily"]["rank"] == 2).await;
    assert_eq!(rank["daily"]["score"], 3, "{rank}");
    assert_eq!(rank["all"]["rank"], 2, "{rank}");
    assert_eq!(rank["weekly"], json!({ "rank": 2, "score": 3 }));
    assert!(id.is_none(), "{id:?}");
    // Idle past the server's 4 s idle timeout: heartbeats keep the stream open.
    tokio::time::sleep(Duration::from_secs(5)).await;
    write(&stack, "POST", "/v1/taps", 7, json!({ "count": 2 })).await;
    let (me, last_id) = seven.balance(5).await;
    assert_eq!(me["user_id"], 7, "only 7's own state on 7's stream");
    assert!(seven.heartbeats >= 1, "{} heartbeats", seven.heartbeats);

    // A reconnect with Last-Event-ID starts from the state at or after that event.
    drop(seven);
    let last_id = last_id.unwrap();
    let mut again = Stream::open(&stack, 7, Resume::Header(&last_id)).await;
    let resumed = again.next().await;
    let me: Value = serde_json::from_str(&resumed.data).unwrap();
    assert_eq!(me["wallet"]["balance"], 5);
    assert_eq!(resumed.id.as_deref(), Some(last_id.as_str()));
    write(&stack, "POST", "/v1/taps", 7, json!({ "count": 1 })).await;
    let (_, last_id) = again.balance(6).await;

    // The same with a new ticket and the id in the URL, as the TypeScript client reconnects.
    let last_id = last_id.unwrap();
    let mut by_url = Stream::open(&stack, 7, Resume::Query(&last_id)).await;
    let resumed = by_url.next().await;
    let me: Value = serde_json::from_str(&resumed.data).unwrap();
    assert_eq!(me["wallet"]["balance"], 6);
    assert_eq!(resumed.id.as_deref(), Some(last_id.as_str()));

    let metrics = stack.query.metrics().await;
    assert!(
        metrics.contains("query_api_live_streams 3"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("live"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test]
async fn tickets_are_single_use_initdata_never_rides_in_a_url_and_streams_are_capped() {
    let stack = stack(true, vec![("SURGE_LIVE_MAX_STREAMS_PER_USER", "2".into())]).await;
    let refused = |path: String, authorization: Option<String>| {
        let mut request = stack.query.request("GET", &path);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send()
    };
    let cases = [
        ("/v1/me/live".to_owned(), None, 401, "missing_authorization"),
        (
            "/v1/me/live?ticket=nope".to_owned(),
            None,
            401,
            "invalid_ticket",
        ),
        (
            format!("/v1/me/live?ticket={}", "ab".repeat(24)),
            None,
            401,
            "ticket_expired",
        ),
        (
            format!("/v1/me/live?initData={}", init_data(7)),
            None,
            400,
            "init_data_in_url",
        ),
    ];
    for (path, authorization, status, code) in cases {
        let response = refused(path.clone(), authorization).await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        assert_eq!(body(response).await["error"]["code"], code, "{path}");
    }
    let no_initdata = stack
        .query
        .request("POST", "/v1/live/tickets")
        .send()
        .await
        .unwrap();
    assert_eq!(no_initdata.status(), 401);

    // A ticket opens one stream, once.
    let once = ticket(&stack, 7).await;
    let open = stack
        .query
        .request("GET", &format!("/v1/me/live?ticket={once}"))
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), 200);
    let reused = refused(format!("/v1/me/live?ticket={once}"), None)
        .await
        .unwrap();
    assert_eq!(reused.status(), 401);
    assert_eq!(body(reused).await["error"]["code"], "ticket_expired");

    // Clients that can send headers use initData there; a user's streams are capped.
    let header = Some(format!("tma {}", init_data(7)));
    let second = refused("/v1/me/live".to_owned(), header.clone())
        .await
        .unwrap();
    assert_eq!(second.status(), 200);
    let third = refused("/v1/me/live".to_owned(), header).await.unwrap();
    assert_eq!(third.status(), 429);
    assert_eq!(body(third).await["error"]["code"], "too_many_live_streams");
    drop(second);

    // A forged Last-Event-ID is refused, not trusted.
    let forged = stack
        .query
        .request(
            "GET",
            &format!("/v1/me/live?ticket={}", ticket(&stack, 8).await),
        )
        .header("last-event-id", "v1.forged")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    assert_eq!(body(forged).await["error"]["code"], "invalid_last_event_id");
    // In the URL too; and a refused resume spends no ticket.
    let kept = ticket(&stack, 8).await;
    let forged = stack
        .query
        .request(
            "GET",
            &format!("/v1/me/live?ticket={kept}&last_event_id=v2.forged"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    assert_eq!(body(forged).await["error"]["code"], "invalid_last_event_id");
    let still_valid = stack
        .query
        .request("GET", &format!("/v1/me/live?ticket={kept}"))
        .send()
        .await
        .unwrap();
    assert_eq!(still_valid.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_public_leaderboard_streams_its_top_at_most_once_a_second() {
    let stack = stack(true, vec![]).await;
    for (path, code) in [
        ("/v1/leaderboard/hourly/live", "invalid_period"),
        ("/v1/leaderboard/daily/live?limit=0", "invalid_limit"),
    ] {
        let response = stack.query.request("GET", path).send().await.unwrap();
        assert_eq!(response.status(), 400, "{path}");
        assert_eq!(body(response).await["error"]["code"], code, "{path}");
    }
    let mut board = Stream::public(&stack, "/v1/leaderboard/daily/live?limit=3").await;
    let first = board.next().await;
    assert_eq!(first.event, "top");
    // Twenty users tap in a burst, the 20th the most: without the throttle each tap would be
    // an event. With it, the stream sends at most one a second until it shows the final top.
    let started = Instant::now();
    for user in 1..=20 {
        write(
            &stack,
            "POST",
            "/v1/taps",
            50 + user,
            json!({ "count": user }),
        )
        .await;
    }
    let mut events = 0;
    loop {
        let event = board.next().await;
        events += 1;
        assert_eq!(event.event, "top");
        let top: Value = serde_json::from_str(&event.data).unwrap();
        let entries = top["entries"].as_array().unwrap();
        assert!(entries.len() <= 3, "{top}");
        let users: Vec<i64> = entries
            .iter()
            .map(|e| e["user_id"].as_i64().unwrap())
            .collect();
        if users == [70, 69, 68] {
            assert_eq!(entries[0]["score"], 20, "{top}");
            break;
        }
    }
    let seconds = started.elapsed().as_secs();
    assert!(
        events <= seconds + 2,
        "{events} events in {seconds} s: not throttled to one a second"
    );
}

#[tokio::test]
async fn a_leaderboard_change_reaches_its_stream_even_when_the_cached_top_predates_it() {
    // A cache that would serve the first top for an hour: the stream must still read past it
    // once the processors announce a change (it once showed the change only when the cache
    // expired, and a player's last taps never reached the others' screens).
    let stack = stack(true, vec![("SURGE_LEADERBOARD_CACHE_MS", "3600000".into())]).await;
    // A first player, applied before the stream opens, so its first top is the served version's.
    let token = write(&stack, "POST", "/v1/taps", 89, json!({ "count": 9 })).await;
    let read = get(&stack, "/v1/leaderboard/daily", None, Some(&token)).await;
    assert_eq!(read.status(), 200);
    let mut board = Stream::public(&stack, "/v1/leaderboard/daily/live").await;
    let first = board.next().await;
    let top: Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(top["entries"][0]["user_id"], 89, "{top}");
    write(&stack, "POST", "/v1/taps", 90, json!({ "count": 7 })).await;
    let changed = board.next().await;
    let top: Value = serde_json::from_str(&changed.data).unwrap();
    assert_eq!(top["entries"][1]["user_id"], 90, "{top}");
    assert_eq!(top["entries"][1]["score"], 7, "{top}");
}

// Multi-threaded: the proxy must keep serving while `start` blocks this thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_while_the_query_apis_redis_was_down_arrives_once_it_is_back() {
    let mut redis = TcpProxy::start("127.0.0.1:6379").await;
    let stack = stack(
        true,
        vec![
            (
                "SURGE_REDIS_URL",
                format!("redis://127.0.0.1:{}", redis.port),
            ),
            // Production's bound: what "fast" means below.
            ("SURGE_QUERY_STORE_TIMEOUT_MS", "1000".into()),
        ],
    )
    .await;
    write(&stack, "POST", "/v1/sessions", 41, json!({})).await;
    let mut stream = Stream::open(&stack, 41, Resume::Fresh).await;
    stream.next().await;

    // The query API loses Redis: no ticket can be issued, and the processors' notice of the
    // next tap (published on the real Redis) never reaches the query API.
    redis.cut();
    let asked = Instant::now();
    let refused = stack
        .query
        .request("POST", "/v1/live/tickets")
        .header("authorization", format!("tma {}", init_data(41)))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "the refusal took {:?}: the ticket store's wait is not bounded",
        asked.elapsed()
    );
    assert_eq!(body(refused).await["error"]["code"], "store_unavailable");
    let token = write(&stack, "POST", "/v1/taps", 41, json!({ "count": 4 })).await;
    let applied = get(&stack, "/v1/me", Some(41), Some(&token)).await;
    assert_eq!(body(applied).await["wallet"]["balance"], 4);

    // Back: the hub reconnects and every stream reads again, so the missed change arrives.
    redis.restore().await;
    let (me, id) = stream.balance(4).await;
    assert_eq!(me["user_id"], 41);
    // Read because of the reconnect, not a notice: its id is the last position the hub knew
    // (the session's), not the tap's, whose notice was lost.
    assert_ne!(id, Some(token), "the tap's notice was not lost");
}

/// The query API's resident memory, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Streams one query API holds (`SURGE_BENCH_STREAMS`, default 10,000) and the memory each
/// costs, then the latency from a write's request to its event on the writer's stream, for
/// `SURGE_BENCH_LIVE_WRITES` writes (default 500) at `SURGE_BENCH_LIVE_RATE` per second (default
/// 100) while every stream stays open, against the same writes each read back with its
/// consistency token (a polling client's freshness). Prints figures and ratios; asserts only
/// that everything arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: run by hand, see the README"]
async fn live_benchmark_streams_held_and_write_to_event_latency() {
    let setting = |name: &str, default: usize| -> usize {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let streams = setting("SURGE_BENCH_STREAMS", 10_000);
    let writes = setting("SURGE_BENCH_LIVE_WRITES", 500).min(streams);
    let rate = setting("SURGE_BENCH_LIVE_RATE", 100).max(1);
    let capacity = (streams + 100).to_string();
    let stack = stack(
        true,
        vec![
            ("SURGE_LIVE_MAX_STREAMS", capacity.clone()),
            ("SURGE_HTTP_MAX_CONNECTIONS", capacity),
            ("SURGE_QUERY_STORE_TIMEOUT_MS", "10000".into()),
        ],
    )
    .await;
    let pid = stack.query.pid();
    let before = rss_bytes(pid);
    let opened = Instant::now();
    let users: Vec<i64> = (1..=streams as i64).map(|u| 1_000_000 + u).collect();
    let open: Vec<Stream> = futures::stream::iter(users.iter().copied())
        .map(|user| {
            let stack = &stack;
            async move {
                let response = stack
                    .query
                    .request("GET", "/v1/me/live")
                    .header("authorization", format!("tma {}", init_data(user)))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                let mut stream = Stream {
                    response,
                    buffer: String::new(),
                    heartbeats: 0,
                    user,
                    set_aside: Default::default(),
                };
                stream.next().await;
                stream
            }
        })
        .buffer_unordered(100)
        .collect()
        .await;
    let took = opened.elapsed();
    let held = rss_bytes(pid);
    let per_stream = held.saturating_sub(before) as f64 / streams as f64;
    eprintln!(
        "{streams} streams opened in {took:.1?} ({:.0}/s); query API RSS {:.1} MiB before, {:.1} MiB \
         holding them: {:.1} KiB per stream",
        streams as f64 / took.as_secs_f64(),
        before as f64 / 1048576.0,
        held as f64 / 1048576.0,
        per_stream / 1024.0
    );

    // Writes at a fixed pace, each timed from its request to its event on its stream.
    let mut by_user: std::collections::HashMap<i64, Stream> =
        open.into_iter().map(|s| (s.user, s)).collect();
    let mut tasks = tokio::task::JoinSet::new();
    let gap = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now();
    for (n, user) in users.iter().copied().take(writes).enumerate() {
        let mut stream = by_user.remove(&user).unwrap();
        let writer_url = stack.writer.url.clone();
        let http = stack.writer.http.clone();
        tokio::time::sleep_until(start + gap * n as u32).await;
        tasks.spawn(async move {
            let sent = Instant::now();
            let response = http
                .post(format!("{writer_url}/v1/taps"))
                .header("authorization", format!("tma {}", init_data(user)))
                .json(&json!({ "count": 1 }))
                .send()
                .await
                .unwrap();
            let status = response.status();
            assert_eq!(status, 202, "{}", response.text().await.unwrap_or_default());
            stream.balance(1).await;
            (sent.elapsed(), stream)
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (latency, stream) = done.unwrap();
        latencies.push(latency);
        by_user.insert(stream.user, stream);
    }
    latencies.sort();
    // The baseline, same run, same pace, streams still open: what a client that polls with
    // read-your-writes gets, from a write's request to its token read answering.
    let mut reads = tokio::task::JoinSet::new();
    let start = tokio::time::Instant::now();
    for n in 0..writes {
        let user = 2_000_000 + n as i64;
        let writer_url = stack.writer.url.clone();
        let query_url = stack.query.url.clone();
        let http = stack.writer.http.clone();
        tokio::time::sleep_until(start + gap * n as u32).await;
        reads.spawn(async move {
            let sent = Instant::now();
            let auth = format!("tma {}", init_data(user));
            let response = http
                .post(format!("{writer_url}/v1/taps"))
                .header("authorization", &auth)
                .json(&json!({ "count": 1 }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 202);
            let token = response.headers()["x-consistency-token"].clone();
            let read = http
                .get(format!("{query_url}/v1/me"))
                .header("authorization", &auth)
                .header("x-consistency-token", token)
                .send()
                .await
                .unwrap();
            assert_eq!(read.status(), 200);
            sent.elapsed()
        });
    }
    let mut baseline = Vec::new();
    while let Some(done) = reads.join_next().await {
        baseline.push(done.unwrap());
    }
    baseline.sort();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    let (b50, b99) = (percentile(&baseline, 0.5), percentile(&baseline, 0.99));
    eprintln!(
        "write -> SSE event over {writes} writes at {rate}/s with {streams} streams open: p50 {p50:.1?}, \
         p99 {p99:.1?}, max {:.1?}; write -> read with its token (baseline): p50 {b50:.1?}, p99 \
         {b99:.1?}; ratios {:.2} (p50), {:.2} (p99); query API RSS after {:.1} MiB",
        latencies.last().unwrap(),
        p50.as_secs_f64() / b50.as_secs_f64(),
        p99.as_secs_f64() / b99.as_secs_f64(),
        rss_bytes(pid) as f64 / 1048576.0
    );
    assert_eq!(by_user.len(), streams);
}
