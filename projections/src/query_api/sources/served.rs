//! The snapshot handlers read from: for each projection of the catalog, the version served,
//! its table prefix (or Redis key base), its position watcher and its typed store, built when
//! first read. A snapshot never changes; a switch publishes a new one that shares every
//! projection whose version stayed the same, so its watcher (and the positions that watcher has
//! already read) and its store carry over.

use std::any::Any;
use std::ops::{Index, IndexMut};
use std::sync::{Arc, OnceLock};

use crate::catalog::{ProjectionId, StoreKind, VersionedStore};
use crate::query_api::databases::Database;
use crate::query_api::watcher::PositionWatcher;

/// One projection at one version.
pub(crate) struct Version {
    pub(crate) number: u32,
    /// PostgreSQL: the table prefix `<name>_v<N>`; Redis: the key base `<prefix>:<name>:v<N>`.
    pub(crate) base: String,
    /// PostgreSQL: one per database, in [`Database::index`] order (a replica's positions are
    /// read on that replica); Redis: one.
    watchers: Vec<PositionWatcher>,
    /// The typed store of a PostgreSQL projection ([`VersionedStore`]), built from `base` on the
    /// first read, so projections no endpoint reads never build one.
    store: OnceLock<Box<dyn Any + Send + Sync>>,
}

impl Version {
    pub(crate) fn new(number: u32, base: String, watchers: Vec<PositionWatcher>) -> Self {
        assert!(!watchers.is_empty(), "a version has a watcher");
        Version {
            number,
            base,
            watchers,
            store: OnceLock::new(),
        }
    }

    /// The watcher of this version's positions on `database` (Redis projections have one).
    pub(crate) fn watcher(&self, database: Database) -> &PositionWatcher {
        self.watchers
            .get(database.index())
            .unwrap_or(&self.watchers[0])
    }

    /// This version's store of type `S`; the caller makes sure `S` is this projection's store.
    fn store<S: VersionedStore>(&self) -> &S {
        self.store
            .get_or_init(|| Box::new(S::at(&self.base)))
            .downcast_ref()
            .expect("a version's store is only ever built as its projection's store type")
    }
}

/// A value per projection of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ByProjection<T>([T; ProjectionId::COUNT]);

impl<T> ByProjection<T> {
    pub(crate) fn from_fn(mut f: impl FnMut(ProjectionId) -> T) -> Self {
        ByProjection(std::array::from_fn(|index| f(ProjectionId::ALL[index])))
    }
}

impl<T> Index<ProjectionId> for ByProjection<T> {
    type Output = T;
    fn index(&self, projection: ProjectionId) -> &T {
        &self.0[projection.index()]
    }
}

impl<T> IndexMut<ProjectionId> for ByProjection<T> {
    fn index_mut(&mut self, projection: ProjectionId) -> &mut T {
        &mut self.0[projection.index()]
    }
}

/// What one poll learnt about a projection's active version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Polled {
    Active(u32),
    /// The registry has no active version (nothing has run here yet): version 1 serves.
    NoneYet,
    /// The registry could not be read: keep serving what is served.
    Unknown,
}

/// The version to serve and whether a registry has confirmed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Choice {
    pub(crate) version: u32,
    /// False until a poll has read the projection's registry: until then version 1 is only a
    /// guess, and a restart after a replay must not serve a dropped or retired version 1.
    pub(crate) settled: bool,
}

impl Choice {
    /// Before the first poll.
    pub(crate) const GUESS: Choice = Choice {
        version: 1,
        settled: false,
    };

    pub(crate) fn after(self, polled: Polled) -> Choice {
        match polled {
            Polled::Active(version) => Choice {
                version,
                settled: true,
            },
            Polled::NoneYet => Choice {
                version: 1,
                settled: true,
            },
            Polled::Unknown => self,
        }
    }
}

/// Builds one projection's version when it is first served. A trait so the snapshot logic is
/// tested without stores: the tests' builder records what it was asked to build.
pub(crate) trait Build {
    fn version(&self, projection: ProjectionId, number: u32) -> Version;
}

