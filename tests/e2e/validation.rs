//! Every field of every event is checked against its rule (`surge_schemas::rules`) before
//! anything is appended: text that is not text gets 400 `invalid_text`, a value out of bounds
//! 422 `invalid_field`, each naming the field; signed initData fields have length bounds.

use serde_json::{Value, json};
use surge_telegram_auth::{InitDataBuilder, WebAppUser};

use crate::helpers::{BOT_TOKEN, TestApp, json, spawn_app};

async fn refusal(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: Value = json(response).await;
    let error = &body["error"];
    (
        status,
        error["code"].as_str().unwrap_or_default().to_owned(),
        error["message"].as_str().unwrap_or_default().to_owned(),
    )
}

fn user(first_name: &str) -> WebAppUser {
    WebAppUser {
        id: 6_000_000_001,
        first_name: first_name.into(),
        last_name: None,
        username: None,
        language_code: Some("en".into()),
        is_premium: false,
        is_bot: false,
        photo_url: None,
        allows_write_to_pm: false,
    }
}

async fn session_as(app: &TestApp, user: WebAppUser) -> reqwest::Response {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let init_data = InitDataBuilder::new(user, now).sign(BOT_TOKEN);
    app.request("POST", "/v1/sessions")
        .header("authorization", format!("tma {init_data}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn text_that_is_not_text_is_400_naming_the_field_and_appends_nothing() {
    let app = spawn_app().await;
    let cases = [
        (
            "/v1/profile",
            json!({ "photo_url": "https://x/\u{0}y" }),
            "photo_url:",
        ),
        (
            "/v1/profile",
            json!({ "display_name": "A\u{0}B" }),
            "display_name:",
        ),
        (
            "/v1/profile",
            json!({ "display_name": "gg\u{202E}ez" }),
            "display_name:",
        ),
        (
            "/v1/profile",
            json!({ "display_name": "\u{2066}x\u{2069}" }),
            "display_name:",
        ),
        (
            "/v1/profile",
            json!({ "display_name": "\u{200B}\u{200D}\u{FEFF}" }),
            "display_name:",
        ),
        (
            "/v1/profile",
            json!({ "display_name": "\u{3164}" }),
            "display_name:",
        ),
        (
            "/v1/profile",
            json!({ "language_code": "en\u{1b}" }),
            "language_code:",
        ),
    ];
    for (path, body, field) in cases {
        let (status, code, message) =
            refusal(app.write("PATCH", path, 1, body.clone()).await).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "invalid_text"),
            "{body}: {message}"
        );
        assert!(message.starts_with(field), "{body}: {message}");
    }
    let session = app
        .write("POST", "/v1/sessions", 1, json!({ "platform": "io\u{0}s" }))
        .await;
    let (status, code, message) = refusal(session).await;
    assert_eq!((status, code.as_str()), (400, "invalid_text"), "{message}");
    assert!(message.starts_with("platform:"), "{message}");
    let batch = app
        .write(
            "POST",
            "/v1/batch",
            1,
            json!({ "actions": [
                { "type": "taps", "count": 1 },
                { "type": "profile", "display_name": "ok\u{7}" },
            ]}),
        )
        .await;
    let (status, code, message) = refusal(batch).await;
    assert_eq!((status, code.as_str()), (400, "invalid_text"), "{message}");
    assert!(message.starts_with("actions[1].display_name:"), "{message}");
    assert_eq!(app.record_count(), 0, "nothing was appended");
}

#[tokio::test]
async fn values_out_of_bounds_are_422_naming_the_field() {
    let app = spawn_app().await;
    let cases = [
        (json!({ "display_name": "я".repeat(65) }), "display_name:"),
        (
            json!({ "photo_url": format!("https://x/{}", "a".repeat(600)) }),
            "photo_url:",
        ),
        (json!({ "photo_url": "javascript:alert(1)" }), "photo_url:"),
        (json!({ "language_code": "x".repeat(36) }), "language_code:"),
    ];
    for (body, field) in cases {
        let (status, code, message) =
            refusal(app.write("PATCH", "/v1/profile", 1, body.clone()).await).await;
        assert_eq!(
            (status, code.as_str()),
            (422, "invalid_field"),
            "{body}: {message}"
        );
        assert!(message.starts_with(field), "{body}: {message}");
    }
    let fine = json!({ "display_name": "שלום 👩\u{200D}🚀", "photo_url": "https://t.me/i/a.jpg" });
    assert_eq!(
        app.write("PATCH", "/v1/profile", 1, fine).await.status(),
        202
    );
    assert_eq!(app.record_count(), 1);
}

#[tokio::test]
async fn signed_init_data_fields_are_checked_too() {
    let app = spawn_app().await;
    // Signed, but a NUL in the name would stop every projection that stores it.
    let (status, code, message) = refusal(session_as(&app, user("Ada\u{0}")).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_text"), "{message}");
    assert!(message.starts_with("init_data.first_name:"), "{message}");
    // Longer than Telegram ever sends: refused by the initData check itself.
    let (status, code, _) = refusal(session_as(&app, user(&"n".repeat(65))).await).await;
    assert_eq!((status, code.as_str()), (401, "init_data_field_too_long"));
    let mut long_username = user("Ada");
    long_username.username = Some("u".repeat(33));
    let (status, code, _) = refusal(session_as(&app, long_username).await).await;
    assert_eq!((status, code.as_str()), (401, "init_data_field_too_long"));
    // A Telegram name that looks blank is Telegram's to allow.
    assert_eq!(session_as(&app, user("\u{3164}")).await.status(), 202);
    assert_eq!(app.record_count(), 1);
}
