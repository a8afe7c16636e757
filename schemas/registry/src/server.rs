//! Serving the router on a real socket, for the `surge` binary and tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{Error, Registry, router};

/// A registry served in a background task. Dropping it stops the server
/// (gracefully, without waiting); [`EmbeddedRegistry::shutdown`] also waits.
#[derive(Debug)]
pub struct EmbeddedRegistry {
    /// Base URL clients use, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// The bound address (with the real port when 0 was asked for).
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// Binds `addr` (port 0 = ephemeral) and serves [`router`] in a spawned task.
pub async fn serve(registry: Registry, addr: SocketAddr) -> Result<EmbeddedRegistry, Error> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (shutdown, signal) = oneshot::channel::<()>();
    let app = router(registry);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                // Sent or dropped: stop either way.
                let _ = signal.await;
            })
            .await
    });
    tracing::info!(%addr, "embedded schema registry listening");
    Ok(EmbeddedRegistry {
        url: format!("http://{}", reachable(addr)),
        addr,
        shutdown: Some(shutdown),
        task: Some(task),
    })
}

impl EmbeddedRegistry {
    /// Stops accepting connections and waits for in-flight requests.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.task.take() {
            Some(task) => match task.await {
                Ok(result) => Ok(result?),
                Err(join) => Err(Error::Io(std::io::Error::other(join))),
            },
            None => Ok(()),
        }
    }
}

impl Drop for EmbeddedRegistry {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A wildcard bind address is not something a client can connect to.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}
