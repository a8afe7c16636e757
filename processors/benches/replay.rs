//! Rebuild throughput beside the raw read rate of the same topic, measured in the same run.
//!
//! Pre-fills a fresh topic with `SURGE_BENCH_EVENTS` events (default 1 000 000) of
//! `SURGE_BENCH_USERS` users (default 100 000) over 12 partitions, exactly as the projector
//! benchmark does, and reads it back raw (every partition assigned, no decoding: the physical
//! limit of consuming it), both in one poll loop and with a queue and task per partition as a
//! rebuild reads; the faster of the two is the limit. Then, one projection at a time, it rebuilds the projection with
//! `surge replay`'s own code (`surge_processors::replay::run`) from offset zero to the switch,
//! against a serving version whose positions stand at the end of the topic, and times it. The raw
//! read is measured again at the end, so drift over the run shows. It prints events/s, the ratio
//! to the raw read, and the total, and writes them to `bench/results/replay-<unix time>.json`.
//! For profiles and wallets it also writes the same rows with a plain binary COPY (the projector
//! benchmark's store baseline, batches of the same size), the store's own limit.
//!
//! Goal (printed, never asserted): a full rebuild of the PostgreSQL projections at >= 50 % of
//! the raw read rate.
//!
//! Needs a Kafka-protocol broker at `SURGE_TEST_KAFKA_BROKERS` (default 127.0.0.1:19092;
//! `scripts/broker.sh start PORT DIR`), PostgreSQL at `SURGE_BENCH_DATABASE_URL` (default
//! postgres://postgres@127.0.0.1:5432/surge_bench) and Redis at `SURGE_REDIS_URL`.
//!
//! ```text
//! cargo bench -p surge-processors --bench replay
//! SURGE_BENCH_EVENTS=20000 cargo bench -p surge-processors --bench replay   # quick check
//! ```
//! Also: `SURGE_BENCH_PROJECTIONS` (a comma list, default all six), `SURGE_BENCH_BULK_BATCH`
//! (default 20000, as `surge replay`), `SURGE_BENCH_RESULTS`, `SURGE_BENCH_LOG`.

// Shared with the projector benchmark; this one uses the run's environment, the fill and the
// raw read.
#[allow(dead_code)]
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde_json::json;
use surge_processors::emit::Delivery;
use surge_processors::projectors::{CATALOG, SinkContext, StoreKind, Stores, entry};
use surge_processors::replay::{self, ReplayConfig, Report, Request};
use surge_processors::runtime::ProcessorMetrics;
use surge_projections::ProjectionId;
use surge_projections::naming;
use surge_projections::positions::postgres as positions;
use surge_projections::versions as registry;
use tokio::sync::watch;

use support::cpu::{self, CpuUse};
use support::env::{Env, Run, count, setting};
use support::read::{self, Extent};
use support::report::{Machine, load_average};
use support::{fill, report};

/// The `surge` binary's allocator, so the benchmark measures the code as it runs in production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PARTITIONS: i32 = 12;

pub(crate) struct Settings {
    run: Run,
    bulk_batch: usize,
    projections: Vec<String>,
}

impl std::ops::Deref for Settings {
    type Target = Run;
    fn deref(&self) -> &Run {
        &self.run
    }
}

impl Settings {
    fn from_env() -> anyhow::Result<Settings> {
        let all: Vec<&str> = CATALOG.iter().map(|e| e.name()).collect();
        let projections: Vec<String> = setting("SURGE_BENCH_PROJECTIONS", &all.join(","))
            .split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect();
        if let Some(unknown) = projections.iter().find(|p| entry(p).is_err()) {
            bail!("SURGE_BENCH_PROJECTIONS names {unknown:?}, which is not a projection");
        }
        Ok(Settings {
            run: Run::from_env()?,
            bulk_batch: usize::try_from(count("SURGE_BENCH_BULK_BATCH", "20000")?)?,
            projections,
        })
    }
}

fn progress(line: &str) {
    eprintln!("[replay bench] {line}");
}

/// One projection's rebuild.
struct Rebuilt {
    name: &'static str,
    store: StoreKind,
    report: Report,
    /// Cores each process kept busy during the rebuild.
    cpu: CpuUse,
    /// The store's own limit for the same writes (binary COPY of the rows), where the
    /// projector benchmark has one.
    store_limit: Option<f64>,
}

impl Rebuilt {
    /// Events per second from the start to the switch (the new version complete).
    fn rate(&self) -> f64 {
        self.report.applied as f64 / self.report.until_switch.as_secs_f64().max(f64::EPSILON)
    }
}

