//! Projector throughput beside the stores' raw write speed, measured in the same run.
//!
//! Pre-fills a fresh topic with `SURGE_BENCH_EVENTS` events (default 1 000 000) of
//! `SURGE_BENCH_USERS` users (default 100 000) over 12 partitions, encoded with the real codec
//! through an embedded schema registry, and measures raw produce and raw read. Then, one at a
//! time, it runs each projection through the real runtime (`projectors::start`) until its stored
//! positions reach the topic's end, and right after it the baseline for the same events at the
//! same batch size: a plain binary COPY of the rows the projection writes (PostgreSQL), or the
//! commands it issues as plain pipelines (Redis). It prints the rates and their ratios, and
//! writes them to `bench/results/projectors-<unix time>.json`.
//!
//! Goals (printed, never asserted): PostgreSQL projectors >= 50 % of COPY, Redis projectors
//! >= 50 % of pipelined raw writes.
//!
//! Needs a Kafka-protocol broker at `SURGE_TEST_KAFKA_BROKERS` (default 127.0.0.1:19092;
//! `scripts/broker.sh start PORT DIR` starts one), PostgreSQL at `SURGE_BENCH_DATABASE_URL`
//! (default postgres://postgres@127.0.0.1:5432/surge_bench, created if missing) and Redis at
//! `SURGE_REDIS_URL` (default redis://127.0.0.1:6379). Every run uses its own topic, schema and
//! key prefix, and removes them at the end.
//!
//! ```text
//! cargo bench -p surge-processors --bench projectors
//! SURGE_BENCH_EVENTS=20000 cargo bench -p surge-processors --bench projectors   # quick check
//! ```
//! Also: `SURGE_BENCH_BATCH` (batch_max, default the processors' 1000), `SURGE_BENCH_PROJECTIONS` (a comma
//! list, default all), `SURGE_BENCH_RESULTS` (folder for the JSON), `SURGE_BENCH_LOG`.

mod support;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use sqlx::PgPool;
use surge_processors::projectors::feed::Feed;
use surge_processors::projectors::leaderboard::Leaderboard;
use surge_processors::runtime::{ProcessorConfig, Record, processor_defaults};
use surge_projections::ProjectionId;

use support::env::{Env, Run, count, setting};
use support::report::{Conditions, Machine, Report, Row, Stage, load_average};
use support::run::PROJECTIONS;
use support::{Baseline, baseline_pg, baseline_redis, fill, read, run};

/// The `surge` binary's allocator, so the benchmark measures the code as it runs in production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PARTITIONS: i32 = 12;

struct Settings {
    run: Run,
    batch_max: usize,
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
        let projections = setting(
            "SURGE_BENCH_PROJECTIONS",
            &PROJECTIONS.map(|p| p.name).join(","),
        )
        .split(',')
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>();
        if let Some(unknown) = projections
            .iter()
            .find(|p| !PROJECTIONS.iter().any(|k| k.name == p.as_str()))
        {
            bail!("SURGE_BENCH_PROJECTIONS names {unknown:?}, which is not a projection");
        }
        Ok(Settings {
            run: Run::from_env()?,
            batch_max: usize::try_from(count(
                "SURGE_BENCH_BATCH",
                &processor_defaults::BATCH_MAX.to_string(),
            )?)?,
            projections,
        })
    }
}

fn progress(line: &str) {
    eprintln!("[projectors bench] {line}");
}

fn stage(name: &'static str, events: u64, secs: f64, note: impl Into<String>) -> Stage {
    let rate = events as f64 / secs.max(f64::EPSILON);
    progress(&format!(
        "{name}: {events} events in {secs:.2} s ({rate:.0}/s)"
    ));
    Stage {
        name,
        events,
        secs,
        note: note.into(),
    }
}

