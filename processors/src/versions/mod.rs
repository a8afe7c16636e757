//! What the processors decide about whole projection versions, dispatched to the projection's
//! store: the atomic switch of the active version ([`freeze`], then [`Frozen::switch`]),
//! dropping a version, resetting everything built from an embedded broker, and who owns a
//! version's partitions. The statements and keys of these store operations, and the registry
//! itself (which versions exist, which is active), are `surge_projections::versions` and
//! `surge_projections::positions`.

mod drop;
mod generations;
mod switch;

pub use drop::{drop_version, reset_all};
pub use generations::generations;
pub use switch::{Behind, Frozen, Switch, freeze};