/// Fills the topic and returns its extent.
async fn fill_topic(settings: &Settings, env: &Env) -> anyhow::Result<(Extent, fill::Mix)> {
    let now_ms = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
    progress(&format!(
        "generating and producing {} events of {} users",
        settings.events, settings.users
    ));
    let (events, mix) = fill::generate(settings.events, settings.users, now_ms);
    let payloads = fill::encode_all(&env.codec, &events).await?;
    let (brokers, topic) = (settings.brokers.clone(), env.topic.clone());
    let (_, ends) =
        tokio::task::spawn_blocking(move || fill::produce(&brokers, &topic, &events, &payloads))
            .await??;
    let extent = Extent {
        partitions: (0..PARTITIONS)
            .map(|p| (p, 0, ends.get(&p).copied().unwrap_or(0)))
            .collect(),
    };
    if extent.events() != settings.events as i64 {
        bail!(
            "the topic holds {} events, {} were produced",
            extent.events(),
            settings.events
        );
    }
    Ok((extent, mix))
}

/// The raw read rate: the faster of two ways of reading, one poll loop over every partition (as
/// the processors read) and a queue and task per partition (as a rebuild reads).
async fn raw_read(settings: &Settings, env: &Env, extent: &Extent) -> anyhow::Result<f64> {
    let (brokers, topic, ext) = (settings.brokers.clone(), env.topic.clone(), extent.clone());
    let stats =
        tokio::task::spawn_blocking(move || read::raw_read(&brokers, &topic, &ext)).await??;
    let single = stats.messages as f64 / stats.secs;
    let parallel = parallel_read(settings, env, extent).await?;
    progress(&format!(
        "raw read of {} records: {single:.0}/s in one poll loop, {parallel:.0}/s with a queue per partition",
        stats.messages
    ));
    Ok(single.max(parallel))
}

/// Reads every partition to its end through its own queue and task, counting and nothing else,
/// with the rebuild's consumer settings.
async fn parallel_read(settings: &Settings, env: &Env, extent: &Extent) -> anyhow::Result<f64> {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::{Message, Offset, TopicPartitionList};
    let consumer: std::sync::Arc<StreamConsumer> = std::sync::Arc::new(
        surge_kafka::manual_commit_consumer_config(
            &settings.brokers,
            &format!("{}.bench-parallel-read", env.topic),
        )
        .set("isolation.level", "read_committed")
        // The rebuild's own setting (the processors' default, SURGE_PROCESS_FETCH_WAIT_MS).
        .set("fetch.wait.max.ms", "100")
        .create()?,
    );
    let mut assignment = TopicPartitionList::new();
    for &(partition, low, _) in &extent.partitions {
        assignment.add_partition_offset(&env.topic, partition, Offset::Offset(low))?;
    }
    let started = Instant::now();
    consumer.assign(&assignment)?;
    let mut tasks = tokio::task::JoinSet::new();
    for &(partition, low, high) in &extent.partitions {
        let queue = consumer
            .split_partition_queue(&env.topic, partition)
            .context("no such partition")?;
        // As a rebuild does: a seek after the split, so the queue starts exactly here.
        consumer.seek(
            &env.topic,
            partition,
            Offset::Offset(low),
            Duration::from_secs(10),
        )?;
        tasks.spawn(async move {
            let mut last = low - 1;
            while last + 1 < high {
                match tokio::time::timeout(Duration::from_secs(60), queue.recv()).await {
                    Ok(Ok(message)) => last = message.offset(),
                    Ok(Err(error)) => bail!("reading partition {partition}: {error}"),
                    Err(_) => bail!("reading partition {partition} stalled at offset {last}"),
                }
            }
            anyhow::Ok(high - low)
        });
    }
    let main = consumer.clone();
    let serve = tokio::spawn(async move { while main.recv().await.is_ok() {} });
    let mut records = 0;
    while let Some(done) = tasks.join_next().await {
        records += done??;
    }
    serve.abort();
    Ok(records as f64 / started.elapsed().as_secs_f64())
}

/// Every event of the topic decoded, per partition, for the store baselines.
async fn decode(
    settings: &Settings,
    env: &Env,
    extent: &Extent,
) -> anyhow::Result<Vec<Vec<surge_processors::runtime::Record>>> {
    let (brokers, topic, extent, codec) = (
        settings.brokers.clone(),
        env.topic.clone(),
        extent.clone(),
        env.codec.clone(),
    );
    let runtime = tokio::runtime::Handle::current();
    let (_, records) = tokio::task::spawn_blocking(move || {
        read::read_decoded(&brokers, &topic, &extent, &codec, &runtime)
    })
    .await??;
    Ok(records)
}

