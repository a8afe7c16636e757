//! Surge against a schema registry other than its embedded one: Apicurio Registry 3 through its
//! Confluent-compatible API, started by `scripts/registry.sh` for this test alone. Writes go
//! through the write API, the processors decode them, the query API serves them back, and the
//! registry holds every event type's subject at BACKWARD_TRANSITIVE.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::Message;
use serde_json::{Value, json};
use surge_schemas::{Codec, EventType};

use crate::broker_process::{free_port, run_script};
use crate::helpers::{Options, consistency_token, init_data, start, unique_id};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/registry.sh");

struct RegistryProcess {
    /// The Confluent-compatible API's base URL.
    url: String,
    dir: PathBuf,
}

impl RegistryProcess {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(unique_id());
        let port = free_port();
        // scripts/test.sh runs `scripts/registry.sh install` first.
        run_script(
            SCRIPT,
            &["start", &port.to_string(), &dir.to_string_lossy()],
        );
        RegistryProcess {
            url: format!("http://127.0.0.1:{port}/apis/ccompat/v7"),
            dir,
        }
    }
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(SCRIPT)
            .arg("stop")
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn apicurio_registry_write_process_read_back() {
    let registry = RegistryProcess::start();
    let id = unique_id();
    let on_apicurio = |role: Option<&'static str>| Options {
        role,
        env: vec![("SURGE_SCHEMA_REGISTRY_URL", registry.url.clone())],
        ..Options::default()
    };
    let writer = start(&id, on_apicurio(None)).expect("the write API starts on Apicurio");
    let _processor = start(&id, on_apicurio(Some("process"))).expect("the processors start");
    let reader = start(&id, on_apicurio(Some("query-api"))).expect("the query API starts");

    let user = 5_000_000_077;
    assert_eq!(
        writer
            .write("POST", "/v1/sessions", user, json!({}))
            .await
            .status(),
        202
    );
    let tapped = writer
        .write("POST", "/v1/taps", user, json!({ "count": 25 }))
        .await;
    assert_eq!(tapped.status(), 202);
    let token = consistency_token(&tapped);

    // Read it back with the write's token; the processors may still be joining their groups.
    let started = Instant::now();
    let me: Value = loop {
        let response = reader
            .request("GET", "/v1/me")
            .header("authorization", format!("tma {}", init_data(user)))
            .header("x-consistency-token", &token)
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            break response.json().await.unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never read back ({}):\n{}",
            response.status(),
            reader.logs()
        );
    };
    assert_eq!(me["wallet"]["balance"], 25, "{me}");

    // Every event type's subject is in Apicurio, held to the contract's rule.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let subjects: Vec<String> = http
        .get(format!("{}/subjects", registry.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for event_type in EventType::ALL {
        let subject = format!("{}-{}", writer.topic, event_type.full_name());
        assert!(subjects.contains(&subject), "{subject} in {subjects:?}");
        let config: Value = http
            .get(format!("{}/config/{subject}", registry.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            config["compatibilityLevel"], "BACKWARD_TRANSITIVE",
            "{subject}"
        );
    }

    // The records carry Apicurio's schema ids: a codec on Apicurio alone decodes them.
    let codec = Codec::new(&registry.url, &writer.topic, Duration::from_secs(5)).unwrap();
    let records = writer.read_all();
    assert_eq!(records.len(), 2);
    for record in records {
        let event = codec.decode(record.payload().unwrap()).await.unwrap();
        assert_eq!(event.envelope.user_id, user);
    }
}
