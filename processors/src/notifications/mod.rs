//! Notifications and broadcasts through the Bot API.
//!
//! - The `notifications` projection ([`crate::projectors::notifications`]) keeps who can be
//!   messaged and, while it serves, queues what events and broadcasts send into the outbox
//!   (`surge_projections::notifications`).
//! - [`sender`]: drains the outbox through the Bot API within Telegram's limits ([`limiter`]),
//!   in every `surge process` that runs the projection; its header states the delivery
//!   guarantee.
//! - [`templates`]: which events message their user, and what the message says per language.

pub mod limiter;
pub mod sender;
pub mod templates;

pub use limiter::{Limiter, Limits};
pub use sender::{Sender, SenderMetrics, SenderSettings};
pub use templates::Templates;