/// Makes version 1 of `name` the serving version, standing at the end of the topic, so the
/// rebuild has the whole topic to catch up with. Its tables or keys are not filled: only its
/// positions matter to a rebuild, and the switch fences and drops it.
async fn serving_at_end(
    stores: &Stores,
    name: &'static str,
    topic: &str,
    extent: &Extent,
) -> anyhow::Result<()> {
    let entry = entry(name)?;
    stores
        .versions(entry)
        .ensure_active(entry.revision())
        .await?;
    for &(partition, _, end) in &extent.partitions {
        match entry.store() {
            StoreKind::Postgres => {
                // A claim (generation 1), then the position moved to the end.
                positions::claim(&stores.pool, name, 1, topic, &[partition]).await?;
                let mut tx = stores.pool.begin().await?;
                positions::advance_many(&mut tx, name, 1, topic, &[(partition, end)]).await?;
                tx.commit().await?;
            }
            StoreKind::Redis => {
                let version = naming::keys_base(&stores.redis_prefix, name, 1);
                let base = naming::partition_keys_base(&version, partition);
                let mut redis = stores.redis.clone();
                let field = naming::position_field(topic, partition);
                let _: () = redis::pipe()
                    .hset(naming::positions_key(&base), &field, end)
                    .hset(naming::generations_key(&base), &field, 1)
                    .query_async(&mut redis)
                    .await?;
            }
        }
    }
    Ok(())
}

async fn rebuild(
    settings: &Settings,
    env: &Env,
    name: &'static str,
    extent: &Extent,
) -> anyhow::Result<Rebuilt> {
    let entry = entry(name)?;
    serving_at_end(&env.stores, name, &env.topic, extent).await?;
    let context = SinkContext {
        stores: env.stores.clone(),
        codec: env.codec.clone(),
        brokers: settings.brokers.clone(),
        topic: env.topic.clone(),
        derived_delivery: Delivery::Idempotent,
        metrics: ProcessorMetrics::new(&prometheus::Registry::new()),
        game: surge_schemas::GameConfig::default(),
        templates: std::sync::Arc::new(surge_processors::notifications::Templates::builtin()),
    };
    let config = ReplayConfig {
        bulk_batch: settings.bulk_batch,
        drop_grace: Duration::ZERO,
        handover_timeout: Duration::ZERO,
        ..ReplayConfig::new(&settings.brokers, &env.topic)
    };
    let request = Request {
        projection: name.to_owned(),
        from_ms: None,
        keep_old: false,
        restart: false,
    };
    let (tx, mut snapshots) = watch::channel::<Option<replay::Snapshot>>(None);
    let printer = tokio::spawn(async move {
        let mut last = Instant::now();
        while snapshots.changed().await.is_ok() {
            if last.elapsed() >= Duration::from_secs(5) {
                last = Instant::now();
                if let Some(s) = snapshots.borrow_and_update().clone() {
                    progress(&format!(
                        "{name}: {}/{} events, {:.0}/s",
                        s.done, s.target, s.rate
                    ));
                }
            }
        }
    });
    let before = cpu::sample();
    let report = replay::run(request, &context, config, tx).await?;
    let cpu = before.until(&cpu::sample());
    let _ = printer.await;
    if report.applied != extent.events() {
        bail!(
            "{name}: the rebuild applied {} of {} events",
            report.applied,
            extent.events()
        );
    }
    Ok(Rebuilt {
        name,
        store: entry.store(),
        report,
        cpu,
        store_limit: None,
    })
}

fn print(rebuilt: &[Rebuilt], read_before: f64, read_after: f64) {
    let limit = read_before.min(read_after);
    println!(
        "\nraw read of the topic (the physical limit): {read_before:.0} records/s before, {read_after:.0} after; ratios use the lower\n"
    );
    println!(
        "{:<12} {:<9} {:>10} {:>9} {:>12} {:>7}  {:<15} {:>16}  cores busy: rebuild / PostgreSQL / Redis / broker / other",
        "projection", "store", "events", "secs", "events/s", "ratio", "goal", "COPY events/s"
    );
    for r in rebuilt {
        let ratio = r.rate() / limit;
        let goal = match r.store {
            StoreKind::Postgres if ratio >= report::GOAL => ">= 0.50 met",
            StoreKind::Postgres => ">= 0.50 missed",
            StoreKind::Redis => "",
        };
        let c = &r.cpu;
        let copy = r
            .store_limit
            .map_or(String::new(), |l| format!("{l:.0} ({:.2})", r.rate() / l));
        println!(
            "{:<12} {:<9} {:>10} {:>9.2} {:>12.0} {:>7.2}  {goal:<15} {copy:>16}  {:.2} / {:.2} / {:.2} / {:.2} / {:.2}",
            r.name,
            r.store.as_str(),
            r.report.applied,
            r.report.until_switch.as_secs_f64(),
            r.rate(),
            ratio,
            c.bench / 100.0,
            c.postgres / 100.0,
            c.redis / 100.0,
            c.broker / 100.0,
            c.other / 100.0,
        );
    }
    for (label, store) in [("all", None), ("PostgreSQL", Some(StoreKind::Postgres))] {
        let chosen: Vec<&Rebuilt> = rebuilt
            .iter()
            .filter(|r| store.is_none_or(|s| r.store == s))
            .collect();
        let secs: f64 = chosen
            .iter()
            .map(|r| r.report.until_switch.as_secs_f64())
            .sum();
        let events: i64 = chosen.iter().map(|r| r.report.applied).sum();
        println!(
            "total, {label} projections one after another: {events} events in {secs:.2} s ({:.0}/s, {:.2} of the raw read)",
            events as f64 / secs,
            events as f64 / secs / limit
        );
    }
}

