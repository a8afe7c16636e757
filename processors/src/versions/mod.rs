//! Store-level operations on whole projection versions: the atomic switch of the active version
//! ([`switch`]), dropping a version, and resetting everything built from an embedded broker.
//! The registry itself (which versions exist, which is active) is
//! `surge_projections::versions`.

mod drop;
mod generations;
mod switch;

pub use drop::{drop_version, reset_all};
pub use generations::generations;
pub use switch::{Behind, Frozen, Switch, freeze};
