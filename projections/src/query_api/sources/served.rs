//! The snapshot handlers read from: for each served projection, the version, the store (or Redis
//! key base) of that version and its position watcher. A snapshot never changes; a switch
//! publishes a new one that shares every projection whose version stayed the same, so its
//! watcher (and the positions that watcher has already read) carries over.

use std::ops::{Index, IndexMut};
use std::sync::Arc;

use super::Projection;
use crate::activity::ActivityStore;
use crate::profiles::ProfileStore;
use crate::query_api::watcher::PositionWatcher;
use crate::wallets::WalletStore;

/// One projection at one version.
pub(crate) struct Version<S> {
    pub(crate) number: u32,
    /// The store of this version; for Redis-kept projections, its key base.
    pub(crate) store: S,
    pub(crate) watcher: PositionWatcher,
}

/// A value per served projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ByProjection<T>([T; Projection::ALL.len()]);

impl<T> ByProjection<T> {
    pub(crate) fn from_fn(f: impl FnMut(Projection) -> T) -> Self {
        ByProjection(Projection::ALL.map(f))
    }
}

impl<T> Index<Projection> for ByProjection<T> {
    type Output = T;
    fn index(&self, projection: Projection) -> &T {
        &self.0[projection as usize]
    }
}

impl<T> IndexMut<Projection> for ByProjection<T> {
    fn index_mut(&mut self, projection: Projection) -> &mut T {
        &mut self.0[projection as usize]
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
    fn profiles(&self, version: u32) -> Version<ProfileStore>;
    fn wallets(&self, version: u32) -> Version<WalletStore>;
    fn activity(&self, version: u32) -> Version<ActivityStore>;
    /// `projection` is Leaderboard or Feed; the store is the version's Redis key base.
    fn keys(&self, projection: Projection, version: u32) -> Version<String>;
}

/// One immutable snapshot of what the query API serves.
pub(crate) struct Served {
    pub(crate) profiles: Arc<Version<ProfileStore>>,
    pub(crate) wallets: Arc<Version<WalletStore>>,
    pub(crate) activity: Arc<Version<ActivityStore>>,
    pub(crate) leaderboard: Arc<Version<String>>,
    pub(crate) feed: Arc<Version<String>>,
    choices: ByProjection<Choice>,
}

impl Served {
    /// Every projection at version 1, unsettled, until the first poll answers.
    pub(crate) fn first(build: &impl Build) -> Served {
        Served {
            profiles: Arc::new(build.profiles(1)),
            wallets: Arc::new(build.wallets(1)),
            activity: Arc::new(build.activity(1)),
            leaderboard: Arc::new(build.keys(Projection::Leaderboard, 1)),
            feed: Arc::new(build.keys(Projection::Feed, 1)),
            choices: ByProjection::from_fn(|_| Choice::GUESS),
        }
    }

    pub(crate) fn version(&self, projection: Projection) -> u32 {
        self.choices[projection].version
    }

    /// Whether a registry has confirmed `projection`'s version (see [`Choice::settled`]).
    pub(crate) fn settled(&self, projection: Projection) -> bool {
        self.choices[projection].settled
    }

    pub(crate) fn watcher(&self, projection: Projection) -> &PositionWatcher {
        match projection {
            Projection::Profiles => &self.profiles.watcher,
            Projection::Wallets => &self.wallets.watcher,
            Projection::Activity => &self.activity.watcher,
            Projection::Leaderboard => &self.leaderboard.watcher,
            Projection::Feed => &self.feed.watcher,
        }
    }

