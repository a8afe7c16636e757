//! The projectors of the reference domain, one folder or file each, named like their projection
//! in the catalog (`surge_projections::ProjectionId`), and [`economy`], the coin rules they share.
//! Derivers (`referrals`, `quests`) are projectors that also emit events back to the topic
//! ([`crate::emit`]).

pub mod economy;
mod registry;

pub use registry::{
    CATALOG, CatalogSink, Entry, Projector, SinkContext, StartError, StoreKind, Stores, UseSink,
    entry, names, start, with_sink,
};

// One module per projection of the catalog, named like it (`quests.rs` or `quests/`), whose
// type named like its id (`quests::Quests`) is its projector: generated from the catalog's
// list, so a new projection needs no line here; the compiler asks for its module and type.
use registry::registry;
surge_projections::each_projection!(registry);
