//! What the stores spent a run on, seen from the servers:
//! - PostgreSQL: `pg_stat_activity` sampled every [`PG_SAMPLE_EVERY`] on a connection of its own
//!   (pg_stat_statements needs a preload this benchmark may not impose), for the connections
//!   that carry the run's application name: which statement was in flight, and whether it was
//!   running on CPU or waiting (e.g. `IO:WALSync` at COMMIT), or none was (the client's turn).
//! - Redis: `INFO commandstats` before and after (nothing is reset): server time per command.
//!   Commands a script runs count both under their own name and inside `evalsha`.
//!
//! Both servers may be shared with other work: the Redis figures then include it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::{Connection, PgConnection};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub(crate) const PG_SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// One line of a breakdown: a share of the run's wall time.
#[derive(Debug, Clone)]
pub(crate) struct Slice {
    pub(crate) what: String,
    /// Percent of the run (of the samples, for PostgreSQL; of wall time, for Redis).
    pub(crate) share: f64,
    pub(crate) note: String,
}

/// Samples PostgreSQL's activity until [`PgSampler::finish`].
pub(crate) struct PgSampler {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<HashMap<String, u64>>>,
}

const SAMPLE: &str = r"
SELECT CASE WHEN state = 'active'
            THEN coalesce(wait_event_type || ':' || wait_event, 'CPU')
            ELSE state END,
       left(regexp_replace(regexp_replace(query, '^(\s*--[^\n]*\n)+', ''), '\s+', ' ', 'g'), 48)
FROM pg_stat_activity
WHERE application_name = $1 AND state IN ('active', 'idle in transaction')
";

impl PgSampler {
    pub(crate) async fn start(database_url: &str, application_name: &str) -> anyhow::Result<Self> {
        let mut conn = PgConnection::connect(database_url)
            .await
            .context("Failed to connect the activity sampler")?;
        let name = application_name.to_owned();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut counts: HashMap<String, u64> = HashMap::new();
            let mut tick = tokio::time::interval(PG_SAMPLE_EVERY);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {}
                }
                let rows: Vec<(String, String)> = sqlx::query_as(SAMPLE)
                    .bind(&name)
                    .fetch_all(&mut conn)
                    .await?;
                *counts.entry(String::new()).or_default() += 1; // samples taken
                if rows.is_empty() {
                    *counts
                        .entry("no statement in flight (client's turn)".to_owned())
                        .or_default() += 1;
                }
                for (state, query) in rows {
                    let what = if state == "idle in transaction" {
                        "idle in transaction (client's turn)".to_owned()
                    } else {
                        format!("{state:<18} {query}")
                    };
                    *counts.entry(what).or_default() += 1;
                }
            }
            conn.close().await?;
            Ok(counts)
        });
        Ok(PgSampler { stop, task })
    }

    /// The states seen, most frequent first, as shares of the samples.
    pub(crate) async fn finish(self) -> anyhow::Result<Vec<Slice>> {
        let _ = self.stop.send(());
        let mut counts = self.task.await.context("The sampler panicked")??;
        let samples = counts.remove("").unwrap_or(0).max(1) as f64;
        let mut slices: Vec<Slice> = counts
            .into_iter()
            .map(|(what, n)| Slice {
                what,
                share: n as f64 / samples * 100.0,
                note: format!("{n} samples"),
            })
            .collect();
        slices.sort_by(|a, b| b.share.total_cmp(&a.share));
        Ok(slices)
    }
}

/// Redis `INFO commandstats`: per command, calls and microseconds.
pub(crate) struct RedisStats {
    at: Instant,
    commands: HashMap<String, (u64, u64)>,
}

impl RedisStats {
    pub(crate) async fn take(redis: &surge_redis::Redis) -> anyhow::Result<Self> {
        let mut redis = redis.clone();
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut redis)
            .await
            .context("Failed to read Redis commandstats")?;
        let commands = info
            .lines()
            .filter_map(|line| {
                let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                let field = |key: &str| {
                    stats
                        .split(',')
                        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                        .and_then(|v| v.parse::<u64>().ok())
                };
                Some((name.to_owned(), (field("calls")?, field("usec")?)))
            })
            .collect();
        Ok(RedisStats {
            at: Instant::now(),
            commands,
        })
    }

    /// Server time per command between `self` and `later`, as shares of the wall time between
    /// them, largest first; commands under 1 % are left out.
    pub(crate) fn until(&self, later: &RedisStats) -> Vec<Slice> {
        let wall_usec = later.at.duration_since(self.at).as_secs_f64() * 1e6;
        let mut slices: Vec<Slice> = later
            .commands
            .iter()
            .filter_map(|(name, &(calls, usec))| {
                let (calls0, usec0) = self.commands.get(name).copied().unwrap_or((0, 0));
                let (calls, usec) = (calls.saturating_sub(calls0), usec.saturating_sub(usec0));
                let share = usec as f64 / wall_usec.max(1.0) * 100.0;
                (calls > 0 && share >= 1.0).then(|| Slice {
                    what: name.clone(),
                    share,
                    note: format!(
                        "{calls} calls, {:.1} µs per call",
                        usec as f64 / calls as f64
                    ),
                })
            })
            .collect();
        slices.sort_by(|a, b| b.share.total_cmp(&a.share));
        slices
    }
}
