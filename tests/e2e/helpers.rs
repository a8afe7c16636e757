//! `spawn_app()` and the probes tests use to look at what the app did.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{Message, TopicPartitionList};
use serde_json::Value;
use surge_projections::naming;
use surge_schema_registry::{EmbeddedRegistry, Registry};
use surge_schemas::Codec;
use surge_telegram_auth::{InitDataBuilder, WebAppUser};

pub const BOT_TOKEN: &str = "7000000042:AAtest-token-for-surge-e2e-suite";
pub const PARTITIONS: i32 = 6;
const DEADLINE: Duration = Duration::from_secs(60);

/// The broker process `scripts/test.sh` started.
pub use surge_testkit::kafka_brokers as real_brokers;
/// A schema in the test database (created if missing) and a pool on it.
pub use surge_testkit::pg_pool;

pub struct TestApp {
    pub url: String,
    /// Where `/metrics` is served: the admin address of the APIs, the health address of
    /// `surge process`.
    pub admin_url: String,
    /// Where Telegram's webhook is served (the write API and `surge dev`).
    pub webhook_url: Option<String>,
    pub id: String,
    pub topic: String,
    pub brokers: String,
    /// Whether it runs on the test Redis Cluster (`SURGE_REDIS_CLUSTER_URLS`).
    pub redis_cluster: bool,
    pub http: reqwest::Client,
    process: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

#[derive(Default, Clone)]
pub struct Options {
    /// Brokers to use instead of the real broker process (e.g. a mock cluster); empty: the
    /// process embeds its own.
    pub brokers: Option<String>,
    /// Extra SURGE_* variables.
    pub env: Vec<(&'static str, String)>,
    /// The role to run; default `write-api`.
    pub role: Option<&'static str>,
}

/// A test's own id: its schema, topic prefix, group and Redis prefix.
pub fn unique_id() -> String {
    surge_testkit::unique_id("t")
}

pub type MockCluster =
    rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>;

/// librdkafka's mock cluster holding test `id`'s topics (it answers no CreateTopics, so they are
/// created through its own API); for broker fault injection and group-session behaviour.
pub fn mock_cluster(id: &str) -> MockCluster {
    let cluster = MockCluster::new(1).unwrap();
    cluster
        .create_topic(&format!("{id}.events"), PARTITIONS, 1)
        .unwrap();
    cluster
        .create_topic(&naming::dead_letter_topic(&format!("{id}.events")), 1, 1)
        .unwrap();
    cluster
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    started(&unique_id(), options)
}

/// [`start`], or the test fails with the process's logs.
pub fn started(id: &str, options: Options) -> TestApp {
    let role = options.role.unwrap_or("write-api");
    start(id, options).unwrap_or_else(|logs| panic!("surge {role} did not start:\n{logs}"))
}

/// Starts `surge write-api` for test `id`; Err carries its logs when it exits before listening.
pub fn start(id: &str, options: Options) -> Result<TestApp, String> {
    let brokers = options.brokers.unwrap_or_else(real_brokers);
    let topic = format!("{id}.events");
    let role = options.role.unwrap_or("write-api");
    let listening_role = match role {
        "process" => "processor health",
        "query-api" => "query API",
        _ => "write API",
    };
    // The APIs serve `/metrics` on an admin address of their own; the processor on its one.
    let admin_role = match role {
        "process" => None,
        _ => Some(format!("{listening_role} admin")),
    };
    let webhook_role = matches!(role, "write-api" | "dev").then_some("Telegram webhook");
    let redis_cluster = (options.env.iter()).any(|(key, _)| *key == "SURGE_REDIS_CLUSTER_URLS");
    let mut command = Command::new(env!("CARGO_BIN_EXE_surge"));
    command
        .arg(role)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SURGE_DATABASE_URL", surge_testkit::database_url())
        .env("SURGE_DATABASE_SCHEMA", id)
        .env("SURGE_REDIS_PREFIX", id)
        .env("SURGE_EVENTS_TOPIC", &topic)
        .env("SURGE_EVENTS_PARTITIONS", PARTITIONS.to_string())
        .env("SURGE_WRITE_ADDR", "127.0.0.1:0")
        .env("SURGE_PROCESS_ADDR", "127.0.0.1:0")
        .env("SURGE_QUERY_ADDR", "127.0.0.1:0")
        .env("SURGE_WRITE_ADMIN_ADDR", "127.0.0.1:0")
        .env("SURGE_QUERY_ADMIN_ADDR", "127.0.0.1:0")
        .env("SURGE_TELEGRAM_WEBHOOK_ADDR", "127.0.0.1:0")
        .env("SURGE_BOT_TOKEN", BOT_TOKEN)
        .env("SURGE_LOG", "info")
        // A loaded machine can take longer than production's 1 s for a store read (CI once
        // answered a read 503 so); the tests of a store that is down set their own bound.
        .env("SURGE_QUERY_STORE_TIMEOUT_MS", "10000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // Empty: the process embeds its own mock cluster.
    if !brokers.is_empty() {
        command.env("SURGE_KAFKA_BROKERS", &brokers);
    }
    for (key, value) in options.env {
        command.env(key, value);
    }
    let mut process = command.spawn().expect("spawn surge");
    let stderr = process.stderr.take().expect("piped stderr");
    let logs = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(listening) = listening_addr(&line) {
                let _ = tx.send(listening);
            }
            sink.lock().unwrap().push(line);
        }
    });
    let wanted: Vec<&str> = std::iter::once(listening_role)
        .chain(admin_role.as_deref())
        .chain(webhook_role)
        .collect();
    let mut found: HashMap<String, String> = HashMap::new();
    let deadline = Instant::now() + DEADLINE;
    while !wanted.iter().all(|role| found.contains_key(*role)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((role, addr)) => {
                found.insert(role, addr);
            }
            Err(_) => {
                let _ = process.kill();
                let _ = process.wait();
                return Err(logs.lock().unwrap().join("\n"));
            }
        }
    }
    let url = format!("http://{}", found[listening_role]);
    let admin_url =
        admin_role.map_or_else(|| url.clone(), |role| format!("http://{}", found[&role]));
    let webhook_url = webhook_role.map(|role| format!("http://{}", found[role]));
    Ok(TestApp {
        url,
        admin_url,
        webhook_url,
        id: id.to_owned(),
        topic,
        brokers,
        redis_cluster,
        // The app closes a keep-alive connection idle for 10 s (SURGE_HTTP_HEADER_TIMEOUT_MS):
        // a client that keeps it longer may send a request just as it closes, and get an
        // incomplete message (seen once in CI after a 10 s wait between two rounds of writes).
        http: reqwest::Client::builder()
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .unwrap(),
        process,
        logs,
    })
}

