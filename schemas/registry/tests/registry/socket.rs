//! The registry served on a real socket, spoken to with reqwest.

use serde_json::{Value, json};
use surge_schema_registry::serve;

use crate::common::{TestDb, record};

#[tokio::test]
async fn serve_answers_over_http() {
    let db = TestDb::new().await;
    let embedded = serve(db.registry().await, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    assert!(
        embedded.url.starts_with("http://127.0.0.1:"),
        "{}",
        embedded.url
    );
    assert_ne!(embedded.addr.port(), 0);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = &embedded.url;
    let content_type = "application/vnd.schemaregistry.v1+json";

    let schema = record("R", &[r#"{"name":"a","type":"int"}"#]);
    let response = client
        .post(format!("{url}/subjects/topic-surge.test.R/versions"))
        .header("content-type", content_type)
        .body(json!({ "schema": schema, "schemaType": "AVRO" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_u64()
        .unwrap();

    let response = client
        .get(format!("{url}/schemas/ids/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.schemaregistry.v1+json"
    );
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "schema": schema })
    );

    let breaking = record("R", &[r#"{"name":"a","type":"string"}"#]);
    let response = client
        .post(format!("{url}/subjects/topic-surge.test.R/versions"))
        .header("content-type", content_type)
        .body(json!({ "schema": breaking }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error_code"],
        json!(409)
    );

    let base = url.clone();
    embedded.shutdown().await.unwrap();
    assert!(client.get(format!("{base}/subjects")).send().await.is_err());
}
