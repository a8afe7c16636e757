//! A TCP proxy the tests can cut: stands between the app and a real store, so "the store went
//! down" is a real connection failure (open connections reset, new ones refused).

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::helpers::{Options, TestApp, spawn_app_with};

/// A write API with `env` whose Redis is reached through a proxy the test can cut. Call it from
/// a multi-threaded test: the proxy must keep serving while `spawn_app_with` blocks the thread.
pub async fn write_api_behind_redis_proxy(
    mut env: Vec<(&'static str, String)>,
) -> (TcpProxy, TestApp) {
    let redis = TcpProxy::start("127.0.0.1:6379").await;
    env.push((
        "SURGE_REDIS_URL",
        format!("redis://127.0.0.1:{}", redis.port),
    ));
    let app = spawn_app_with(Options {
        env,
        ..Options::default()
    })
    .await;
    (redis, app)
}

pub struct TcpProxy {
    pub port: u16,
    upstream: &'static str,
    accept: JoinHandle<()>,
    connections: std::sync::Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
}

impl TcpProxy {
    pub async fn start(upstream: &'static str) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        TcpProxy {
            port: listener.local_addr().unwrap().port(),
            upstream,
            accept: Self::accept(listener, upstream, connections.clone()),
            connections,
        }
    }

    /// Opens the port again after [`cut`](Self::cut): the store is back.
    pub async fn restore(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.accept = Self::accept(listener, self.upstream, self.connections.clone());
    }

    fn accept(
        listener: TcpListener,
        upstream: &'static str,
        tracked: std::sync::Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let connection = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tracked.lock().unwrap().push(connection);
            }
        })
    }

    /// Closes the listening port and every proxied connection.
    pub fn cut(&self) {
        self.accept.abort();
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
    }
}
