//! `--scenario baselines`: this machine's physical limits and the system's matching peaks,
//! measured in the same run, one after the other, so every figure is printed with its ratio to
//! its limit:
//!
//! | system figure                                   | its limit                                  |
//! |-------------------------------------------------|--------------------------------------------|
//! | write API `POST /v1/taps` (1 event), req/s      | a bare axum handler in this process, req/s |
//! | the same with an `Idempotency-Key` per request, as the TypeScript client sends | the same |
//! | write API `POST /v1/batch` (100 events), events/s | raw rdkafka produce, same settings, events/s |
//! | query API `GET /v1/me/feed`, req/s              | webdis `GET /LRANGE/<feed>/0/19`, req/s    |
//! | each projection's catch-up rate, events/s       | raw read of the events topic; binary COPY of ledger rows (PostgreSQL projections); pipelined ZINCRBY/LPUSH/LTRIM (Redis projections) |
//!
//! HTTP peaks are closed loop (same client, concurrency and duration for every server, see
//! [`http`]); the processors' catch-up is measured after the batched writes (see
//! [`processors`]). Scratch resources (a topic, a table, Redis keys) carry a unique name and
//! are removed after their phase, also when it fails. Each phase records the CPU each process
//! used (see [`cpu`]).

mod cpu;
mod http;
mod kafka;
mod processors;
mod report;
mod stores;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use surge_processors::projectors::feed::Feed;
use surge_processors::runtime::RedisProjection;
use surge_projections::feed::Feeds;
use surge_projections::naming;
use surge_projections::versions::VersionRegistry;

use super::crowd::sign;
use crate::infra;
use crate::settings::Common;

pub(crate) use cpu::parse_pids;
pub(crate) use report::print_summary;

/// Actions in a batched write: the most `POST /v1/batch` takes.
const BATCH_ACTIONS: usize = 100;
/// Longest the processors get to catch up after the batched writes.
const CATCH_UP_DEADLINE: Duration = Duration::from_secs(180);

pub(super) struct Baselines<'a> {
    pub(super) common: &'a Common,
    pub(super) client: &'a reqwest::Client,
    /// The write API instances; the write phases spread their requests over them.
    pub(super) write_urls: &'a [String],
    pub(super) query_url: &'a str,
    pub(super) bot_token: &'a str,
    /// The users whose initData the HTTP phases rotate over (the write API limits each user's
    /// rate), and whose ids key the raw records and rows.
    pub(super) users: Vec<i64>,
    pub(super) concurrency: usize,
    /// How long each phase runs.
    pub(super) duration: Duration,
    /// Every processor instance's `/metrics`, to measure their catch-up (none: not measured).
    pub(super) processors_urls: &'a [String],
    /// The `surge process` instances to hold during the write phases (see
    /// [`Baselines::write_phase`]).
    pub(super) hold_processors: &'a [u32],
    pub(super) cpu_pids: Vec<(String, u32)>,
}

/// A unique suffix for scratch names: lower-case hex, valid in topic, table and key names.
fn scratch_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()[20..].to_owned()
}

