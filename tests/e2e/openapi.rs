//! Each API's OpenAPI document against the live stack: schemathesis (installed by
//! `scripts/test.sh`) reads `GET /openapi.json` from the write API and from the query API of one
//! test's stack (write API, processors, query API, the fake Bot API) and sends the requests it
//! generates from it, valid and invalid, as a Telegram user (`Authorization: tma <initData>`)
//! and, on `/v1/admin/*` and `/v1/stats/*`, as the operator. Every answer must not be a 5xx
//! and must be what the document says: its status, content type, headers and body schema.
//!
//! The two Server-Sent Events streams (`/v1/me/live`, `/v1/leaderboard/{period}/live`) are left
//! out: a stream answers for an hour, and schemathesis reads a whole body. `tests/e2e/live.rs`
//! tests them.

use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};
use surge_testkit::bot_api::FakeBotApi;

use crate::helpers::{
    BOT_TOKEN, Options, TestApp, init_data, json as body, spawn_app_with, started,
};

const OPERATOR: &str = "openapi-operator-token";
const USER: i64 = 4_200_042;
/// Examples per operation and phase: enough for every operation's refusals and a few valid
/// requests, few enough for the test to take well under a minute
/// (`SURGE_SCHEMATHESIS_EXAMPLES` for a longer run).
const MAX_EXAMPLES: &str = "50";
/// Streams answer for an hour; schemathesis cannot read them (see the module's comment).
const STREAMS: &str = "/live$";
const OPERATOR_PATHS: &str = "^/v1/(admin|stats)/";

#[tokio::test(flavor = "multi_thread")]
async fn both_apis_answer_as_their_openapi_documents_say() {
    let fake = FakeBotApi::start(BOT_TOKEN).await;
    let writer = spawn_app_with(Options {
        env: vec![
            ("SURGE_TELEGRAM_API_URL", fake.url().to_owned()),
            ("SURGE_OPERATOR_TOKEN", OPERATOR.to_owned()),
            ("SURGE_USER_RATE_PER_SEC", "1000".to_owned()),
            ("SURGE_USER_BURST", "1000".to_owned()),
        ],
        ..Options::default()
    })
    .await;
    let _processor = started(
        &writer.id,
        Options {
            role: Some("process"),
            env: vec![
                ("SURGE_PROCESS_BATCH_WAIT_MS", "5".into()),
                ("SURGE_PROCESS_FETCH_WAIT_MS", "20".into()),
            ],
            ..Options::default()
        },
    );
    let query = started(
        &writer.id,
        Options {
            role: Some("query-api"),
            env: vec![
                ("SURGE_OPERATOR_TOKEN", OPERATOR.to_owned()),
                ("SURGE_CONSISTENCY_WAIT_MS", "10000".to_owned()),
            ],
            ..Options::default()
        },
    );
    // Some state, so the reads answer with whole bodies rather than empty ones.
    for (path, payload) in [
        ("/v1/sessions", json!({})),
        ("/v1/taps", json!({"count": 5})),
        ("/v1/checkins", json!({})),
    ] {
        assert_eq!(
            writer.write("POST", path, USER, payload).await.status(),
            202
        );
    }

    let started = Instant::now();
    let mut documented = Vec::new();
    for app in [&writer, &query] {
        let doc = body(app.request("GET", "/openapi.json").send().await.unwrap()).await;
        documented.extend(doc["paths"].as_object().unwrap().keys().cloned());
        let version = doc["openapi"].as_str().unwrap_or_default();
        assert!(version.starts_with("3.1"), "{version}");
        let user = format!("Authorization: tma {}", init_data(USER));
        let operator = format!("Authorization: Bearer {OPERATOR}");
        let exclude = format!("{OPERATOR_PATHS}|{STREAMS}");
        schemathesis(app, &doc, &user, &["--exclude-path-regex", &exclude]).await;
        schemathesis(
            app,
            &doc,
            &operator,
            &["--include-path-regex", OPERATOR_PATHS],
        )
        .await;
    }
    eprintln!("schemathesis took {:.1?}", started.elapsed());

    // The TypeScript client is written on these documents: every path it calls is in one.
    let client_paths = client_paths();
    assert!(client_paths.len() >= 15, "{client_paths:?}");
    for path in client_paths {
        assert!(
            documented.iter().any(|d| same_route(d, &path)),
            "clients/ts calls {path}, which neither document has"
        );
    }
}

/// The paths `clients/ts/src/index.ts` calls, a `${...}` in them as `{}`.
fn client_paths() -> Vec<String> {
    let source = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/ts/src/index.ts"),
    )
    .unwrap();
    let mut paths: Vec<String> = source
        .match_indices("/v1/")
        // In a string or template (`${base}/v1/...`), not in a comment.
        .filter(|(at, _)| matches!(&source[at - 1..*at], "\"" | "`" | "}"))
        .map(|(at, _)| {
            let rest = &source[at..];
            let end = rest.find(['"', '`', '?']).unwrap_or(rest.len());
            let mut path = rest[..end].to_owned();
            // A parameter: `${encodeURIComponent(id)}` or `${period}`; a query: `${query(...)}`.
            while let Some(start) = path.find("${") {
                if path[start..].starts_with("${query(") {
                    path.truncate(start);
                } else {
                    let close = start + path[start..].find('}').unwrap();
                    path.replace_range(start..=close, "{}");
                }
            }
            path
        })
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// Whether a documented path (`/v1/users/{id}`) names the client's (`/v1/users/{}`).
fn same_route(documented: &str, called: &str) -> bool {
    let (documented, called): (Vec<&str>, Vec<&str>) =
        (documented.split('/').collect(), called.split('/').collect());
    documented.len() == called.len()
        && documented
            .iter()
            .zip(&called)
            .all(|(d, c)| d == c || (d.starts_with('{') && *c == "{}"))
}

/// Runs schemathesis against `app`'s document with the `header` on every request; panics with
/// its report when it finds anything.
async fn schemathesis(app: &TestApp, doc: &Value, header: &str, filter: &[&str]) {
    let title = doc["info"]["title"].as_str().unwrap_or_default().to_owned();
    let mut command = Command::new("schemathesis");
    command
        .arg("run")
        .arg(format!("{}/openapi.json", app.url))
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,\
             content_type_conformance,response_headers_conformance",
            "--max-examples",
            &std::env::var("SURGE_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| MAX_EXAMPLES.into()),
            "--seed",
            "42",
            // One worker: with two, Python 3.11.7's parser (hypothesis reads its own lambdas'
            // source while generating) failed a run with "SystemError: AST constructor
            // recursion depth mismatch", an error of the interpreter, not of the API.
            "--workers",
            "1",
            "--request-timeout",
            "15",
            "--no-color",
            "--header",
            header,
        ])
        .args(filter)
        // Its cache of failing cases (for `st replay`) goes to the target directory, not the
        // work tree.
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .env("NO_PROXY", "127.0.0.1,localhost");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| {
            panic!("cannot run schemathesis ({e}): scripts/test.sh installs it (pip)")
        });
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found problems in the {title} ({filter:?}):\n{report}"
    );
    let summary: Vec<&str> = report.lines().rev().take(24).collect();
    let summary: Vec<&str> = summary.into_iter().rev().collect();
    eprintln!("{title} ({filter:?}):\n{}", summary.join("\n"));
}