/// The role and address of a "Listening." log line.
fn listening_addr(line: &str) -> Option<(String, String)> {
    let json: Value = serde_json::from_str(line).ok()?;
    let fields = json.get("fields")?;
    (fields.get("message")?.as_str()? == "Listening.").then_some(())?;
    let role = fields.get("role")?.as_str()?.to_owned();
    Some((role, fields.get("addr")?.as_str()?.to_owned()))
}

pub fn init_data(user_id: i64) -> String {
    init_data_with(user_id, None)
}

pub fn init_data_with(user_id: i64, start_param: Option<&str>) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let user = WebAppUser {
        id: user_id,
        first_name: "Тест".into(),
        last_name: Some("User".into()),
        username: Some(format!("user{user_id}")),
        language_code: Some("en".into()),
        is_premium: false,
        is_bot: false,
        photo_url: None,
        allows_write_to_pm: true,
    };
    let mut builder = InitDataBuilder::new(user, now as i64);
    if let Some(p) = start_param {
        builder = builder.start_param(p.to_owned());
    }
    builder.sign(BOT_TOKEN)
}

impl TestApp {
    /// A JSON write as the given user.
    pub async fn write(
        &self,
        method: &str,
        path: &str,
        user_id: i64,
        body: Value,
    ) -> reqwest::Response {
        self.request(method, path)
            .header("authorization", format!("tma {}", init_data(user_id)))
            .json(&body)
            .send()
            .await
            .expect("request reaches the write API")
    }

    pub fn request(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        self.http.request(method, format!("{}{path}", self.url))
    }

    /// Records in the topic. A 202 means the broker already has them, so no waiting is needed.
    pub fn record_count(&self) -> i64 {
        self.read_all().len() as i64
    }

    /// The next offset of every partition (one past its last record).
    pub fn end_offsets(&self) -> Vec<i64> {
        let mut ends = vec![0; PARTITIONS as usize];
        for record in self.read_all() {
            let end = &mut ends[record.partition() as usize];
            *end = (*end).max(record.offset() + 1);
        }
        ends
    }

