//! What the catalog of projections is made of: the `catalog!` macro, which generates
//! [`ProjectionId`] from the one list in `lib.rs` (each projection's id, the name it goes by in
//! tables, Redis keys, metrics, commands and the HTTP API's errors, the revision of its code, the
//! store that keeps it and, in PostgreSQL, its tables), and what is read from an id. Everything
//! else that depends on which projections exist (the processors' registry, the query API's
//! served versions, `surge projections`, the tests and benchmarks) reads [`ProjectionId::ALL`]
//! or matches on [`ProjectionId`] exhaustively, so adding a line to the list makes the compiler
//! point at every place that must decide about the new projection.

use std::fmt;

pub use crate::ProjectionId;

/// Where a projection keeps its state (and its positions and versions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreKind {
    Postgres,
    Redis,
}

impl StoreKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            StoreKind::Postgres => "postgres",
            StoreKind::Redis => "redis",
        }
    }
}

/// Generates [`ProjectionId`] from the catalog's list; invoked once, in `lib.rs`.
macro_rules! catalog {
    ($(
        $(#[$doc:meta])*
        $id:ident => $name:ident, revision $revision:literal,
            in $store:ident $(($plain:path $(, timescaledb $timescale:path)?))?
            $(, serves $routes:path)?;
    )+) => {
        /// A projection, as the catalog lists it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ProjectionId {
            $($(#[$doc])* $id,)+
        }

        impl ProjectionId {
            /// Every projection, in the catalog's order (which is also each one's index).
            pub const ALL: &'static [ProjectionId] = &[$(ProjectionId::$id),+];

            /// How many there are, for arrays indexed by [`index`](Self::index).
            pub const COUNT: usize = Self::ALL.len();

            /// The name it goes by everywhere.
            pub const fn name(self) -> &'static str {
                match self {
                    $(ProjectionId::$id => stringify!($name),)+
                }
            }

            /// The store that keeps it.
            pub const fn store(self) -> $crate::catalog::StoreKind {
                match self {
                    $(ProjectionId::$id => $crate::catalog::StoreKind::$store,)+
                }
            }

            /// The revision of its code. Bump it when what the projection writes for an event
            /// changes; the new code is then deployed by rebuilding a new version (`surge
            /// replay`), since a version is only ever written by the revision that built it.
            pub const fn revision(self) -> u32 {
                match self {
                    $(ProjectionId::$id => $revision,)+
                }
            }

            /// Its own tables, when it is kept in PostgreSQL ([`crate::migrations`]).
            pub(crate) const fn tables(self) -> Option<$crate::catalog::Tables> {
                match self {
                    $(ProjectionId::$id => {
                        $crate::catalog::catalog!(@tables $($plain $(, $timescale)?)?)
                    })+
                }
            }

            /// Its endpoints in the query API, if it has any of its own (the `serves` clause:
            /// a function of its folder's `http.rs`). Endpoints reading several projections
            /// are registered in `query_api::handlers`.
            pub(crate) fn routes(
                self,
            ) -> Option<fn() -> utoipa_axum::router::OpenApiRouter<$crate::query_api::QueryState>>
            {
                match self {
                    $(ProjectionId::$id => $crate::catalog::catalog!(@routes $($routes)?),)+
                }
            }
        }

        $crate::catalog::catalog!(@each_projection ($) $($id => $name),+);
    };
    // `$d` is a `$` for the generated macro's own variables.
    (@each_projection ($d:tt) $($id:ident => $name:ident),+) => {
        /// Hands every projection of the catalog, as `Id => name`, to the macro `$callback`,
        /// invoked where this one is, for code in other crates that needs an item per
        /// projection (the processors' registry: a projector module named like the projection,
        /// with a type named like its id) without a list of its own.
        #[macro_export]
        macro_rules! each_projection {
            ($d callback:ident) => {
                $d callback! { $($id => $name),+ }
            };
        }
    };
    (@routes) => { None };
    (@routes $routes:path) => { Some($routes) };
    (@tables) => { None };
    (@tables $plain:path) => {
        Some($crate::catalog::Tables { plain: $plain, timescaledb: None })
    };
    (@tables $plain:path, $timescale:path) => {
        Some($crate::catalog::Tables { plain: $plain, timescaledb: Some($timescale) })
    };
}
pub(crate) use catalog;

/// A PostgreSQL projection's own tables: idempotent DDL (`CREATE TABLE IF NOT EXISTS ...`), one
/// statement per string, where `{t}` stands for the table prefix `<name>_v<version>`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tables {
    pub(crate) plain: &'static [&'static str],
    /// Used instead of `plain` when the database has the TimescaleDB extension, where
    /// `{timescaledb}` stands for the extension's schema (it is not on the search path).
    pub(crate) timescaledb: Option<&'static [&'static str]>,
}

impl ProjectionId {
    /// The projection named `name`.
    pub fn named(name: &str) -> Option<ProjectionId> {
        Self::ALL.iter().copied().find(|id| id.name() == name)
    }

    /// Its place in [`ALL`](Self::ALL), for tables indexed by projection.
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// A PostgreSQL projection's typed store (its reads and writes), built from one version's table
/// prefix (`<name>_v<N>`, see [`crate::naming::table_prefix`]). Lets code that holds
/// versions by [`ProjectionId`] (the query API's served snapshot) hand out typed stores without
/// a line per projection.
pub trait VersionedStore: Send + Sync + 'static {
    /// The projection whose tables it reads and writes.
    const ID: ProjectionId;
    /// The store of the version whose tables are named `table_prefix`.
    fn at(table_prefix: &str) -> Self;
}

impl fmt::Display for ProjectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_projections_kept_in_postgresql_have_tables() {
        for &id in ProjectionId::ALL {
            assert_eq!(
                id.tables().is_some(),
                id.store() == StoreKind::Postgres,
                "{id}"
            );
        }
    }

    #[test]
    fn names_are_distinct_plain_identifiers_and_name_back_to_their_id() {
        for (index, id) in ProjectionId::ALL.iter().copied().enumerate() {
            assert_eq!(id.index(), index);
            assert_eq!(ProjectionId::named(id.name()), Some(id));
            // Names go into table names and key names as they are.
            assert!(
                id.name()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{id}"
            );
        }
        assert_eq!(ProjectionId::named("nope"), None);
        assert_eq!(ProjectionId::Feed.store(), StoreKind::Redis);
    }
}
