//! Binding and serving an axum router until SIGINT/SIGTERM, draining in-flight requests, with
//! the limits a public endpoint needs against slow or idle clients (slowloris): a deadline for
//! each request's headers (which also closes idle keep-alive connections), one for its body, and
//! a cap on open connections. `axum::serve` has none of these, so connections are served here
//! with hyper's own builder.

pub mod cors;
mod idle;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// How long in-flight requests may take to finish once shutdown starts.
const DRAIN: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Longest wait for a request's headers once it has begun, and longest a connection may
    /// stay silent (nothing read or written: a client that sends nothing, an idle keep-alive).
    pub header_read: Duration,
    /// Longest wait for a request's body.
    pub body: Duration,
    /// Connections held open at once.
    pub max_connections: usize,
}

pub async fn bind(addr: SocketAddr, role: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("Failed to bind the {role} to {addr}"))
}

pub async fn serve(
    listener: TcpListener,
    app: Router,
    role: &'static str,
    limits: ConnectionLimits,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, role, ?limits, "Listening.");
    let app = app.layer(RequestBodyTimeoutLayer::new(limits.body));
    // HTTP/1 only: the automatic HTTP/2 detection waits for a client's first bytes with no
    // deadline, which would let idle connections stay forever. (HTTP/2 reaches Surge through a
    // proxy that terminates TLS, which speaks HTTP/1 to it.)
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        // Past the cap, stop accepting: new connections wait in the backlog.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.context("connection permits")?,
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(%error, role, "Accepting a connection failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection_with_upgrades(
                TokioIo::new(idle::IdleTimeout::new(stream, limits.header_read)),
                service,
            )
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Errors here are a client's (reset, timed out): nothing to report.
            let _ = connection.await;
            drop(permit);
        });
    }
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            role,
            "Connections still open after the drain period; closing them."
        );
    }
    Ok(())
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("Shutting down: draining in-flight requests.");
}
