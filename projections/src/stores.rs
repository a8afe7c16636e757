//! Reachability checks of the stores projections live in, for every role's `/health/ready`.

use std::time::Duration;

use redis::aio::ConnectionManager;
use sqlx::PgPool;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// PostgreSQL answers `SELECT 1` within the check timeout.
pub async fn postgres_up(pool: &PgPool) -> bool {
    let check = sqlx::query("SELECT 1").execute(pool);
    matches!(tokio::time::timeout(CHECK_TIMEOUT, check).await, Ok(Ok(_)))
}

/// Redis answers `PING` within the check timeout.
pub async fn redis_up(redis: &ConnectionManager) -> bool {
    let mut conn = redis.clone();
    let ping = redis::cmd("PING");
    let check = ping.query_async::<String>(&mut conn);
    matches!(tokio::time::timeout(CHECK_TIMEOUT, check).await, Ok(Ok(_)))
}