fn write(
    settings: &Settings,
    unix_time: u64,
    machine: &Machine,
    mix: &fill::Mix,
    rebuilt: &[Rebuilt],
    reads: (f64, f64),
) -> anyhow::Result<PathBuf> {
    let rows: Vec<_> = rebuilt
        .iter()
        .map(|r| {
            json!({
                "projection": r.name,
                "store": r.store.as_str(),
                "events": r.report.applied,
                "secs_to_switch": r.report.until_switch.as_secs_f64(),
                "secs_total": r.report.elapsed.as_secs_f64(),
                "events_per_sec": r.rate(),
                "ratio_to_raw_read": r.rate() / reads.0.min(reads.1),
                "binary_copy_events_per_sec": r.store_limit,
                "cores_busy": {
                    "rebuild": r.cpu.bench / 100.0, "postgres": r.cpu.postgres / 100.0,
                    "redis": r.cpu.redis / 100.0, "broker": r.cpu.broker / 100.0,
                    "other": r.cpu.other / 100.0,
                },
            })
        })
        .collect();
    let body = json!({
        "unix_time": unix_time,
        "machine": { "cpus": machine.cpus, "memory_gib": machine.memory_gib, "load_at_start": machine.load_at_start, "load_at_end": machine.load_at_end },
        "conditions": {
            "events": settings.events, "users": settings.users, "partitions": PARTITIONS,
            "bulk_batch": settings.bulk_batch, "brokers": settings.brokers,
            "mix": { "taps": mix.taps, "sessions": mix.sessions, "checkins": mix.checkins, "profile_updates": mix.profile_updates },
        },
        "raw_read_per_sec": { "before": reads.0, "after": reads.1 },
        "rebuilds": rows,
    });
    std::fs::create_dir_all(&settings.results)?;
    let path = settings.results.join(format!("replay-{unix_time}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&body)?)?;
    Ok(path)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("SURGE_BENCH_LOG").unwrap_or_else(|_| "warn".to_owned()),
        ))
        .with_writer(std::io::stderr)
        .init();
    let settings = Settings::from_env()?;
    let unix_time = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut machine = Machine::probe();
    let env = Env::setup(&settings, unix_time).await?;
    let mut conn = env.stores.pool.acquire().await?;
    registry::migrate(&mut conn).await?;
    drop(conn);
    let outcome = async {
        let (extent, mix) = fill_topic(&settings, &env).await?;
        let read_before = raw_read(&settings, &env, &extent).await?;
        let mut rebuilt = Vec::new();
        let mut decoded = None;
        for name in CATALOG
            .iter()
            .map(|e| e.name())
            .filter(|n| settings.projections.iter().any(|p| p == n))
        {
            progress(&format!("rebuilding {name}"));
            let mut done = rebuild(&settings, &env, name, &extent).await?;
            progress(&format!("{name}: {:.0} events/s", done.rate()));
            let copy_baseline = match ProjectionId::named(name) {
                Some(id @ (ProjectionId::Profiles | ProjectionId::Wallets)) => Some(id),
                _ => None,
            };
            if let Some(id) = copy_baseline {
                if decoded.is_none() {
                    decoded = Some(decode(&settings, &env, &extent).await?);
                }
                let records = decoded.as_deref().expect("decoded above");
                let (pool, batch) = (&env.stores.pool, settings.bulk_batch);
                let baseline = match id {
                    ProjectionId::Profiles => {
                        support::baseline_pg::profiles(pool, records, batch).await?
                    }
                    _ => support::baseline_pg::wallets(pool, records, batch).await?,
                };
                progress(&format!(
                    "{name}: binary COPY of its rows: {:.0} events/s",
                    baseline.rate()
                ));
                done.store_limit = Some(baseline.rate());
            }
            rebuilt.push(done);
        }
        let read_after = raw_read(&settings, &env, &extent).await?;
        anyhow::Ok((mix, rebuilt, (read_before, read_after)))
    }
    .await;
    progress("cleaning up");
    env.teardown(&settings).await;
    let (mix, rebuilt, reads) = outcome?;
    machine.load_at_end = load_average();
    print(&rebuilt, reads.0, reads.1);
    let path = write(&settings, unix_time, &machine, &mix, &rebuilt, reads)?;
    println!("\nwritten to {}", path.display());
    Ok(())
}
