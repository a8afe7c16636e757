//! The REST API through the router, in memory.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::common::{TestDb, call, call_raw, get, post, record, register};

const A_INT: &str = r#"{"name":"a","type":"int"}"#;
const B_DEFAULT: &str = r#"{"name":"b","type":"string","default":""}"#;
const B_REQUIRED: &str = r#"{"name":"b","type":"string"}"#;

#[tokio::test]
async fn register_then_read_back_every_way() {
    let db = TestDb::new().await;
    let app = db.app().await;
    let schema = record("Event", &[A_INT]);

    let id = register(&app, "events-Event", &schema).await;

    let (status, body) = get(&app, &format!("/schemas/ids/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "schema": schema }));
    // The query string Confluent clients add is accepted.
    let (status, _) = get(&app, &format!("/schemas/ids/{id}?deleted=true")).await;
    assert_eq!(status, StatusCode::OK);

    let (_, body) = get(&app, &format!("/schemas/ids/{id}/versions")).await;
    assert_eq!(body, json!([{ "subject": "events-Event", "version": 1 }]));

    let (_, body) = get(&app, "/subjects").await;
    assert_eq!(body, json!(["events-Event"]));
    let (_, body) = get(&app, "/subjects/events-Event/versions").await;
    assert_eq!(body, json!([1]));

    let expected = json!({ "subject": "events-Event", "version": 1, "id": id, "schema": schema });
    for version in ["1", "latest", "-1"] {
        let (status, body) = get(&app, &format!("/subjects/events-Event/versions/{version}")).await;
        assert_eq!(
            (status, &body),
            (StatusCode::OK, &expected),
            "version {version}"
        );
    }
    let (_, body) = get(&app, "/subjects/events-Event/versions/latest/schema").await;
    assert_eq!(
        body,
        serde_json::from_str::<serde_json::Value>(&schema).unwrap()
    );

    // Lookup, with different whitespace and key order.
    let reordered = r#"{ "namespace": "surge.test", "name": "Event", "type": "record",
        "fields": [ { "type": "int", "name": "a" } ] }"#;
    let (status, body) = post(
        &app,
        "/subjects/events-Event",
        json!({ "schema": reordered }),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, expected));

    // Re-registering returns the same id without a new version.
    assert_eq!(register(&app, "events-Event", reordered).await, id);
    let (_, body) = get(&app, "/subjects/events-Event/versions").await;
    assert_eq!(body, json!([1]));
}

