//! Which version a rebuild writes: the interrupted rebuild's, resumed where it stopped, or a
//! new one numbered after every version the projection has had. One rebuild per projection at a
//! time, held by a PostgreSQL session lock that dies with the process.

use sqlx::{Connection, PgConnection};
use surge_projections::versions::{VersionInfo, VersionState};

use super::ReplayError;
use crate::projectors::{Entry, Stores};
use crate::versions::drop_version;

/// The version being rebuilt and the one that serves meanwhile.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) serving: VersionInfo,
    pub(crate) building: VersionInfo,
    /// An interrupted rebuild is being resumed.
    pub(crate) resumed: bool,
}

/// Holds the projection's rebuild lock until dropped (or the process dies).
pub(crate) struct RebuildLock(#[allow(dead_code)] PgConnection);

/// Takes the rebuild lock of `projection`, or says who holds it.
pub(crate) async fn lock(stores: &Stores, projection: &str) -> Result<RebuildLock, ReplayError> {
    // A connection of its own: a session lock must not go back to the pool with it.
    let mut conn = stores.pool.acquire().await?.detach();
    let taken: bool =
        // Per deployment: two deployments in one database (schemas) rebuild independently.
        sqlx::query_scalar(
            "SELECT pg_try_advisory_lock(hashtext('surge-replay:' || current_schema() || ':' || $1))",
        )
            .bind(projection)
            .fetch_one(&mut conn)
            .await?;
    if !taken {
        let _ = conn.close().await;
        return Err(ReplayError::AlreadyRunning(projection.to_owned()));
    }
    Ok(RebuildLock(conn))
}

/// Picks (or registers) the version to build. `start_ms` is where a point-in-time rebuild
/// starts (`None`: offset zero); `restart` discards an interrupted rebuild instead of resuming.
pub(crate) async fn plan(
    stores: &Stores,
    entry: &Entry,
    start_ms: Option<i64>,
    restart: bool,
) -> Result<Plan, ReplayError> {
    let registry = stores.versions(entry);
    let serving = registry.ensure_active(entry.revision()).await?;
    let interrupted: Vec<VersionInfo> = registry
        .list()
        .await?
        .into_iter()
        .filter(|v| v.state == VersionState::Building)
        .collect();
    let mut resumable = None;
    for version in interrupted {
        let same = version.revision == entry.revision() && version.from_ms == start_ms;
        if same && !restart && resumable.is_none() {
            resumable = Some(version);
        } else if restart {
            tracing::info!(
                projection = entry.name(),
                version = version.version,
                "Discarding an interrupted rebuild (--restart)."
            );
            drop_version(stores, entry, version.version).await?;
        } else {
            return Err(ReplayError::Mismatch(mismatch(entry, &version, start_ms)));
        }
    }
    if let Some(building) = resumable {
        return Ok(Plan {
            serving,
            building,
            resumed: true,
        });
    }
    let building = registry.create_building(entry.revision(), start_ms).await?;
    Ok(Plan {
        serving,
        building,
        resumed: false,
    })
}

/// Why an interrupted rebuild cannot be resumed by this request.
fn mismatch(entry: &Entry, version: &VersionInfo, start_ms: Option<i64>) -> String {
    let from =
        |ms: Option<i64>| ms.map_or("offset zero".to_owned(), |ms| format!("{ms} (unix ms)"));
    let mut reasons = Vec::new();
    if version.revision != entry.revision() {
        reasons.push(format!(
            "it was started by revision {} of the code and this build has revision {}",
            version.revision,
            entry.revision()
        ));
    }
    if version.from_ms != start_ms {
        reasons.push(format!(
            "it starts from {} and this request from {}",
            from(version.from_ms),
            from(start_ms)
        ));
    }
    format!(
        "an interrupted rebuild of {} (v{}) exists, but {}; run the same command as before to resume it, or add --restart to discard it and start again",
        entry.name(),
        version.version,
        reasons.join(", and ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projectors::entry;

    #[test]
    fn a_mismatch_names_what_differs_and_how_to_go_on() {
        let wallets = entry("wallets").unwrap();
        let version = VersionInfo {
            version: 2,
            revision: wallets.revision() + 1,
            state: VersionState::Building,
            from_ms: Some(5),
            created_at_ms: 0,
            switched_at_ms: None,
        };
        let text = mismatch(wallets, &version, None);
        assert!(text.contains("wallets (v2)"), "{text}");
        assert!(text.contains("started by revision"), "{text}");
        assert!(
            text.contains("starts from 5 (unix ms) and this request from offset zero"),
            "{text}"
        );
        assert!(text.contains("--restart"), "{text}");
    }
}
