//! The query API through its real HTTP server, over projections the real processors built from
//! the real broker: every endpoint, read-your-writes, timeouts, caching, cross-user denial and a
//! store going down.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{
    BOT_TOKEN, Options, TestApp, consistency_token, init_data, json as body, spawn_app_with,
    started,
};
use crate::proxy::TcpProxy;

pub struct Stack {
    pub writer: TestApp,
    pub processor: Option<TestApp>,
    pub query: TestApp,
}

/// Write API (with a generous per-user rate and tap energy: these tests load the pipeline, not
/// the economy, which `energy.rs` tests), processors (unless `processors` is false) and query
/// API of one test, with `query_env` for the query API.
pub async fn stack(processors: bool, query_env: Vec<(&'static str, String)>) -> Stack {
    stack_with(Vec::new(), processors, query_env).await
}

/// [`stack`] with `every_role` added to the environment of all three roles.
pub async fn stack_with(
    every_role: Vec<(&'static str, String)>,
    processors: bool,
    query_env: Vec<(&'static str, String)>,
) -> Stack {
    let writer = spawn_app_with(Options {
        env: [
            vec![
                ("SURGE_USER_RATE_PER_SEC", "1000".into()),
                ("SURGE_USER_BURST", "1000".into()),
                ("SURGE_TAP_ENERGY_CAPACITY", "1000000000".into()),
                ("SURGE_TAP_ENERGY_REFILL_PER_SEC", "1000000".into()),
            ],
            every_role.clone(),
        ]
        .concat(),
        ..Options::default()
    })
    .await;
    let processor = processors.then(|| {
        started(
            &writer.id,
            Options {
                role: Some("process"),
                env: [
                    vec![
                        ("SURGE_PROCESS_BATCH_WAIT_MS", "5".into()),
                        ("SURGE_PROCESS_FETCH_WAIT_MS", "20".into()),
                    ],
                    every_role.clone(),
                ]
                .concat(),
                ..Options::default()
            },
        )
    });
    let query = started(
        &writer.id,
        Options {
            role: Some("query-api"),
            env: [
                // A busy machine can take longer than production's 2 s for the processors'
                // first assignment; a read still answers as soon as its write is applied.
                vec![("SURGE_CONSISTENCY_WAIT_MS", "10000".into())],
                every_role,
                query_env,
            ]
            .concat(),
            ..Options::default()
        },
    );
    Stack {
        writer,
        processor,
        query,
    }
}

fn tma(user: i64) -> String {
    format!("tma {}", init_data(user))
}

/// A write's consistency token, from the header the query API reads.
pub async fn write(stack: &Stack, method: &str, path: &str, user: i64, payload: Value) -> String {
    let response = stack.writer.write(method, path, user, payload).await;
    assert_eq!(response.status(), 202);
    consistency_token(&response)
}

/// `count` taps of `user`: the write's consistency token and event id.
pub async fn tap(stack: &Stack, user: i64, count: i64) -> (String, String) {
    let response = stack
        .writer
        .write("POST", "/v1/taps", user, json!({ "count": count }))
        .await;
    assert_eq!(response.status(), 202);
    let token = consistency_token(&response);
    let event_id = body(response).await["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (token, event_id)
}

pub async fn get(
    stack: &Stack,
    path: &str,
    user: Option<i64>,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = stack.query.request("GET", path);
    if let Some(user) = user {
        request = request.header("authorization", tma(user));
    }
    if let Some(token) = token {
        request = request.header("x-consistency-token", token);
    }
    request.send().await.expect("the query API answers")
}

pub async fn ok(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn every_endpoint_serves_what_the_processors_built() {
    let stack = stack(true, vec![]).await;
    write(&stack, "POST", "/v1/sessions", 1, json!({})).await;
    write(&stack, "POST", "/v1/sessions", 2, json!({})).await;
    write(&stack, "POST", "/v1/taps", 1, json!({ "count": 30 })).await;
    write(&stack, "POST", "/v1/taps", 2, json!({ "count": 5 })).await;
    write(
        &stack,
        "PATCH",
        "/v1/profile",
        1,
        json!({ "display_name": "One" }),
    )
    .await;
    let token = write(&stack, "POST", "/v1/checkins", 1, json!({})).await;

    let me = ok(get(&stack, "/v1/me", Some(1), Some(&token)).await).await;
    assert_eq!(me["user_id"], 1);
    assert_eq!(me["profile"]["display_name"], "One");
    assert_eq!(me["profile"]["username"], "user1");
    assert_eq!(me["profile"]["sessions_count"], 1);
    assert_eq!(
        me["wallet"]["balance"],
        30 + 100,
        "30 taps and the first check-in bonus"
    );
    assert_eq!(me["wallet"]["entries"], 2);
    assert_eq!(me["wallet"]["latest"][0]["kind"], "checkin");
    assert_eq!(me["wallet"]["latest"][1]["amount"], 30);
    assert_eq!(me["streak"]["current"], 1);

    let feed = ok(get(&stack, "/v1/me/feed?limit=2", Some(1), Some(&token)).await).await;
    let types: Vec<&str> = feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["checkin", "profile"], "newest first");
    let cursor = feed["next_cursor"].as_str().expect("a next page");
    let rest = ok(get(
        &stack,
        &format!("/v1/me/feed?limit=10&cursor={cursor}"),
        Some(1),
        None,
    )
    .await)
    .await;
    let types: Vec<&str> = rest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["taps", "session"]);
    assert!(rest["next_cursor"].is_null());

    for period in ["all", "daily", "weekly"] {
        let path = format!("/v1/leaderboard/{period}");
        let board = ok(get(&stack, &path, Some(2), Some(&token)).await).await;
        let entries = board["entries"].as_array().unwrap();
        assert_eq!(entries[0]["user_id"], 1, "{period}");
        assert_eq!(entries[0]["score"], 130);
        assert_eq!(entries[0]["name"], "One");
        assert_eq!(entries[1]["user_id"], 2);
        assert_eq!(board["me"]["rank"], 2, "the caller's own rank");
        assert_eq!(board["me"]["score"], 5);
    }
    let anonymous = get(&stack, "/v1/leaderboard/daily?limit=1", None, None).await;
    assert_eq!(
        anonymous.headers()["cache-control"],
        "public, max-age=5, stale-while-revalidate=10"
    );
    let anonymous = ok(anonymous).await;
    assert_eq!(anonymous["entries"].as_array().unwrap().len(), 1);
    assert!(anonymous.get("me").is_none());

    let card = ok(get(&stack, "/v1/users/1", Some(2), None).await).await;
    assert_eq!(card["name"], "One");
    assert_eq!(card["streak"]["current"], 1);

    for (path, status, code) in [
        ("/v1/users/999999", 404, "user_not_found"),
        ("/v1/users/abc", 400, "invalid_user_id"),
        ("/v1/leaderboard/monthly", 400, "invalid_period"),
        ("/v1/leaderboard/all?limit=0", 400, "invalid_limit"),
        ("/v1/me/feed?limit=500", 400, "invalid_limit"),
        ("/v1/me/feed?cursor=not-a-cursor", 400, "invalid_cursor"),
        // One of two values is not picked silently, whichever an upstream cache would keep.
        ("/v1/me/feed?limit=5&limit=6", 400, "repeated_parameter"),
        (
            "/v1/leaderboard/all?limit=1&x=1&limit=1000",
            400,
            "repeated_parameter",
        ),
        ("/v1/nothing", 404, "not_found"),
    ] {
        let response = get(&stack, path, Some(1), None).await;
        assert_eq!(response.status(), status, "{path}");
        assert_eq!(body(response).await["error"]["code"], code, "{path}");
    }
}

#[tokio::test]
async fn read_your_writes_holds_for_hundreds_of_iterations() {
    let stack = stack(true, vec![]).await;
    let mut feed_failures = 0;
    for i in 1..=300_i64 {
        let user = 100 + i % 3; // several users, so partitions differ
        let (token, event_id) = tap(&stack, user, 1).await;
        let expected = (i - 1) / 3 + 1; // this user's taps so far, one coin each
        let me = ok(get(&stack, "/v1/me", Some(user), Some(&token)).await).await;
        assert_eq!(me["wallet"]["balance"], expected, "iteration {i}: /v1/me");
        let feed = ok(get(&stack, "/v1/me/feed?limit=1", Some(user), Some(&token)).await).await;
        if feed["items"][0]["event_id"] != event_id.as_str() {
            feed_failures += 1;
        }
        let board = ok(get(&stack, "/v1/leaderboard/all", Some(user), Some(&token)).await).await;
        assert_eq!(board["me"]["score"], expected, "iteration {i}: leaderboard");
    }
    assert_eq!(
        feed_failures, 0,
        "the feed showed the write's own item every time"
    );
}

#[tokio::test]
async fn a_projection_that_has_not_caught_up_answers_504_consistency_timeout() {
    // No processors: nothing will ever apply the write.
    // Long enough that a refusal answered before it (below) cannot have waited, even on a
    // loaded machine.
    const WAIT: Duration = Duration::from_secs(2);
    let stack = stack(
        false,
        vec![("SURGE_CONSISTENCY_WAIT_MS", WAIT.as_millis().to_string())],
    )
    .await;
    let token = write(&stack, "POST", "/v1/taps", 7, json!({ "count": 3 })).await;
    for path in [
        "/v1/me",
        "/v1/me/feed",
        "/v1/leaderboard/all",
        "/v1/users/7",
    ] {
        let started = Instant::now();
        let response = get(&stack, path, Some(7), Some(&token)).await;
        assert_eq!(response.status(), 504, "{path}");
        assert!(started.elapsed() >= WAIT, "{path} waited the bound");
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(body(response).await["error"]["code"], "consistency_timeout");
    }
    // Without the token the (stale) projection is served: the client did not ask to wait.
    let me = ok(get(&stack, "/v1/me", Some(7), None).await).await;
    assert_eq!(me["wallet"]["balance"], 0);

    // Tokens this deployment did not sign are refused at once, never waited on.
    let keys = surge_schemas::TokenKeys::new(None, crate::helpers::BOT_TOKEN);
    let at = |topic: &str, partition: i32, offset: i64| surge_schemas::Position {
        topic: topic.into(),
        partition,
        offset,
    };
    let real = keys.sign(&at(&stack.writer.topic, 0, 1));
    let (_, real_tag) = real.rsplit_once('.').unwrap();
    let far = keys.sign(&at(&stack.writer.topic, 0, 1_000_000_000));
    let (far_body, _) = far.rsplit_once('.').unwrap();
    let other_deployment = surge_schemas::TokenKeys::new(Some("another secret"), "x");
    for (bad, why) in [
        (
            "garbage".to_owned(),
            "not a token returned by the write API",
        ),
        ("v1.!!!".to_owned(), "is not signed"),
        (at(&stack.writer.topic, 0, 1).to_string(), "is not signed"),
        (
            format!("{far_body}.{real_tag}"),
            "signature this deployment did not make",
        ),
        (
            other_deployment.sign(&at(&stack.writer.topic, 99, 1)),
            "signature this deployment did not make",
        ),
        (keys.sign(&at("elsewhere", 0, 1)), "another deployment"),
    ] {
        let started = Instant::now();
        let response = get(&stack, "/v1/me", Some(7), Some(&bad)).await;
        assert_eq!(response.status(), 400, "{bad}");
        assert!(started.elapsed() < WAIT, "refused without waiting");
        let error = body(response).await["error"].clone();
        assert_eq!(error["code"], "invalid_consistency_token");
        assert!(error["message"].as_str().unwrap().contains(why), "{error}");
    }
}

/// Reads waiting on a token are bounded: past `SURGE_QUERY_MAX_WAITERS` they are refused at
/// once with 503 and Retry-After instead of holding a task each.
#[tokio::test]
async fn reads_waiting_past_the_bound_get_503_at_once() {
    let stack = stack(
        false,
        vec![
            ("SURGE_CONSISTENCY_WAIT_MS", "5000".into()),
            ("SURGE_QUERY_MAX_WAITERS", "1".into()),
        ],
    )
    .await;
    // No processor runs, so the write is never applied and a read with its token waits.
    let token = write(&stack, "POST", "/v1/taps", 8, json!({ "count": 1 })).await;
    let reads = (0..5).map(|_| async {
        let started = Instant::now();
        let response = get(&stack, "/v1/me", Some(8), Some(&token)).await;
        let status = response.status().as_u16();
        let retry_after = response.headers().contains_key("retry-after");
        let code = body(response).await["error"]["code"].clone();
        (status, code, retry_after, started.elapsed())
    });
    let answers = futures::future::join_all(reads).await;
    let waited: Vec<_> = answers.iter().filter(|a| a.0 == 504).collect();
    let refused: Vec<_> = answers.iter().filter(|a| a.0 == 503).collect();
    assert_eq!((waited.len(), refused.len()), (1, 4), "{answers:?}");
    for (_, code, retry_after, took) in refused {
        assert_eq!(code, "too_many_waiters");
        assert!(retry_after);
        assert!(
            *took < Duration::from_secs(5),
            "refused before the wait bound: {took:?}"
        );
    }
}

/// One caller cannot take every waiting place: past `SURGE_QUERY_MAX_WAITERS_PER_USER` its
/// reads are refused at once, and the places it could not take are left to other users.
#[tokio::test]
async fn one_user_past_its_waiter_bound_is_refused_while_others_wait() {
    use futures::StreamExt;
    let stack = stack(
        false,
        vec![
            ("SURGE_CONSISTENCY_WAIT_MS", "3000".into()),
            ("SURGE_QUERY_MAX_WAITERS", "3".into()),
            ("SURGE_QUERY_MAX_WAITERS_PER_USER", "2".into()),
        ],
    )
    .await;
    // No processor runs, so no write is applied and every read with a token waits.
    let mine = write(&stack, "POST", "/v1/taps", 12, json!({ "count": 1 })).await;
    let theirs = write(&stack, "POST", "/v1/taps", 13, json!({ "count": 1 })).await;
    let read = |user, token: String| {
        let stack = &stack;
        async move {
            let started = Instant::now();
            let response = get(stack, "/v1/me", Some(user), Some(&token)).await;
            let status = response.status().as_u16();
            let code = body(response).await["error"]["code"].clone();
            (status, code, started.elapsed())
        }
    };
    let mut flood: futures::stream::FuturesUnordered<_> =
        (0..6).map(|_| read(12, mine.clone())).collect();
    // Four answers come back at once: user 12 holds its two places and is refused the rest.
    for _ in 0..4 {
        let (status, code, took) = flood.next().await.unwrap();
        assert_eq!((status, code.as_str()), (503, Some("too_many_waiters")));
        assert!(took < Duration::from_secs(3), "refused at once: {took:?}");
    }
    // The instance's third place is still free for user 13, whose read waits its whole bound.
    let (held, other) = tokio::join!(flood.collect::<Vec<_>>(), read(13, theirs));
    assert!(held.iter().all(|answer| answer.0 == 504), "{held:?}");
    assert_eq!(other.0, 504, "user 13 got a place: {other:?}");
}

#[tokio::test]
async fn an_unchanged_view_revalidates_with_304_and_a_change_gives_a_new_etag() {
    let stack = stack(true, vec![]).await;
    let token = write(&stack, "POST", "/v1/taps", 11, json!({ "count": 4 })).await;
    let first = get(&stack, "/v1/me", Some(11), Some(&token)).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["cache-control"], "private, no-cache");
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let again = stack
        .query
        .request("GET", "/v1/me")
        .header("authorization", tma(11))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag.as_str());
    assert!(again.bytes().await.unwrap().is_empty());

    let token = write(&stack, "POST", "/v1/taps", 11, json!({ "count": 1 })).await;
    let changed = stack
        .query
        .request("GET", "/v1/me")
        .header("authorization", tma(11))
        .header("if-none-match", &etag)
        .header("x-consistency-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"], etag.as_str());

    // Large bodies are compressed for clients that accept it.
    for n in 0..30 {
        write(&stack, "POST", "/v1/taps", 11, json!({ "count": 1 + n })).await;
    }
    let token = write(&stack, "POST", "/v1/taps", 11, json!({ "count": 1 })).await;
    let compressed = stack
        .query
        .request("GET", "/v1/me/feed?limit=30")
        .header("authorization", tma(11))
        .header("accept-encoding", "gzip")
        .header("x-consistency-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(compressed.status(), 200);
    assert_eq!(compressed.headers()["content-encoding"], "gzip");
}

#[tokio::test]
async fn nobody_reads_another_users_private_data() {
    let stack = stack(true, vec![]).await;
    write(&stack, "POST", "/v1/sessions", 21, json!({})).await;
    write(
        &stack,
        "PATCH",
        "/v1/profile",
        21,
        json!({ "display_name": "Alice", "language_code": "de" }),
    )
    .await;
    let token = write(&stack, "POST", "/v1/taps", 21, json!({ "count": 9 })).await;
    let alice_feed = ok(get(&stack, "/v1/me/feed?limit=1", Some(21), Some(&token)).await).await;
    let alice_cursor = alice_feed["next_cursor"].as_str().unwrap().to_owned();

    // Bob (22) asks for Alice's data every way the API could be asked.
    for path in ["/v1/me", "/v1/me?user_id=21", "/v1/me/feed?user_id=21"] {
        let view = ok(get(&stack, path, Some(22), Some(&token)).await).await;
        let text = view.to_string();
        assert!(
            !text.contains("Alice") && !text.contains("user21"),
            "{path}: {text}"
        );
        if path.starts_with("/v1/me/feed") {
            assert_eq!(view["items"], json!([]));
        } else {
            assert_eq!(view["user_id"], 22);
            assert_eq!(view["wallet"]["balance"], 0);
        }
    }
    let feed = ok(get(
        &stack,
        &format!("/v1/me/feed?cursor={alice_cursor}"),
        Some(22),
        None,
    )
    .await)
    .await;
    assert_eq!(
        feed["items"],
        json!([]),
        "Alice's cursor pages Bob's own feed"
    );
    let board = ok(get(&stack, "/v1/leaderboard/all", Some(22), None).await).await;
    assert!(board["me"].is_null(), "me is always the caller");
    let card = ok(get(&stack, "/v1/users/21", Some(22), None).await).await;
    assert_eq!(card["name"], "Alice");
    for private in [
        "language_code",
        "referred_by",
        "sessions_count",
        "last_seen_at",
        "wallet",
        "profile",
    ] {
        assert!(
            card.get(private).is_none(),
            "{private} is not on the public card"
        );
    }

    // Without initData, or with initData signed by another bot, nothing private is served.
    let forged = surge_telegram_auth::InitDataBuilder::new(
        surge_telegram_auth::WebAppUser {
            id: 21,
            first_name: "A".into(),
            last_name: None,
            username: None,
            language_code: None,
            is_premium: false,
            is_bot: false,
            photo_url: None,
            allows_write_to_pm: false,
        },
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    )
    .sign(&BOT_TOKEN.replace("42", "43"));
    for path in ["/v1/me", "/v1/me/feed", "/v1/users/21"] {
        let anonymous = get(&stack, path, None, None).await;
        assert_eq!(anonymous.status(), 401, "{path}");
        let response = stack
            .query
            .request("GET", path)
            .header("authorization", format!("tma {forged}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path}");
        assert_eq!(body(response).await["error"]["code"], "invalid_hash");
    }
    let response = stack
        .query
        .request("GET", "/v1/leaderboard/all")
        .header("authorization", format!("tma {forged}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "a bad signature is never read as anonymous"
    );
}

// Multi-threaded: the proxies must keep serving while `start` blocks this thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_down_answers_503_fast_and_ready_names_it() {
    let postgres = TcpProxy::start("127.0.0.1:5432").await;
    let redis = TcpProxy::start("127.0.0.1:6379").await;
    let stack = stack(
        true,
        vec![
            (
                "SURGE_DATABASE_URL",
                format!("postgres://postgres@127.0.0.1:{}/surge_test", postgres.port),
            ),
            (
                "SURGE_REDIS_URL",
                format!("redis://127.0.0.1:{}", redis.port),
            ),
            // Production's bound: what "fast" means below.
            ("SURGE_QUERY_STORE_TIMEOUT_MS", "1000".into()),
        ],
    )
    .await;
    let token = write(&stack, "POST", "/v1/taps", 31, json!({ "count": 2 })).await;
    ok(get(&stack, "/v1/me", Some(31), Some(&token)).await).await;
    ok(get(&stack, "/v1/me/feed", Some(31), Some(&token)).await).await;

    redis.cut();
    for path in ["/v1/me/feed", "/v1/leaderboard/daily"] {
        let started = Instant::now();
        let response = get(&stack, path, Some(31), None).await;
        assert_eq!(response.status(), 503, "{path}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{path} failed fast"
        );
        assert_eq!(response.headers()["retry-after"], "1");
        let text = response.text().await.unwrap().to_lowercase();
        assert!(text.contains("store_unavailable"), "{text}");
        assert!(
            !text.contains("redis") && !text.contains("6379"),
            "names no internals: {text}"
        );
    }
    let me = get(&stack, "/v1/me", Some(31), None).await;
    assert_eq!(me.status(), 200, "PostgreSQL views still serve");
    let ready = get(&stack, "/health/ready", None, None).await;
    assert_eq!(ready.status(), 503);
    assert_eq!(
        body(ready).await["checks"],
        json!({ "postgres": "up", "redis": "down" })
    );

    postgres.cut();
    let started = Instant::now();
    let response = get(&stack, "/v1/me", Some(31), None).await;
    assert_eq!(response.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(3), "failed fast");
    let text = response.text().await.unwrap().to_lowercase();
    assert!(
        !text.contains("postgres") && !text.contains("5432"),
        "names no internals: {text}"
    );
    let ready = get(&stack, "/health/ready", None, None).await;
    assert_eq!(
        body(ready).await["checks"],
        json!({ "postgres": "down", "redis": "down" })
    );
}

#[tokio::test]
async fn the_leaderboard_top_is_served_from_memory_until_a_read_asks_for_a_write() {
    let stack = stack(true, vec![("SURGE_LEADERBOARD_CACHE_MS", "60000".into())]).await;
    let token = write(&stack, "POST", "/v1/taps", 41, json!({ "count": 10 })).await;
    let first = ok(get(&stack, "/v1/leaderboard/all", None, Some(&token)).await).await;
    assert_eq!(first["entries"][0]["score"], 10);
    // Fills the cache with the top as it is now.
    let cached = ok(get(&stack, "/v1/leaderboard/all", None, None).await).await;
    assert_eq!(cached["entries"], first["entries"]);

    let token = write(&stack, "POST", "/v1/taps", 41, json!({ "count": 5 })).await;
    // Applied (the wallet shows it), yet the cached top is still served without a token...
    let me = ok(get(&stack, "/v1/me", Some(41), Some(&token)).await).await;
    assert_eq!(me["wallet"]["balance"], 15);
    let stale = ok(get(&stack, "/v1/leaderboard/all", None, None).await).await;
    assert_eq!(stale["entries"][0]["score"], 10, "served from memory");
    // ...while a read carrying the write's token reads Redis.
    let fresh = ok(get(&stack, "/v1/leaderboard/all", None, Some(&token)).await).await;
    assert_eq!(fresh["entries"][0]["score"], 15);

    // That read refreshed the entry; another user's write is applied after it...
    let other = write(&stack, "POST", "/v1/taps", 42, json!({ "count": 50 })).await;
    let me = ok(get(&stack, "/v1/me", Some(42), Some(&other)).await).await;
    assert_eq!(me["wallet"]["balance"], 50);
    // ...so replaying the old token, which the entry covers, is served from memory...
    let replayed = ok(get(&stack, "/v1/leaderboard/all", None, Some(&token)).await).await;
    assert_eq!(
        replayed["entries"], fresh["entries"],
        "a covered token hits the cache"
    );
    // ...and only the token the entry does not cover reads Redis.
    let newer = ok(get(&stack, "/v1/leaderboard/all", None, Some(&other)).await).await;
    assert_eq!(newer["entries"][0]["score"], 50);
}

#[tokio::test]
async fn a_path_parameter_that_is_not_utf8_gets_the_json_error_shape() {
    let stack = stack(false, vec![]).await;
    for path in ["/v1/users/%FF", "/v1/leaderboard/%FF%FE"] {
        let response = get(&stack, path, Some(3), None).await;
        assert_eq!(response.status(), 400, "{path}");
        let error = body(response).await["error"].clone();
        assert_eq!(error["code"], "invalid_path", "{path}: {error}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}
