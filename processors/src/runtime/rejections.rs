//! Whether a store error is the data's fault or the store's, decided where the error is born.
//!
//! A *rejection* is the store refusing what a batch asked it to write: applying the same events
//! again fails the same way, so retrying would stop the partition for good. The runtime narrows
//! it down to the event that causes it and dead-letters that one. Everything else (connection
//! lost, pool or statement timeouts, I/O, serialization failures, deadlocks, a store that is
//! loading or read-only) is *transient* and retried with backoff, never skipped.

use std::sync::Arc;

/// The source of a rejection, kept whole (not a string of it) and cheap to clone.
pub type Rejection = Arc<dyn std::error::Error + Send + Sync>;

/// SQLSTATE class 22 (data exception: a NUL byte in text, a value out of range, invalid
/// encoding) and 23 (integrity constraint violation: CHECK, NOT NULL, foreign key, unique)
/// are caused by the values written. 40001 (serialization failure), 40P01 (deadlock), 53
/// (insufficient resources), 57 (operator intervention), 08 (connection) and the rest are not.
pub(crate) fn sqlstate_rejects_data(code: &str) -> bool {
    code.starts_with("22") || code.starts_with("23")
}

/// Whether PostgreSQL (or sqlx, encoding a value) refused the data itself.
pub(crate) fn sqlx_rejects_data(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db.code().is_some_and(|code| sqlstate_rejects_data(&code)),
        // A bound value that cannot be encoded fails the same way every time.
        sqlx::Error::Encode(_) => true,
        _ => false,
    }
}

/// Whether a Redis error *from the apply script* was caused by its arguments: a command inside
/// the script refusing a value or the script failing at run time (`ERR ...`). Errors with other
/// codes (OOM, BUSY, LOADING, READONLY, MASTERDOWN, TRYAGAIN) and I/O errors are the store's.
/// Outside the apply script a Redis error says nothing about the events, so it is transient.
pub(crate) fn redis_script_rejects_data(error: &redis::RedisError) -> bool {
    error.kind() == redis::ErrorKind::ResponseError
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_and_integrity_classes_are_rejections() {
        for code in [
            "22021", "22001", "22003", "22P02", "23514", "23505", "23502",
        ] {
            assert!(sqlstate_rejects_data(code), "{code}");
        }
    }

    #[test]
    fn serialization_deadlock_resources_and_connections_are_transient() {
        for code in [
            "40001", "40P01", "53300", "57P01", "08006", "42P01", "55P03",
        ] {
            assert!(!sqlstate_rejects_data(code), "{code}");
        }
    }

    #[test]
    fn connection_loss_and_pool_timeouts_are_transient() {
        assert!(!sqlx_rejects_data(&sqlx::Error::PoolTimedOut));
        assert!(!sqlx_rejects_data(&sqlx::Error::PoolClosed));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(!sqlx_rejects_data(&sqlx::Error::Io(io)));
    }

    #[test]
    fn a_script_error_is_a_rejection_and_server_states_are_not() {
        let script = redis::RedisError::from((
            redis::ErrorKind::ResponseError,
            "An error was signalled by the server",
            "user_script:1: bad argument".to_owned(),
        ));
        assert!(redis_script_rejects_data(&script));
        let loading = redis::RedisError::from((redis::ErrorKind::BusyLoadingError, "loading"));
        assert!(!redis_script_rejects_data(&loading));
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "gone");
        assert!(!redis_script_rejects_data(&redis::RedisError::from(io)));
    }
}
