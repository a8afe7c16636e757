//! Bad input gets a specific 4xx JSON error and appends nothing; a user over their rate gets 429.

use std::time::Instant;

use serde_json::{Value, json};

use crate::helpers::{Options, init_data, json, spawn_app, spawn_app_with, started};
use crate::proxy::write_api_behind_redis_proxy;

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = json(response).await;
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"));
    assert!(body["error"]["message"].is_string(), "{body}");
    (status, code.to_owned())
}

#[tokio::test]
async fn bad_input_is_refused_specifically_and_appends_nothing() {
    let app = spawn_app().await;
    let auth = format!("tma {}", init_data(77));
    let post = |body: Vec<u8>, content_type: &'static str| {
        app.request("POST", "/v1/taps")
            .header("authorization", auth.clone())
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
    let cases: Vec<(Vec<u8>, &str, u16, &str)> = vec![
        (
            vec![b' '; 70 * 1024],
            "application/json",
            413,
            "body_too_large",
        ),
        (
            br#"{"count":1}"#.to_vec(),
            "text/plain",
            415,
            "unsupported_media_type",
        ),
        (deep.into_bytes(), "application/json", 400, "json_too_deep"),
        (
            br#"{"count":"#.to_vec(),
            "application/json",
            400,
            "invalid_json",
        ),
        (
            br#"{"count":1,"coins":1000000}"#.to_vec(),
            "application/json",
            422,
            "invalid_field",
        ),
        (
            br#"{"count":0}"#.to_vec(),
            "application/json",
            422,
            "invalid_field",
        ),
        (
            br#"{"count":1001}"#.to_vec(),
            "application/json",
            422,
            "invalid_field",
        ),
        (
            br#"{"count":1,"occurred_at":99999999999999}"#.to_vec(),
            "application/json",
            422,
            "invalid_field",
        ),
        // serde_json would read an array as the body's fields in order.
        (
            b"[5, null]".to_vec(),
            "application/json",
            422,
            "invalid_field",
        ),
    ];
    for (body, content_type, status, code) in cases {
        let response = post(body, content_type).await.unwrap();
        assert_eq!(
            error_code(response).await,
            (status, code.to_owned()),
            "{code}"
        );
    }
    let bad_batch = app
        .write(
            "POST",
            "/v1/batch",
            77,
            json!({ "actions": [
                { "type": "taps", "count": 1 },
                { "type": "taps", "count": -5 },
            ]}),
        )
        .await;
    let (status, code) = error_code(bad_batch).await;
    assert_eq!((status, code.as_str()), (422, "invalid_field"));
    let positional_action = app
        .write(
            "POST",
            "/v1/batch",
            77,
            json!({ "actions": [{ "type": "checkin" }, ["taps", 5]] }),
        )
        .await;
    let (status, code) = error_code(positional_action).await;
    assert_eq!((status, code.as_str()), (422, "invalid_field"));
    let too_many = json!({ "actions": vec![json!({ "type": "checkin" }); 101] });
    assert_eq!(
        error_code(app.write("POST", "/v1/batch", 77, too_many).await)
            .await
            .0,
        422
    );
    let bad_key = app
        .request("POST", "/v1/taps")
        .header("authorization", auth.clone())
        .header("idempotency-key", "has spaces")
        .json(&json!({ "count": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(bad_key).await,
        (400, "invalid_idempotency_key".to_owned())
    );
    assert_eq!(app.record_count(), 0, "nothing was appended");
}

#[tokio::test]
async fn forged_or_missing_init_data_is_401_with_a_code() {
    let app = spawn_app().await;
    let valid = init_data(5);
    let forged = valid.replacen("%22id%22%3A5", "%22id%22%3A6", 1);
    assert_ne!(forged, valid, "the user id was rewritten");
    let cases = [
        None,
        Some("Bearer abc".to_owned()),
        Some(format!("tma {forged}")),
        Some("tma ".to_owned()),
    ];
    for header in cases {
        let mut request = app.request("POST", "/v1/taps").json(&json!({ "count": 1 }));
        if let Some(h) = &header {
            request = request.header("authorization", h);
        }
        let (status, _code) = error_code(request.send().await.unwrap()).await;
        assert_eq!(status, 401, "{header:?}");
    }
    assert_eq!(app.record_count(), 0);
}

#[tokio::test]
async fn a_user_over_their_rate_gets_429_with_retry_after_and_others_do_not() {
    let options = Options {
        env: vec![
            ("SURGE_USER_RATE_PER_SEC", "1".into()),
            ("SURGE_USER_BURST", "2".into()),
        ],
        ..Options::default()
    };
    let app = spawn_app_with(options).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    // Quick writes spend the burst of 2 and then meet the limit. A token refills each second,
    // so on a busy machine, where a write can take that long, the 429 may come a write later:
    // write until it does, 20 writes at most.
    while retry_after.is_none() && statuses.len() < 20 {
        let response = app
            .write("POST", "/v1/taps", 11, json!({ "count": 1 }))
            .await;
        if response.status() == 429 {
            retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(error_code(response).await.1, "rate_limited");
            statuses.push(429);
        } else {
            statuses.push(response.status().as_u16());
        }
    }
    assert_eq!(&statuses[..2], &[202, 202], "{statuses:?}");
    assert!(statuses[2..].contains(&429), "{statuses:?}");
    let secs: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&secs), "{secs}");
    assert_eq!(
        app.write("POST", "/v1/taps", 12, json!({ "count": 1 }))
            .await
            .status(),
        202
    );
}