#[tokio::test]
async fn not_found_and_invalid_requests_use_confluent_codes() {
    let db = TestDb::new().await;
    let app = db.app().await;
    let schema = record("Event", &[A_INT]);
    let id = register(&app, "s", &schema).await;

    let other = record("Event", &[A_INT, B_DEFAULT]);
    let cases = [
        (get(&app, "/subjects/nope/versions").await, 404, 40401),
        (get(&app, "/subjects/nope/versions/latest").await, 404, 40401),
        (get(&app, "/subjects/nope/versions/1").await, 404, 40401),
        (get(&app, "/subjects/s/versions/2").await, 404, 40402),
        (get(&app, "/subjects/s/versions/0").await, 422, 42202),
        (get(&app, "/subjects/s/versions/abc").await, 422, 42202),
        (get(&app, &format!("/schemas/ids/{}", id + 1000)).await, 404, 40403),
        (get(&app, "/schemas/ids/nope").await, 404, 404),
        (post(&app, "/subjects/nope", json!({ "schema": schema })).await, 404, 40401),
        (post(&app, "/subjects/s", json!({ "schema": other })).await, 404, 40403),
        (post(&app, "/subjects/s/versions", json!({ "schema": "{not json" })).await, 422, 42201),
        (post(&app, "/subjects/s/versions", json!({ "schema": r#"{"type":"nope"}"# })).await, 422, 42201),
        (post(&app, "/subjects/s/versions", json!({})).await, 422, 42201),
        (
            post(&app, "/subjects/s/versions", json!({ "schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF" })).await,
            422,
            42201,
        ),
        (
            post(&app, "/subjects/s/versions", json!({ "schema": schema, "references": [{ "name": "x", "subject": "y", "version": 1 }] })).await,
            422,
            42201,
        ),
        (get(&app, "/no/such/route").await, 404, 404),
        (call(&app, Method::DELETE, "/subjects", None).await, 405, 405),
        (
            call_raw(&app, Method::POST, "/subjects/s/versions", "application/json", Some("not json".into())).await,
            400,
            400,
        ),
    ];
    for (i, ((status, body), want_status, want_code)) in cases.into_iter().enumerate() {
        assert_eq!(status.as_u16(), want_status, "case {i}: {body}");
        assert_eq!(body["error_code"], json!(want_code), "case {i}: {body}");
        assert!(body["message"].is_string(), "case {i}: {body}");
    }
    let (_, body) = post(
        &app,
        "/subjects/s/versions",
        json!({ "schema": "x", "schemaType": "JSON" }),
    )
    .await;
    assert!(
        body["message"].as_str().unwrap().contains("only AVRO"),
        "{body}"
    );
}

#[tokio::test]
async fn same_schema_in_two_subjects_shares_the_id() {
    let db = TestDb::new().await;
    let app = db.app().await;
    let first = register(&app, "a-Event", &record("Event", &[A_INT])).await;
    let unrelated = register(&app, "b-Other", &record("Other", &[A_INT])).await;
    let spaced = record("Event", &[A_INT]).replace(',', ", ");
    let second = register(&app, "b-Event", &spaced).await;
    assert_eq!(first, second);
    assert_ne!(first, unrelated);

    let (_, body) = get(&app, &format!("/schemas/ids/{first}/versions")).await;
    assert_eq!(
        body,
        json!([{ "subject": "a-Event", "version": 1 }, { "subject": "b-Event", "version": 1 }])
    );
    let (_, body) = get(&app, "/subjects/b-Event/versions/latest").await;
    assert_eq!(body["id"], json!(first));
    let (_, body) = get(&app, "/subjects").await;
    assert_eq!(body, json!(["a-Event", "b-Event", "b-Other"]));
}

#[tokio::test]
async fn evolution_follows_the_compatibility_level() {
    let db = TestDb::new().await;
    let app = db.app().await;
    let v1 = register(&app, "s", &record("R", &[A_INT])).await;
    let v2 = register(&app, "s", &record("R", &[A_INT, B_DEFAULT])).await;
    assert_ne!(v1, v2);

    let breaking = record("R", &[A_INT, B_DEFAULT, r#"{"name":"c","type":"long"}"#]);
    let (status, body) = post(&app, "/subjects/s/versions", json!({ "schema": breaking })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error_code"], json!(409));
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Schema being registered is incompatible with an earlier schema for subject \"s\""
        ),
        "{message}"
    );
    assert!(message.contains("'c'"), "{message}");
    let (_, body) = get(&app, "/subjects/s/versions").await;
    assert_eq!(body, json!([1, 2]));

    // The compatibility endpoint agrees, without registering anything.
    let url = "/compatibility/subjects/s/versions/latest?verbose=true";
    let (status, body) = post(&app, url, json!({ "schema": breaking })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["is_compatible"], json!(false));
    assert!(!body["messages"].as_array().unwrap().is_empty(), "{body}");
    let fine = record("R", &[A_INT]);
    let (_, body) = post(
        &app,
        "/compatibility/subjects/s/versions/1",
        json!({ "schema": fine }),
    )
    .await;
    assert_eq!(body, json!({ "is_compatible": true }));
    let (_, body) = post(
        &app,
        "/compatibility/subjects/s/versions",
        json!({ "schema": breaking }),
    )
    .await;
    assert_eq!(body, json!({ "is_compatible": false }));
    let (status, body) = post(
        &app,
        "/compatibility/subjects/nope/versions/latest",
        json!({ "schema": fine }),
    )
    .await;
    assert_eq!((status.as_u16(), &body["error_code"]), (404, &json!(40401)));
    let (status, body) = post(
        &app,
        "/compatibility/subjects/s/versions/9",
        json!({ "schema": fine }),
    )
    .await;
    assert_eq!((status.as_u16(), &body["error_code"]), (404, &json!(40402)));
    let (_, body) = post(
        &app,
        "/compatibility/subjects/nope/versions",
        json!({ "schema": fine }),
    )
    .await;
    assert_eq!(body, json!({ "is_compatible": true }));
}

#[tokio::test]
async fn default_level_is_backward_transitive_and_subject_config_overrides_it() {
    let db = TestDb::new().await;
    let app = db.app().await;
    register(&app, "s", &record("R", &[A_INT])).await;
    register(&app, "s", &record("R", &[])).await;
    // Readable after v2 but not after v1 (int -> string).
    let v3 = record("R", &[r#"{"name":"a","type":"string","default":""}"#]);
    let (status, body) = post(&app, "/subjects/s/versions", json!({ "schema": v3 })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("version 1"),
        "{body}"
    );

    let (status, body) = call(
        &app,
        Method::PUT,
        "/config/s",
        Some(json!({ "compatibility": "BACKWARD" })),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({ "compatibility": "BACKWARD" }))
    );
    register(&app, "s", &v3).await;
    let (_, body) = get(&app, "/subjects/s/versions").await;
    assert_eq!(body, json!([1, 2, 3]));
}

#[tokio::test]
async fn config_get_put_delete() {
    let db = TestDb::new().await;
    let app = db.app().await;
    let (status, body) = get(&app, "/config").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({ "compatibilityLevel": "BACKWARD_TRANSITIVE" })
        )
    );

    let (status, body) = call(
        &app,
        Method::PUT,
        "/config",
        Some(json!({ "compatibility": "FULL" })),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({ "compatibility": "FULL" }))
    );
    let (_, body) = get(&app, "/config").await;
    assert_eq!(body, json!({ "compatibilityLevel": "FULL" }));

    let (status, body) = call(
        &app,
        Method::PUT,
        "/config",
        Some(json!({ "compatibility": "SIDEWAYS" })),
    )
    .await;
    assert_eq!((status.as_u16(), &body["error_code"]), (422, &json!(42203)));

    let (status, body) = get(&app, "/config/s").await;
    assert_eq!((status.as_u16(), &body["error_code"]), (404, &json!(40408)));
    let (_, body) = get(&app, "/config/s?defaultToGlobal=true").await;
    assert_eq!(body, json!({ "compatibilityLevel": "FULL" }));

    let (status, _) = call(
        &app,
        Method::PUT,
        "/config/s",
        Some(json!({ "compatibility": "none" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = get(&app, "/config/s").await;
    assert_eq!(body, json!({ "compatibilityLevel": "NONE" }));
    let (status, body) = call(&app, Method::DELETE, "/config/s", None).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({ "compatibilityLevel": "NONE" }))
    );
    let (status, _) = get(&app, "/config/s").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, body) = call(&app, Method::DELETE, "/config", None).await;
    assert_eq!(body, json!({ "compatibilityLevel": "FULL" }));
    let (_, body) = get(&app, "/config").await;
    assert_eq!(body, json!({ "compatibilityLevel": "BACKWARD_TRANSITIVE" }));
}

#[tokio::test]
async fn accepts_json_octet_stream_and_missing_content_types() {
    let db = TestDb::new().await;
    let app = db.app().await;
    let schema = record("R", &[A_INT]);
    let body = json!({ "schema": schema }).to_string();
    let mut ids = Vec::new();
    for content_type in ["application/json", "application/octet-stream", ""] {
        let (status, reply) = call_raw(
            &app,
            Method::POST,
            "/subjects/s/versions",
            content_type,
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{content_type}: {reply}");
        ids.push(reply["id"].clone());
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
}

#[tokio::test]
async fn schemas_survive_a_restart() {
    let db = TestDb::new().await;
    let schema = record("R", &[A_INT]);
    let id = {
        let registry = db.registry().await;
        let app = surge_schema_registry::router(registry.clone());
        let id = register(&app, "s", &schema).await;
        drop(app);
        drop(registry);
        id
    };
    // A new pool, a new registry: only the database is shared.
    let app = db.app().await;
    let (status, body) = get(&app, &format!("/schemas/ids/{id}")).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({ "schema": schema }))
    );
    assert_eq!(register(&app, "s", &schema).await, id);
    let next = register(&app, "s", &record("R", &[A_INT, B_DEFAULT])).await;
    assert!(next > id);
    let (_, body) = get(&app, "/subjects/s/versions").await;
    assert_eq!(body, json!([1, 2]));
    // Opening again on an existing database is harmless.
    let _again = db.registry().await;
    let (_, body) = post(
        &app,
        "/subjects/s/versions",
        json!({ "schema": record("R", &[A_INT, B_REQUIRED]) }),
    )
    .await;
    assert_eq!(body["error_code"], json!(409));
}
