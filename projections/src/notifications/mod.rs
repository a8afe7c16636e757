//! The `notifications` projection's tables: who can be messaged and who an audience picks
//! (`<prefix>_recipients`), the broadcasts operators requested (`<prefix>_broadcasts`), and the
//! outbox of messages to send ([`Outbox`], one table every version shares, with the tallies of
//! each broadcast's deliveries). The projector and the sender live in `processors`
//! (`surge_processors::notifications`); the query API serves a broadcast's progress at
//! `GET /v1/admin/broadcasts/{id}`.

pub(crate) mod http;
mod outbox;
mod store;
mod view;

pub use outbox::{
    BroadcastProgress, Claimed, DeliveryState, OUTBOX, Outbox, Outcome, QueueDepth, TALLIES,
};
pub use store::{Broadcast, NotificationStore, Recipient};
pub use view::{status, view};

pub const MIGRATIONS: &[&str] = &[
    include_str!("sql/recipients.sql"),
    include_str!("sql/broadcasts.sql"),
    include_str!("sql/outbox.sql"),
    include_str!("sql/outbox_due.sql"),
    include_str!("sql/outbox_leases.sql"),
    include_str!("sql/outbox_by_broadcast.sql"),
    include_str!("sql/outbox_recently_done.sql"),
    include_str!("sql/tallies.sql"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_and_its_tallies_are_outside_every_versions_prefix() {
        let ddl = MIGRATIONS.join("\n");
        for shared in [OUTBOX, TALLIES] {
            assert!(ddl.contains(&format!("CREATE TABLE IF NOT EXISTS {shared} ")));
            // Dropping a version drops `<name>_v<N>_*`; the shared tables must not match.
            assert!(!shared.starts_with("notifications_v"));
        }
    }
}
