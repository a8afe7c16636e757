//! A server on a runtime of its own, so it does not share worker threads with the load
//! generator that measures it.

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;

/// Serves `make_app()` on a fresh runtime of `worker_threads` threads, on a thread of its own,
/// as a separately deployed instance would run; its address once it listens. The server runs
/// until the process ends.
pub fn serve_on_own_runtime<F>(worker_threads: usize, make_app: F) -> anyhow::Result<SocketAddr>
where
    F: FnOnce() -> futures::future::BoxFuture<'static, anyhow::Result<Router>> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads)
            // So a profile of a benchmark tells the server's threads from the load generator's.
            .thread_name("served")
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