impl Baselines<'_> {
    /// Runs every phase; the report's JSON.
    pub(super) async fn run(&self) -> anyhow::Result<Value> {
        let brokers = self.common.kafka_brokers.as_deref().context(
            "the baselines scenario measures the broker the system uses: set SURGE_KAFKA_BROKERS",
        )?;
        let auths: Arc<Vec<String>> = Arc::new(
            self.users
                .iter()
                .map(|user| format!("tma {}", sign(self.bot_token, *user)))
                .collect(),
        );
        let mut phases = serde_json::Map::new();
        let mut scratch = serde_json::Map::new();
        // Start on a quiet machine: the processors finish what earlier scenarios left them.
        let urls = self.processors_urls;
        let settled_before = if urls.is_empty() {
            Value::Null
        } else {
            processors::catch_up(self.client, urls, CATCH_UP_DEADLINE, None).await
        };

        let bare = format!("http://{}", http::start_bare_axum()?);
        let peak = self.http_phase(
            &[bare],
            "/v1/taps",
            202,
            &auths,
            single_tap(),
            Keys::Omitted,
        );
        phases.insert(
            "bare_axum".into(),
            self.phase("bare axum POST /v1/taps, 202 + fixed body, req/s", peak)
                .await?,
        );
        let taps =
            |keys| self.http_phase(self.write_urls, "/v1/taps", 202, &auths, single_tap(), keys);
        let peak = taps(Keys::Omitted);
        let (mut single, _) = self
            .write_phase("write API POST /v1/taps (1 event), req/s", peak)
            .await?;
        // What the TypeScript client sends: a key of its own with every write, which costs the
        // write API its idempotency record (a lock, a read, the record before producing, the
        // response after).
        let peak = taps(Keys::PerRequest);
        let (keyed, _) = self
            .write_phase(
                "write API POST /v1/taps with an Idempotency-Key (1 event), req/s",
                peak,
            )
            .await?;
        phases.insert("write_single_keyed".into(), keyed);
        if !urls.is_empty() {
            // The single writes' backlog is applied before the batch, so that the catch-up
            // below measures the batch alone.
            single["processors_settled_after"] =
                processors::catch_up(self.client, urls, CATCH_UP_DEADLINE, None).await;
        }
        phases.insert("write_single".into(), single);
        let peak = self.http_phase(
            self.write_urls,
            "/v1/batch",
            202,
            &auths,
            batch_of_taps(),
            Keys::Omitted,
        );
        let (mut batch, applied_before) = self
            .write_phase("write API POST /v1/batch (100 events), events/s", peak)
            .await?;
        batch["requests_per_sec"] = batch["rate"].clone();
        batch["rate"] = json!(batch["rate"].as_f64().unwrap_or_default() * BATCH_ACTIONS as f64);
        phases.insert("write_batch".into(), batch);
        if !urls.is_empty() {
            let catch_up =
                processors::catch_up(self.client, urls, CATCH_UP_DEADLINE, applied_before);
            phases.insert(
                "processors_catch_up".into(),
                self.phase("processors applying the backlog, events/s", async {
                    Ok(catch_up.await)
                })
                .await?,
            );
        }

        let topic = self.common.events_topic.clone();
        let owned_brokers = brokers.to_owned();
        let read = tokio::task::spawn_blocking(move || kafka::raw_read(&owned_brokers, &topic));
        let mut mean_payload = 0;
        let read = self.phase("raw read of the events topic, records/s", async {
            let read = read.await??;
            mean_payload = read.mean_payload_bytes;
            Ok(read.json)
        });
        phases.insert("raw_read".into(), read.await?);

        let topic = kafka::scratch_topic(
            brokers,
            &self.common.events_topic,
            self.common.events_partitions,
            self.common.topic_replication,
        )
        .await?;
        scratch.insert("topic".into(), json!(topic));
        // Records the size of the events the write path produces (at least a tap's size).
        let payload = mean_payload.max(64);
        let produced = self.phase(
            "raw rdkafka produce, write-path settings, acks=all, records/s",
            kafka::raw_produce(brokers, &topic, &self.users, payload, self.duration),
        );
        let produced = produced.await;
        kafka::drop_topic(brokers, &topic).await?;
        phases.insert("raw_produce".into(), produced?);

        let pool = infra::database_pool(self.common, 1, Duration::from_secs(5)).await?;
        let table = stores::scratch_table(&pool).await?;
        scratch.insert("table".into(), json!(table));
        let copied = self.phase(
            "binary COPY of ledger rows, 1000 per transaction, rows/s",
            stores::copy_ledger_rows(&pool, &table, &self.users, self.duration),
        );
        let copied = copied.await;
        stores::drop_table(&pool, &table).await?;
        phases.insert("copy".into(), copied?);

        let redis = infra::redis(self.common).await?;
        let keys = stores::scratch_keys(&self.common.redis_prefix);
        scratch.insert("redis_keys".into(), json!(format!("{keys}:*")));
        let written = self.phase(
            "pipelined Redis ZINCRBY + LPUSH + LTRIM, 1000 events per pipeline, commands/s",
            stores::pipelined_writes(&redis, &keys, &self.users, self.duration),
        );
        let written = written.await;
        stores::drop_keys(&redis, &keys, &self.users).await?;
        phases.insert("redis_pipeline".into(), written?);

        phases.insert("webdis".into(), self.webdis_phase().await?);
        let query = [self.query_url.to_owned()];
        let feed = self.http_phase(
            &query,
            "/v1/me/feed?limit=20",
            200,
            &auths,
            None,
            Keys::Omitted,
        );
        phases.insert(
            "query_feed".into(),
            self.phase("query API GET /v1/me/feed (20 items), req/s", feed)
                .await?,
        );

        let ratios = report::ratios(&phases);
        Ok(json!({
            "run": {
                "scenario": "baselines",
                "phase_secs": self.duration.as_secs_f64(),
                "concurrency": self.concurrency,
                "users": self.users.len(),
                "write_urls": self.write_urls,
                "processor_instances": urls.len(),
                "query_url": self.query_url,
            },
            "settled_before": settled_before,
            "phases": phases,
            "ratios": ratios,
            "scratch": scratch,
        }))
    }

    /// Runs one phase, printing what it measures, and adds the CPU each process used to its
    /// JSON.
    async fn phase(
        &self,
        what: &str,
        measure: impl Future<Output = anyhow::Result<Value>>,
    ) -> anyhow::Result<Value> {
        println!("baselines: {what}...");
        let before = cpu::snapshot(&self.cpu_pids);
        let mut value = measure
            .await
            .with_context(|| format!("Failed to measure {what}"))?;
        value["what"] = json!(what);
        value["cpu"] = before.cores_since(&self.cpu_pids);
        Ok(value)
    }

    /// A write phase, with the processors held when asked ([`processors::Held`]): the write
    /// path then has the machine to itself, as the bare handler and raw produce had, and its
    /// writes become a backlog. With them, the events the processors had applied before it
    /// (what a catch-up counts from).
    async fn write_phase(
        &self,
        what: &str,
        measure: impl Future<Output = anyhow::Result<Value>>,
    ) -> anyhow::Result<(Value, Option<processors::Applied>)> {
        let applied = if self.hold_processors.is_empty() || self.processors_urls.is_empty() {
            None
        } else {
            processors::sample(self.client, self.processors_urls).await
        };
        let held = match &applied {
            Some(_) => Some(processors::Held::stop(self.hold_processors)?),
            None => None,
        };
        let mut value = self.phase(what, measure).await?;
        value["processors_held"] = json!(held.is_some());
        Ok((value, applied))
    }

    /// A closed-loop run against `path` on each of `bases` in turn: a POST of `body` when
    /// given, else a GET, as the users in turn, with `keys`.
    fn http_phase(
        &self,
        bases: &[String],
        path: &str,
        expect: u16,
        auths: &Arc<Vec<String>>,
        body: Option<String>,
        keys: Keys,
    ) -> impl Future<Output = anyhow::Result<Value>> + use<> {
        let urls: Vec<String> = bases.iter().map(|base| format!("{base}{path}")).collect();
        let auths = auths.clone();
        let (client, concurrency, duration) =
            (self.client.clone(), self.concurrency, self.duration);
        async move {
            let peak = http::closed_loop(&client, concurrency, duration, expect, move |c, i| {
                let auth = &auths[i as usize % auths.len()];
                let url = &urls[i as usize % urls.len()];
                let request = match &body {
                    Some(body) => c
                        .post(url)
                        .header("content-type", "application/json")
                        .body(body.clone()),
                    None => c.get(url),
                }
                .header("authorization", auth);
                match keys {
                    Keys::Omitted => request,
                    Keys::PerRequest => {
                        request.header("idempotency-key", uuid::Uuid::now_v7().to_string())
                    }
                }
            })
            .await?;
            Ok(peak.to_json())
        }
    }

    /// webdis answering the feed projection's own read (`LRANGE <feed key> 0 19`) for the same
    /// users, or why it was skipped.
    /// The key space of the feed's active version, whose lists the query API reads.
    async fn feed_base(&self) -> anyhow::Result<String> {
        let prefix = &self.common.redis_prefix;
        let registry = VersionRegistry::redis(infra::redis(self.common).await?, prefix, Feed::NAME);
        let active = registry.active().await?.map_or(1, |v| v.version);
        Ok(naming::keys_base(prefix, Feed::NAME, active))
    }

    async fn webdis_phase(&self) -> anyhow::Result<Value> {
        let redis_url = self.common.redis_url.clone();
        let started =
            tokio::task::spawn_blocking(move || surge_baselines::Webdis::start(&redis_url)).await?;
        let webdis = match started {
            Ok(webdis) => webdis,
            Err(error) => {
                let reason = format!("{error:#}");
                println!("baselines: webdis skipped: {reason}");
                return Ok(json!({ "skipped": reason }));
            }
        };
        let base = self.feed_base().await?;
        let feeds = Feeds {
            base: &base,
            partitions: self.common.events_partitions,
        };
        let paths: Arc<Vec<String>> = Arc::new(
            self.users
                .iter()
                .map(|user| {
                    let key = feeds.key(*user);
                    format!("http://{}/LRANGE/{key}/0/19", webdis.addr)
                })
                .collect(),
        );
        let (client, concurrency, duration) =
            (self.client.clone(), self.concurrency, self.duration);
        let peak = http::closed_loop(&client, concurrency, duration, 200, move |c, i| {
            c.get(&paths[i as usize % paths.len()])
        });
        let peak = self
            .phase("webdis GET /LRANGE/<feed key>/0/19, req/s", async {
                Ok(peak.await?.to_json())
            })
            .await;
        drop(webdis);
        peak
    }
}

/// Whether each request of a phase carries an `Idempotency-Key` of its own.
#[derive(Clone, Copy)]
enum Keys {
    Omitted,
    PerRequest,
}

fn single_tap() -> Option<String> {
    Some(json!({ "count": 1 }).to_string())
}

fn batch_of_taps() -> Option<String> {
    let taps = vec![json!({ "type": "taps", "count": 1 }); BATCH_ACTIONS];
    Some(json!({ "actions": taps }).to_string())
}
