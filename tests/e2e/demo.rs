//! The demo Mini App as a player sees it: `surge dev` serves the built page, Chromium (Debian's,
//! driven by playwright-core) opens it for two players in two browser contexts, they tap, and
//! each sees their balance rise through the live stream without a reload while both reach the
//! live leaderboard (`demo/tests/two-players.mjs`). Also: the APIs answer browsers only from the
//! origins configured, and `surge dev` signs development initData only with the development
//! bot token.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use surge::settings::DEV_BOT_TOKEN;

use crate::helpers::{Options, TestApp, spawn_app_with};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

async fn dev(bot_token: Option<&str>) -> (TestApp, String) {
    let mut env = vec![
        ("SURGE_DEMO_ADDR", "127.0.0.1:0".to_owned()),
        (
            "SURGE_DEMO_DIR",
            repo().join("demo/dist").display().to_string(),
        ),
    ];
    if let Some(token) = bot_token {
        env.push(("SURGE_BOT_TOKEN", token.to_owned()));
    }
    let app = spawn_app_with(Options {
        role: Some("dev"),
        env,
        ..Options::default()
    })
    .await;
    let demo = app.listening("Mini App demo").await;
    (app, demo)
}

#[tokio::test]
async fn two_players_in_chromium_see_their_balances_rise_live_and_share_the_leaderboard() {
    let demo_dir = repo().join("demo");
    for (needed, how) in [
        ("node_modules/playwright-core", "npm --prefix demo ci"),
        ("dist/index.html", "npm --prefix demo run build"),
    ] {
        assert!(
            demo_dir.join(needed).exists(),
            "demo/{needed} is missing: run `{how}` (scripts/test.sh does)"
        );
    }
    let (app, demo) = dev(Some(DEV_BOT_TOKEN)).await;
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo");
    let chromium = std::env::var("SURGE_TEST_CHROMIUM").unwrap_or("/usr/bin/chromium".into());
    let output = tokio::task::spawn_blocking({
        let screenshots = screenshots.clone();
        move || {
            Command::new("node")
                .arg("tests/two-players.mjs")
                .current_dir(&demo_dir)
                .env("DEMO_URL", &demo)
                .env("USER_BASE", "7100000001")
                .env("SCREENSHOTS", &screenshots)
                .env("CHROMIUM", chromium)
                .output()
                .expect("node runs (scripts/test.sh installs Node.js's npm packages)")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}\n--- surge dev:\n{}",
        app.logs()
    );
    let report: Value = serde_json::from_str(stdout.trim()).expect("a JSON report");
    println!("{report}");
    for player in ["ada", "bob"] {
        let shot = screenshots.join(format!("{player}.png"));
        assert!(
            std::fs::metadata(&shot).is_ok_and(|m| m.len() > 1_000),
            "{}",
            shot.display()
        );
    }
}

/// `POST /dev/init-data` on `surge dev`'s demo at `demo`.
async fn sign(app: &TestApp, demo: &str, request: Value) -> reqwest::Response {
    app.http
        .post(format!("{demo}/dev/init-data"))
        .json(&request)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn dev_signs_initdata_only_with_the_development_token() {
    // The suite's token is not the development one.
    let (app, demo) = dev(None).await;
    let config: Value = app
        .http
        .get(format!("{demo}/config.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["dev_init_data"], false);
    assert!(
        config["write_url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    let refused = sign(&app, &demo, json!({ "user_id": 5 })).await;
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "dev_signing_disabled");

    // With it, what it signs is accepted by the write API; a nonsense user id is not signed.
    let (app, demo) = dev(Some(DEV_BOT_TOKEN)).await;
    let signed: Value = sign(&app, &demo, json!({ "user_id": 5, "first_name": "Eve" }))
        .await
        .json()
        .await
        .unwrap();
    let session = app
        .request("POST", "/v1/sessions")
        .header(
            "authorization",
            format!("tma {}", signed["init_data"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), 202);
    let refused = sign(&app, &demo, json!({ "user_id": -5 })).await;
    assert_eq!(refused.status(), 422);
}

#[tokio::test]
async fn browsers_may_call_the_apis_only_from_the_configured_origins() {
    let app = spawn_app_with(Options {
        env: vec![("SURGE_CORS_ORIGINS", "https://app.example.com".to_owned())],
        ..Options::default()
    })
    .await;
    let preflight = |origin: &'static str| {
        app.request("OPTIONS", "/v1/taps")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,idempotency-key",
            )
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap();
    assert!(headers.contains("idempotency-key"), "{headers}");
    let foreign = preflight("https://evil.example").await.unwrap();
    assert!(
        !foreign
            .headers()
            .contains_key("access-control-allow-origin"),
        "{:?}",
        foreign.headers()
    );
    // A real request from the page can read the consistency token.
    let accepted = app
        .request("POST", "/v1/sessions")
        .header("origin", "https://app.example.com")
        .header(
            "authorization",
            format!("tma {}", crate::helpers::init_data(9)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    let exposed = accepted.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("x-consistency-token"), "{exposed}");
}

/// `surge dev` opens its APIs once every processor has claimed its partitions, so a first
/// write read back with its token is not left waiting (504) while the groups settle.
#[tokio::test]
async fn dev_opens_once_every_processor_owns_its_partitions() {
    let (app, _) = dev(None).await;
    let logs = app.logs();
    let up = logs
        .find("Surge dev is up")
        .unwrap_or_else(|| panic!("no start line:\n{logs}"));
    for id in surge_projections::catalog::ProjectionId::ALL {
        let processor = format!("\"processor\":\"{}.v1\"", id.name());
        let assigned = logs
            .lines()
            .filter(|line| line.contains("Partitions assigned") && line.contains(&processor))
            .map(|line| logs.find(line).expect("a line of the logs"))
            .min();
        assert!(
            assigned.is_some_and(|at| at < up),
            "{processor} had its partitions before dev opened:\n{logs}"
        );
    }
}