    /// Every committed record of the topic (as processors and analytics consumers read it:
    /// `read_committed`, so records of aborted transactions are left out), to the end of each
    /// partition.
    pub fn read_all(&self) -> Vec<OwnedMessage> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", unique_id())
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("isolation.level", "read_committed")
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            assignment
                .add_partition_offset(&self.topic, p, rdkafka::Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&assignment).unwrap();
        let started = Instant::now();
        let mut at_end = std::collections::HashSet::new();
        let mut records = Vec::new();
        while at_end.len() < PARTITIONS as usize {
            assert!(
                started.elapsed() < DEADLINE,
                "could not read {} to its end",
                self.topic
            );
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => {
                    at_end.remove(&message.partition());
                    records.push(message.detach());
                }
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                    at_end.insert(p);
                }
                Some(Err(error)) => panic!("reading {}: {error}", self.topic),
                None => {}
            }
        }
        records
    }

    /// Reads every record of the topic, expecting exactly `count`.
    pub fn read_records(&self, count: usize) -> Vec<OwnedMessage> {
        let records = self.read_all();
        assert_eq!(records.len(), count, "records in {}", self.topic);
        records
    }

    /// A codec reading through a registry opened on this app's database schema: the same
    /// durable store the app registered its schemas in, served by another process.
    pub async fn codec(&self) -> (Codec, EmbeddedRegistry) {
        let pool = pg_pool(&self.id).await;
        let registry = Registry::open(pool).await.unwrap();
        let served = surge_schema_registry::serve(registry, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let codec = Codec::new(&served.url, &self.topic, Duration::from_secs(5)).unwrap();
        (codec, served)
    }

    /// The process id, e.g. to read its CPU time from /proc.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Sends a signal by name (KILL, STOP, CONT) to the process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.process.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// SIGKILL, then reap: the process gets no chance to flush or commit anything.
    pub fn kill(mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }

    /// A `surge` command-line invocation (`surge tap`, `surge projections`, ...) pointed at this
    /// app's broker, database schema, Redis prefix and topic.
    pub fn cli(&self, subcommand: &str) -> Command {
        let mut command = self.command(env!("CARGO_BIN_EXE_surge"));
        command.arg(subcommand);
        command
    }

    /// `program` (`surge`, or a tool such as `surge-loadgen`) with the environment of [`cli`]:
    /// pointed at this app's broker, database schema, Redis prefix and topic.
    ///
    /// [`cli`]: TestApp::cli
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SURGE_KAFKA_BROKERS", &self.brokers)
            .env("SURGE_DATABASE_URL", surge_testkit::database_url())
            .env("SURGE_DATABASE_SCHEMA", &self.id)
            .env("SURGE_REDIS_PREFIX", &self.id)
            .env("SURGE_EVENTS_TOPIC", &self.topic)
            .env("SURGE_EVENTS_PARTITIONS", PARTITIONS.to_string())
            .env("SURGE_LOG", "warn");
        command
    }

    /// The Prometheus text of this process's `/metrics`.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.admin_url))
            .send()
            .await
            .expect("/metrics answers")
            .text()
            .await
            .expect("a text body")
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// The address a listener of `role` logged ("Listening."), waiting for it up to the deadline:
    /// for listeners `start` does not wait on (the demo of `surge dev`).
    pub async fn listening(&self, role: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let found = self
                .logs
                .lock()
                .unwrap()
                .iter()
                .filter_map(|line| listening_addr(line))
                .find(|(logged, _)| logged == role);
            if let Some((_, addr)) = found {
                return format!("http://{addr}");
            }
            assert!(
                Instant::now() < deadline,
                "no {role} listening:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

pub fn header<'a>(message: &'a OwnedMessage, name: &str) -> Option<&'a str> {
    use rdkafka::message::Headers;
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// Kafka's Java `Utils.murmur2`, written from the Java source, independently of librdkafka.
pub fn java_murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for chunk in chunks {
        let mut k = u32::from_le_bytes(chunk.try_into().unwrap());
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    match tail.len() {
        3 => {
            h ^= u32::from(tail[2]) << 16;
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        2 => {
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        1 => {
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The Java client's default partition for a keyed record.
pub fn java_partition(key: &str, partitions: i32) -> i32 {
    (java_murmur2(key.as_bytes()) & 0x7fff_ffff) % partitions
}

/// A write's consistency token, from the header the query API reads.
pub fn consistency_token(response: &reqwest::Response) -> String {
    response.headers()["x-consistency-token"]
        .to_str()
        .unwrap()
        .to_owned()
}

pub async fn json(response: reqwest::Response) -> Value {
    response.json().await.expect("JSON body")
}