fn shared_rate(burst: u32) -> Vec<(&'static str, String)> {
    vec![
        ("SURGE_USER_RATE_PER_SEC", "1".into()),
        ("SURGE_USER_BURST", burst.to_string()),
        ("SURGE_USER_RATE_SCOPE", "shared".into()),
    ]
}

/// A client spreading its writes over two instances gets one rate with
/// `SURGE_USER_RATE_SCOPE=shared`; each instance counting alone would let it write its burst
/// twice (40 here) before the first 429.
#[tokio::test]
async fn a_shared_rate_holds_across_instances() {
    let first = spawn_app_with(Options {
        env: shared_rate(20),
        ..Options::default()
    })
    .await;
    let second = started(
        &first.id,
        Options {
            env: shared_rate(20),
            ..Options::default()
        },
    );
    let started = Instant::now();
    let mut accepted = 0;
    let mut refused = None;
    for i in 0..80 {
        let app = if i % 2 == 0 { &first } else { &second };
        let response = app.write("POST", "/v1/checkins", 31, json!({})).await;
        if response.status() == 429 {
            let retry_after = response.headers().get("retry-after").cloned();
            assert_eq!(error_code(response).await.1, "rate_limited");
            refused = Some(retry_after.expect("Retry-After"));
            break;
        }
        assert_eq!(response.status(), 202);
        accepted += 1;
    }
    let elapsed = started.elapsed().as_secs() + 1;
    assert!(refused.is_some(), "no 429 in {accepted} writes");
    // The burst, plus a write a second since the first: one rate, whichever instance answers.
    assert!(
        accepted <= 20 + elapsed && accepted < 40,
        "{accepted} writes accepted in {elapsed} s"
    );
    assert_eq!(first.record_count(), accepted as i64);
    let other_user = second.write("POST", "/v1/checkins", 32, json!({})).await;
    assert_eq!(other_user.status(), 202, "another user is not limited");
}

/// Without Redis the shared rate is not checked and writes go on under each instance's own limit
/// (fail open), where taps, which need the energy bar, are refused (see `energy.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_a_shared_rate_falls_back_to_the_instances_own() {
    let (redis, app) = write_api_behind_redis_proxy(shared_rate(2)).await;
    assert_eq!(
        app.write("POST", "/v1/checkins", 33, json!({}))
            .await
            .status(),
        202
    );
    redis.cut();
    let unchecked = app.write("POST", "/v1/checkins", 33, json!({})).await;
    assert_eq!(unchecked.status(), 202, "fail open");
    assert!(
        app.logs()
            .contains("The shared write rate could not be checked"),
        "{}",
        app.logs()
    );
}

#[tokio::test]
async fn an_empty_body_is_no_options_whatever_its_declared_type() {
    let app = spawn_app().await;
    for content_type in [
        None,
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
    ] {
        let mut request = app
            .request("POST", "/v1/checkins")
            .header("authorization", format!("tma {}", init_data(31)));
        if let Some(t) = content_type {
            request = request.header("content-type", t);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 202, "{content_type:?}");
    }
    assert_eq!(app.record_count(), 3);
}