/// One immutable snapshot of what the query API serves.
pub(crate) struct Served {
    versions: ByProjection<Arc<Version>>,
    choices: ByProjection<Choice>,
}

impl Served {
    /// Every projection at version 1, unsettled, until the first poll answers.
    pub(crate) fn first(build: &impl Build) -> Served {
        Served {
            versions: ByProjection::from_fn(|p| Arc::new(build.version(p, 1))),
            choices: ByProjection::from_fn(|_| Choice::GUESS),
        }
    }

    pub(crate) fn version(&self, projection: ProjectionId) -> u32 {
        self.choices[projection].version
    }

    /// Whether a registry has confirmed `projection`'s version (see [`Choice::settled`]).
    pub(crate) fn settled(&self, projection: ProjectionId) -> bool {
        self.choices[projection].settled
    }

    /// The served version of `projection`.
    pub(crate) fn get(&self, projection: ProjectionId) -> &Arc<Version> {
        &self.versions[projection]
    }

    /// The watcher of `projection`'s served version on `database`.
    pub(crate) fn watcher(&self, projection: ProjectionId, database: Database) -> &PositionWatcher {
        self.versions[projection].watcher(database)
    }

    /// The store of the served version of `S`'s projection (kept in PostgreSQL).
    pub(crate) fn store<S: VersionedStore>(&self) -> &S {
        debug_assert_eq!(S::ID.store(), StoreKind::Postgres, "{}", S::ID);
        self.versions[S::ID].store()
    }

    /// The Redis key base of the served version of `projection` (kept in Redis).
    pub(crate) fn keys(&self, projection: ProjectionId) -> &str {
        debug_assert_eq!(projection.store(), StoreKind::Redis, "{projection}");
        &self.versions[projection].base
    }