    /// The snapshot after a poll, or `None` when nothing changed. Only projections whose version
    /// changed are built anew; the others are shared with `self`.
    pub(crate) fn next(&self, polled: &ByProjection<Polled>, build: &impl Build) -> Option<Served> {
        let choices = ByProjection::from_fn(|p| self.choices[p].after(polled[p]));
        if choices == self.choices {
            return None;
        }
        let version = |p: Projection| choices[p].version;
        Some(Served {
            profiles: carry(&self.profiles, version(Projection::Profiles), |v| {
                build.profiles(v)
            }),
            wallets: carry(&self.wallets, version(Projection::Wallets), |v| {
                build.wallets(v)
            }),
            activity: carry(&self.activity, version(Projection::Activity), |v| {
                build.activity(v)
            }),
            leaderboard: carry(&self.leaderboard, version(Projection::Leaderboard), |v| {
                build.keys(Projection::Leaderboard, v)
            }),
            feed: carry(&self.feed, version(Projection::Feed), |v| {
                build.keys(Projection::Feed, v)
            }),
            choices,
        })
    }
}

/// `current` if it already is `version`, else `version` newly built.
fn carry<S>(
    current: &Arc<Version<S>>,
    version: u32,
    build: impl FnOnce(u32) -> Version<S>,
) -> Arc<Version<S>> {
    if current.number == version {
        current.clone()
    } else {
        Arc::new(build(version))
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
        let mut values = ByProjection::from_fn(|p| p as u32);
        values[Projection::Feed] = 40;
        assert_eq!(values[Projection::Feed], 40);
        assert_eq!(values[Projection::Profiles], Projection::Profiles as u32);
    }

    /// Builds versions whose watchers never read (nobody waits on them; the pool is lazy) and
    /// remembers what it built.
    struct Recording {
        pool: sqlx::PgPool,
        built: std::sync::Mutex<Vec<(Projection, u32)>>,
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

        fn version<S>(&self, projection: Projection, number: u32, store: S) -> Version<S> {
            self.built.lock().unwrap().push((projection, number));
            let source = crate::positions::PositionSource::Postgres {
                pool: self.pool.clone(),
                projection: projection.name(),
                version: number,
                topic: "t".into(),
            };
            let every = std::time::Duration::from_millis(5);
            Version {
                number,
                store,
                watcher: PositionWatcher::spawn(projection.name(), source, every, every),
            }
        }

        fn take(&self) -> Vec<(Projection, u32)> {
            std::mem::take(&mut self.built.lock().unwrap())
        }
    }

    impl Build for Recording {
        fn profiles(&self, v: u32) -> Version<ProfileStore> {
            self.version(Projection::Profiles, v, ProfileStore::new("p"))
        }
        fn wallets(&self, v: u32) -> Version<WalletStore> {
            self.version(Projection::Wallets, v, WalletStore::new("w"))
        }
        fn activity(&self, v: u32) -> Version<ActivityStore> {
            self.version(Projection::Activity, v, ActivityStore::new("a"))
        }
        fn keys(&self, projection: Projection, v: u32) -> Version<String> {
            self.version(projection, v, format!("k:{}:v{v}", projection.name()))
        }
    }

    fn polled(changes: &[(Projection, Polled)]) -> ByProjection<Polled> {
        let mut polled = ByProjection::from_fn(|_| Polled::NoneYet);
        for (projection, answer) in changes {
            polled[*projection] = *answer;
        }
        polled
    }

    #[tokio::test]
    async fn a_switch_rebuilds_only_the_projection_that_switched() {
        let build = Recording::new();
        let first = Served::first(&build);
        assert_eq!(build.take().len(), Projection::ALL.len());
        assert!(!first.settled(Projection::Feed));

        let settled = first
            .next(&polled(&[]), &build)
            .expect("settled is a change");
        assert!(
            build.take().is_empty(),
            "version 1 everywhere: nothing rebuilt"
        );
        assert!(Arc::ptr_eq(&settled.feed, &first.feed));
        assert!(Projection::ALL.into_iter().all(|p| settled.settled(p)));
        assert!(
            settled.next(&polled(&[]), &build).is_none(),
            "no change, no snapshot"
        );

        let switched = settled
            .next(&polled(&[(Projection::Wallets, Polled::Active(2))]), &build)
            .expect("wallets switched");
        assert_eq!(build.take(), [(Projection::Wallets, 2)]);
        assert_eq!(switched.version(Projection::Wallets), 2);
        assert_eq!(switched.wallets.number, 2);
        assert!(Arc::ptr_eq(&switched.profiles, &settled.profiles));
        assert!(Arc::ptr_eq(&switched.leaderboard, &settled.leaderboard));

        let board = switched
            .next(
                &polled(&[
                    (Projection::Wallets, Polled::Unknown),
                    (Projection::Leaderboard, Polled::Active(3)),
                ]),
                &build,
            )
            .expect("leaderboard switched");
        assert_eq!(build.take(), [(Projection::Leaderboard, 3)]);
        assert_eq!(board.leaderboard.store, "k:leaderboard:v3");
        assert_eq!(board.version(Projection::Wallets), 2, "unknown keeps v2");
        assert!(Arc::ptr_eq(&board.wallets, &switched.wallets));
    }
}