async fn bench(
    settings: &Settings,
    env: &Env,
) -> anyhow::Result<(Conditions, Vec<Stage>, Vec<Row>)> {
    let mut stages = Vec::new();
    let now_ms = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
    progress(&format!(
        "generating {} events of {} users",
        settings.events, settings.users
    ));
    let (events, mix) = fill::generate(settings.events, settings.users, now_ms);
    let started = Instant::now();
    let payloads = fill::encode_all(&env.codec, &events).await?;
    let bytes: usize = payloads.iter().map(Vec::len).sum();
    stages.push(stage(
        "avro encode",
        events.len() as u64,
        started.elapsed().as_secs_f64(),
        format!(
            "Codec::encode, {:.0} bytes per event on average",
            bytes as f64 / events.len() as f64
        ),
    ));
    let (brokers, topic) = (settings.brokers.clone(), env.topic.clone());
    let (produce_secs, ends) =
        tokio::task::spawn_blocking(move || fill::produce(&brokers, &topic, &events, &payloads))
            .await??;
    stages.push(stage(
        "raw produce",
        settings.events as u64,
        produce_secs,
        "rdkafka, keyed by user id (murmur2), acks=all, idempotent, linger 20 ms (not the projections' work)",
    ));

    // A fresh topic: every partition starts at offset 0.
    let extent = read::Extent {
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
    let (brokers, topic, ext) = (settings.brokers.clone(), env.topic.clone(), extent.clone());
    let raw = tokio::task::spawn_blocking(move || read::raw_read(&brokers, &topic, &ext)).await??;
    stages.push(stage(
        "raw read",
        raw.messages,
        raw.secs,
        format!("BaseConsumer, all partitions assigned from the start, {:.1} MB of payloads: the physical limit of reading", raw.bytes as f64 / 1e6),
    ));
    let (brokers, topic, ext, codec) = (
        settings.brokers.clone(),
        env.topic.clone(),
        extent.clone(),
        env.codec.clone(),
    );
    let runtime = tokio::runtime::Handle::current();
    let (decoded, records) = tokio::task::spawn_blocking(move || {
        read::read_decoded(&brokers, &topic, &ext, &codec, &runtime)
    })
    .await??;
    stages.push(stage(
        "read + decode",
        decoded.messages,
        decoded.secs,
        "as above, then Codec::decode per event, one at a time (what every processor does before applying)",
    ));

    let conditions = Conditions {
        events: settings.events,
        users: settings.users,
        partitions: PARTITIONS,
        batch_max: settings.batch_max,
        batch_wait_ms: ProcessorConfig::new("", "").batch_wait.as_millis(),
        mix,
        brokers: settings.brokers.clone(),
        topic: env.topic.clone(),
        postgres: describe_postgres(&env.stores.pool).await?,
        redis: describe_redis(&env.stores.redis).await?,
    };

    let mut rows = Vec::new();
    for projection in PROJECTIONS
        .iter()
        .filter(|p| settings.projections.iter().any(|n| n == p.name))
    {
        progress(&format!("running {} through the runtime", projection.name));
        let mut config = ProcessorConfig::new(&settings.brokers, &env.topic);
        config.batch_max = settings.batch_max;
        let probe = run::Probe {
            database_url: &settings.database_url,
            application_name: &env.id,
        };
        let stats = run::run(
            projection,
            &env.stores,
            env.codec.clone(),
            config,
            &extent,
            &probe,
        )
        .await?;
        run::check(projection.name, &stats)?;
        progress(&format!(
            "{}: {:.0} events/s ({:.2} s after {:.2} s start-up)",
            projection.name,
            stats.rate(),
            stats.steady_secs,
            stats.startup_secs
        ));
        let baseline = baseline(projection.name, settings, env, &records).await?;
        progress(&format!(
            "{} baseline: {:.0} events/s",
            projection.name,
            baseline.rate()
        ));
        rows.push(Row {
            projection: *projection,
            stats,
            baseline,
        });
    }
    Ok((conditions, stages, rows))
}

async fn baseline(
    name: &str,
    settings: &Settings,
    env: &Env,
    records: &[Vec<Record>],
) -> anyhow::Result<Baseline> {
    let pool = &env.stores.pool;
    let raw_prefix = format!("{}-raw", env.stores.redis_prefix);
    let redis = &env.stores.redis;
    let batch = settings.batch_max;
    let Some(id) = ProjectionId::named(name) else {
        bail!("no projection named {name}");
    };
    match id {
        ProjectionId::Profiles => baseline_pg::profiles(pool, records, batch).await,
        ProjectionId::Wallets => baseline_pg::wallets(pool, records, batch).await,
        ProjectionId::Leaderboard => {
            baseline_redis::pipelined(&Leaderboard, redis, &raw_prefix, records, batch).await
        }
        ProjectionId::Feed => {
            baseline_redis::pipelined(&Feed, redis, &raw_prefix, records, batch).await
        }
        // A baseline is hand-written store code doing one projection's writes without the
        // runtime; the others (a new one included) have none yet.
        _ => bail!("no baseline for {name}"),
    }
}

async fn describe_postgres(pool: &PgPool) -> anyhow::Result<String> {
    let show = |setting: &'static str| async move {
        sqlx::query_scalar::<_, String>(&format!("SHOW {setting}"))
            .fetch_one(pool)
            .await
    };
    Ok(format!(
        "PostgreSQL {} (synchronous_commit={}, shared_buffers={}; projection and baseline tables logged)",
        show("server_version").await?,
        show("synchronous_commit").await?,
        show("shared_buffers").await?,
    ))
}

async fn describe_redis(redis: &surge_redis::Redis) -> anyhow::Result<String> {
    let mut redis = redis.clone();
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut redis)
        .await?;
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("?")
        .trim()
        .to_owned();
    let aof: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("appendonly")
        .query_async(&mut redis)
        .await?;
    Ok(format!(
        "Redis {version} (appendonly={})",
        aof.get(1).map_or("?", String::as_str)
    ))
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
    progress(&format!(
        "topic {}, schema {}, Redis prefix {}",
        env.topic, env.id, env.stores.redis_prefix
    ));
    let outcome = bench(&settings, &env).await;
    progress("cleaning up");
    env.teardown(&settings).await;
    let (conditions, stages, rows) = outcome?;
    machine.load_at_end = load_average();
    let report = Report {
        unix_time,
        machine,
        conditions,
        stages,
        rows,
    };
    report.print();
    let path = report.write(&settings.results)?;
    println!("\nwritten to {}", path.display());
    Ok(())
}
