//! The three servers under load: the real query API, a bare axum handler returning the same
//! bytes, and webdis over the same Redis. Servers written in Rust run on a 2-thread runtime of
//! their own, as a deployed instance on this machine would.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use bytes::Bytes;
use redis::aio::ConnectionManager;
use secrecy::SecretString;
use surge_projections::query_api::{self, QueryApiConfig};
use surge_telegram_auth::Validator;

use super::data::{BOT_TOKEN, Fixture};

/// Serves `make_app()` on a fresh 2-thread runtime on its own thread.
fn serve_on_own_runtime<F>(make_app: F) -> anyhow::Result<SocketAddr>
where
    F: FnOnce() -> futures::future::BoxFuture<'static, anyhow::Result<Router>> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("server runtime");
        runtime.block_on(async move {
            let started = async {
                let app = make_app().await?;
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                anyhow::Ok((app, listener))
            };
            match started.await {
                Ok((app, listener)) => {
                    let _ = tx.send(listener.local_addr().map_err(Into::into));
                    let _ = axum::serve(listener, app).await;
                }
                Err(error) => {
                    let _ = tx.send(Err(error));
                }
            }
        });
    });
    rx.recv().context("server thread")?
}

pub(crate) struct QueryApi {
    pub(crate) addr: SocketAddr,
}

impl QueryApi {
    /// The query API with its leaderboard cache set to `leaderboard_cache` (zero: none).
    pub(crate) async fn start(
        fixture: &Fixture,
        leaderboard_cache: Duration,
    ) -> anyhow::Result<QueryApi> {
        let (database_url, redis_url, prefix) = (
            fixture.database_url.clone(),
            fixture.redis_url.clone(),
            fixture.prefix.clone(),
        );
        let addr = serve_on_own_runtime(move || {
            Box::pin(async move {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(1))
                    .connect(&database_url)
                    .await?;
                let redis = ConnectionManager::new(redis::Client::open(redis_url)?).await?;
                let validator = Validator::hmac(
                    &SecretString::from(BOT_TOKEN.to_owned()),
                    Duration::from_secs(86_400),
                );
                let config = QueryApiConfig {
                    leaderboard_cache,
                    ..QueryApiConfig::new("bench.events", prefix)
                };
                Ok(query_api::app(config, validator, pool, redis))
            })
        })?;
        Ok(QueryApi { addr })
    }
}

pub(crate) struct Bare {
    pub(crate) addr: SocketAddr,
}

impl Bare {
    /// `GET /<name>` answers `body` for each `(name, body)`.
    pub(crate) fn start(bodies: &[(&str, Bytes)]) -> anyhow::Result<Bare> {
        let routes: Vec<(String, Bytes)> = bodies
            .iter()
            .map(|(name, body)| (format!("/{name}"), body.clone()))
            .collect();
        let addr = serve_on_own_runtime(move || {
            Box::pin(async move {
                let mut router = Router::new();
                for (path, body) in routes {
                    router = router.route(
                        &path,
                        get(move || {
                            let body = body.clone();
                            async move { ([(CONTENT_TYPE, "application/json")], body) }
                        }),
                    );
                }
                Ok(router)
            })
        })?;
        Ok(Bare { addr })
    }
}

pub(crate) struct Webdis {
    pub(crate) addr: SocketAddr,
    process: Child,
    _dir: TempDir,
}

impl Webdis {
    pub(crate) fn start(redis_url: &str) -> anyhow::Result<Webdis> {
        let url = url::Url::parse(redis_url).context("SURGE_REDIS_URL")?;
        let port = StdListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = TempDir::new("webdis")?;
        let config = serde_json::json!({
            "redis_host": url.host_str().unwrap_or("127.0.0.1"),
            "redis_port": url.port().unwrap_or(6379),
            "redis_auth": null,
            "http_host": "127.0.0.1",
            "http_port": port,
            "threads": 2,
            "pool_size": 20,
            "daemonize": false,
            "database": 0,
            "verbosity": 1,
            "logfile": dir.0.join("webdis.log"),
        });
        let config_path = dir.0.join("webdis.json");
        std::fs::write(&config_path, config.to_string())?;
        let process = Command::new("webdis")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("webdis is not installed: apt-get install webdis")?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                bail!("webdis did not open {addr}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Webdis {
            addr,
            process,
            _dir: dir,
        })
    }
}

impl Drop for Webdis {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> anyhow::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("surge-bench-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