    /// The snapshot after a poll, or `None` when nothing changed. Only projections whose version
    /// changed are built anew; the others are shared with `self`.
    pub(crate) fn next(&self, polled: &ByProjection<Polled>, build: &impl Build) -> Option<Served> {
        let choices = ByProjection::from_fn(|p| self.choices[p].after(polled[p]));
        if choices == self.choices {
            return None;
        }
        let versions = ByProjection::from_fn(|p| {
            let current = &self.versions[p];
            let version = choices[p].version;
            if current.number == version {
                current.clone()
            } else {
                Arc::new(build.version(p, version))
            }
        });
        Some(Served { versions, choices })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_answer_settles_the_choice_and_no_answer_keeps_it() {
        assert_eq!(
            Choice::GUESS.after(Polled::Unknown),
            Choice::GUESS,
            "unread registry: still a guess"
        );
        let active = Choice::GUESS.after(Polled::Active(3));
        assert_eq!(
            active,
            Choice {
                version: 3,
                settled: true
            }
        );
        assert_eq!(
            active.after(Polled::Unknown),
            active,
            "a failed poll keeps v3"
        );
        assert_eq!(
            Choice::GUESS.after(Polled::NoneYet),
            Choice {
                version: 1,
                settled: true
            },
            "nothing ran yet: version 1"
        );
    }

    #[test]
    fn values_are_kept_per_projection() {
        let mut values = ByProjection::from_fn(|p| p.index() as u32);
        values[ProjectionId::Feed] = 40;
        assert_eq!(values[ProjectionId::Feed], 40);
        assert_eq!(
            values[ProjectionId::Profiles],
            ProjectionId::Profiles.index() as u32
        );
    }

    /// Builds versions whose watchers never read (nobody waits on them; the pool is lazy) and
    /// remembers what it built.
    struct Recording {
        pool: sqlx::PgPool,
        built: std::sync::Mutex<Vec<(ProjectionId, u32)>>,
    }

    impl Recording {
        fn new() -> Self {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .connect_lazy("postgres://nobody@127.0.0.1:1/none")
                .unwrap();
            Recording {
                pool,
                built: Default::default(),
            }
        }

        fn take(&self) -> Vec<(ProjectionId, u32)> {
            std::mem::take(&mut self.built.lock().unwrap())
        }
    }

    impl Build for Recording {
        fn version(&self, projection: ProjectionId, number: u32) -> Version {
            self.built.lock().unwrap().push((projection, number));
            let source = crate::positions::PositionSource::Postgres {
                pool: self.pool.clone(),
                projection: projection.name(),
                version: number,
                topic: "t".into(),
            };
            let every = std::time::Duration::from_millis(5);
            let base = match projection.store() {
                StoreKind::Postgres => crate::naming::table_prefix(projection.name(), number),
                StoreKind::Redis => crate::naming::keys_base("k", projection.name(), number),
            };
            let watcher = PositionWatcher::spawn(projection.name(), source, every, every);
            Version::new(number, base, vec![watcher])
        }
    }

    fn polled(changes: &[(ProjectionId, Polled)]) -> ByProjection<Polled> {
        let mut polled = ByProjection::from_fn(|_| Polled::NoneYet);
        for (projection, answer) in changes {
            polled[*projection] = *answer;
        }
        polled
    }

    #[tokio::test]
    async fn a_switch_rebuilds_only_the_projection_that_switched() {
        use ProjectionId::{Feed, Leaderboard, Profiles, Wallets};
        let build = Recording::new();
        let first = Served::first(&build);
        assert_eq!(build.take().len(), ProjectionId::ALL.len());
        assert!(!first.settled(Feed));

        let settled = first
            .next(&polled(&[]), &build)
            .expect("settled is a change");
        assert!(
            build.take().is_empty(),
            "version 1 everywhere: nothing rebuilt"
        );
        assert!(Arc::ptr_eq(settled.get(Feed), first.get(Feed)));
        assert!(ProjectionId::ALL.iter().all(|p| settled.settled(*p)));
        assert!(
            settled.next(&polled(&[]), &build).is_none(),
            "no change, no snapshot"
        );

        let switched = settled
            .next(&polled(&[(Wallets, Polled::Active(2))]), &build)
            .expect("wallets switched");
        assert_eq!(build.take(), [(Wallets, 2)]);
        assert_eq!(switched.version(Wallets), 2);
        assert_eq!(switched.get(Wallets).number, 2);
        assert!(Arc::ptr_eq(switched.get(Profiles), settled.get(Profiles)));
        assert!(Arc::ptr_eq(
            switched.get(Leaderboard),
            settled.get(Leaderboard)
        ));

        let board = switched
            .next(
                &polled(&[(Wallets, Polled::Unknown), (Leaderboard, Polled::Active(3))]),
                &build,
            )
            .expect("leaderboard switched");
        assert_eq!(build.take(), [(Leaderboard, 3)]);
        assert_eq!(board.keys(Leaderboard), "k:leaderboard:v3");
        assert_eq!(board.version(Wallets), 2, "unknown keeps v2");
        assert!(Arc::ptr_eq(board.get(Wallets), switched.get(Wallets)));
    }

    #[tokio::test]
    async fn a_store_is_built_once_per_version_from_its_table_prefix() {
        let build = Recording::new();
        let first = Served::first(&build);
        let wallets: &crate::wallets::WalletStore = first.store();
        assert!(std::ptr::eq(
            wallets,
            first.store::<crate::wallets::WalletStore>()
        ));
        let settled = first.next(&polled(&[]), &build).unwrap();
        assert!(
            std::ptr::eq(wallets, settled.store::<crate::wallets::WalletStore>()),
            "a version that stays keeps its store"
        );
        let switched = settled
            .next(
                &polled(&[(ProjectionId::Wallets, Polled::Active(2))]),
                &build,
            )
            .unwrap();
        assert_eq!(switched.get(ProjectionId::Wallets).base, "wallets_v2");
        assert!(!std::ptr::eq(
            wallets,
            switched.store::<crate::wallets::WalletStore>()
        ));
    }
}
