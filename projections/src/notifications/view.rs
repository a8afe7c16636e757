//! A broadcast as the API and `surge broadcasts` show it.

use serde_json::{Value, json};

use super::{Broadcast, BroadcastProgress};
use crate::feed::time;

/// Where a broadcast stands: `cancelled`, `done` (nothing remaining) or `sending`.
pub fn status(broadcast: &Broadcast, progress: &BroadcastProgress) -> &'static str {
    if broadcast.cancelled_at_ms.is_some() {
        "cancelled"
    } else if progress.remaining == 0 {
        "done"
    } else {
        "sending"
    }
}

/// The broadcast as the API shows it.
pub fn view(broadcast: &Broadcast, progress: &BroadcastProgress) -> Value {
    let per_second = progress.done_last_10s as f64 / 10.0;
    let eta_seconds = (progress.remaining > 0 && per_second > 0.0)
        .then(|| (progress.remaining as f64 / per_second).ceil() as i64);
    json!({
        "broadcast_id": broadcast.broadcast_id,
        "status": status(broadcast, progress),
        "text": broadcast.text,
        "button_text": broadcast.button_text,
        "audience": {
            "active_within_days": broadcast.active_within_days,
            "language": broadcast.language,
        },
        "requested_at": time(broadcast.requested_at_ms),
        "cancelled_at": broadcast.cancelled_at_ms.map(time),
        "recipients": progress.recipients,
        "sent": progress.sent,
        "failed": progress.failed,
        "blocked": progress.blocked,
        "cancelled": progress.cancelled,
        "remaining": progress.remaining,
        "per_second": per_second,
        "eta_seconds": eta_seconds,
        "failures": progress.failures.iter()
            .map(|(reason, count)| json!({ "reason": reason, "count": count }))
            .collect::<Vec<_>>(),
    })
}
