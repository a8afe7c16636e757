//! Keeps the active version of each selected projection processed by this process. At start it
//! runs each projection's active version (making version 1 active where none is yet); then,
//! every [`VERSION_POLL`], it follows the version registries: when `surge replay` switches a
//! projection to a new version, the old version's processor is stopped and the new one's started
//! (it resumes from the positions the rebuild stored, and its claim hands the partitions over
//! from the rebuild, see `crate::replay`).
//!
//! A version built by another revision of a projection's code is never processed here: during a
//! deploy, old and new builds each process only versions built by their own code.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::projectors::{self, SinkContext, StartError};
use crate::runtime::{ProcessorConfig, ProcessorHandle};

/// How often the version registries are read for switches.
pub const VERSION_POLL: Duration = Duration::from_secs(1);

/// The processors this process runs, by projection name.
#[derive(Clone, Default)]
pub struct Running(Arc<Mutex<BTreeMap<&'static str, Slot>>>);

struct Slot {
    version: u32,
    handle: ProcessorHandle,
}

impl Running {
    /// Processors whose thread ended although nobody stopped them (`<name>.v<version>`).
    pub fn stopped(&self) -> Vec<String> {
        self.lock()
            .values()
            .filter(|slot| slot.handle.is_finished())
            .map(|slot| slot.handle.id.clone())
            .collect()
    }

    /// Partitions that cannot advance, with the reason, by processor (`<name>.v<version>`).
    pub fn stalled(&self) -> BTreeMap<String, BTreeMap<i32, String>> {
        self.lock()
            .values()
            .map(|slot| (slot.handle.id.clone(), slot.handle.stalled()))
            .filter(|(_, partitions)| !partitions.is_empty())
            .collect()
    }

    /// The processors that have claimed fewer than `partitions` partitions
    /// (`<name>.v<version>`): in a process that runs alone, those still joining their groups.
    pub fn owning_fewer_than(&self, partitions: usize) -> Vec<String> {
        self.lock()
            .values()
            .filter(|slot| slot.handle.owned() < partitions)
            .map(|slot| slot.handle.id.clone())
            .collect()
    }

    /// `(projection, version)` of every running processor.
    pub fn versions(&self) -> Vec<(&'static str, u32)> {
        self.lock()
            .iter()
            .map(|(name, slot)| (*name, slot.version))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Slot>> {
        self.0.lock().expect("processors lock")
    }

    fn version_of(&self, name: &str) -> Option<u32> {
        self.lock().get(name).map(|slot| slot.version)
    }

    /// Stops `name`'s processor, if any, letting it finish the batch in hand.
    async fn stop(&self, name: &str) {
        let slot = self.lock().remove(name);
        if let Some(slot) = slot {
            let _ = tokio::task::spawn_blocking(move || slot.handle.stop()).await;
        }
    }

    /// Stops every processor, all at once: each finishes its batch in hand and leaves its group
    /// in parallel with the others, so a stop takes the slowest one's time, not their sum.
    pub async fn stop_all(&self) {
        let slots: Vec<Slot> = std::mem::take(&mut *self.lock()).into_values().collect();
        let stopping: Vec<_> = (slots.into_iter())
            .map(|slot| tokio::task::spawn_blocking(move || slot.handle.stop()))
            .collect();
        for stopped in stopping {
            let _ = stopped.await;
        }
    }
}

/// Runs the active versions of `names` and follows their switches until `shutdown` turns true.
pub struct Supervisor {
    names: Vec<&'static str>,
    context: SinkContext,
    config: ProcessorConfig,
    running: Running,
    /// Versions already reported as built by another revision, so each is logged once.
    foreign: Mutex<HashSet<(&'static str, u32)>>,
}

impl Supervisor {
    /// Starts the active version of each of `names`; fails if any cannot start.
    pub async fn start(
        names: &[String],
        context: SinkContext,
        config: ProcessorConfig,
    ) -> Result<Arc<Supervisor>, StartError> {
        let names = names
            .iter()
            .map(|n| projectors::entry(n).map(|e| e.name()))
            .collect::<Result<Vec<_>, _>>()?;
        let supervisor = Arc::new(Supervisor {
            names,
            context,
            config,
            running: Running::default(),
            foreign: Mutex::new(HashSet::new()),
        });
        for name in &supervisor.names {
            supervisor.reconcile(name).await?;
        }
        Ok(supervisor)
    }

    pub fn running(&self) -> Running {
        self.running.clone()
    }

    /// Follows version switches every [`VERSION_POLL`] until `shutdown` is true, then stops
    /// every processor.
    pub async fn follow(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(VERSION_POLL) => {}
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
            for name in &self.names {
                if let Err(error) = self.reconcile(name).await {
                    tracing::warn!(projection = name, %error, "Following the active version failed; will retry.");
                }
            }
        }
        self.running.stop_all().await;
    }

    /// Makes this process run `name`'s active version, if it was built by this revision.
    async fn reconcile(&self, name: &'static str) -> Result<(), StartError> {
        let entry = projectors::entry(name)?;
        let active = self
            .context
            .stores
            .versions(entry)
            .ensure_active(entry.revision())
            .await?;
        let running = self.running.version_of(name);
        if running == Some(active.version) {
            return Ok(());
        }
        if let Some(old) = running {
            tracing::info!(
                projection = name,
                old,
                new = active.version,
                "The active version changed; moving to it."
            );
            self.running.stop(name).await;
        }
        if active.revision != entry.revision() {
            if self
                .foreign
                .lock()
                .expect("foreign lock")
                .insert((name, active.version))
            {
                tracing::warn!(
                    projection = name,
                    version = active.version,
                    built_by = active.revision,
                    this_build = entry.revision(),
                    "The active version was built by another revision of this projection's code; this process leaves it to the build that has that revision."
                );
            }
            return Ok(());
        }
        let handle =
            projectors::start(name, active.version, &self.context, self.config.clone()).await?;
        self.running.lock().insert(
            name,
            Slot {
                version: active.version,
                handle,
            },
        );
        Ok(())
    }
}
