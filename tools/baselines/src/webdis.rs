//! webdis (Debian package `webdis`), a C HTTP gateway to Redis: `GET /LRANGE/key/0/19` answers
//! a Redis command as JSON. The ceiling of serving a Redis read over HTTP on this machine.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub struct Webdis {
    pub addr: SocketAddr,
    process: Child,
    _dir: TempDir,
}

impl Webdis {
    /// Starts webdis (2 threads) over the Redis at `redis_url` on a free port, and returns once
    /// the port accepts connections; an error says why not (e.g. webdis is not installed).
    pub fn start(redis_url: &str) -> anyhow::Result<Webdis> {
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
        let path = std::env::temp_dir().join(format!(
            "surge-bench-{name}-{}",
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
