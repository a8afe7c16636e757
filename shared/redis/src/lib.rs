//! The Redis connection of the write API: one server (`SURGE_REDIS_URL`) or a Redis Cluster
//! (`SURGE_REDIS_CLUSTER_URLS`, seed nodes), behind one type, so a store is written once for
//! both.
//!
//! A cluster refuses a script or transaction whose keys live in different hash slots. So every
//! key names its owner (the user, the payment) through [`Redis::slot`]: in a cluster the owner
//! becomes a hash tag (`{42}`), which puts all of that owner's keys in one slot; on a single
//! server it stays as it was (`42`), so the keys of a running deployment keep their names.

use std::collections::HashMap;
use std::fmt::Display;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// How long connecting, and then each answer, may take before the call fails.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// The value of `field` in an `INFO` answer (`redis_version`, `connected_slaves`, ...).
pub fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        Some(value.trim())
    })
}

/// A multiplexed, self-reconnecting connection to a single Redis or to a Redis Cluster. Cheap
/// to clone; clones share the connection.
#[derive(Clone)]
pub enum Redis {
    Single(ConnectionManager),
    /// Routes each command to the master of its keys' slot, follows `MOVED` and `ASK`, and
    /// finds the new master after a failover.
    Cluster(ClusterConnection),
}

impl Redis {
    /// Connects to the server at `url`.
    pub async fn single(url: &str) -> RedisResult<Redis> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(TIMEOUT)
            .set_response_timeout(TIMEOUT);
        let manager = ConnectionManager::new_with_config(redis::Client::open(url)?, config).await?;
        Ok(Redis::Single(manager))
    }

    /// Connects to the cluster that the seed nodes `urls` belong to (any of them suffices).
    pub async fn cluster(urls: &[String]) -> RedisResult<Redis> {
        let client = ClusterClient::builder(urls.to_vec())
            .connection_timeout(TIMEOUT)
            .response_timeout(TIMEOUT)
            .build()?;
        Ok(Redis::Cluster(client.get_async_connection().await?))
    }

    /// The part of a key that names its owner: `{owner}` in a cluster, so that every key of one
    /// owner hashes to one slot and a script may touch them together; `owner` on a single
    /// server.
    pub fn slot(&self, owner: impl Display) -> String {
        match self {
            Redis::Single(_) => owner.to_string(),
            Redis::Cluster(_) => format!("{{{owner}}}"),
        }
    }

    /// What puts a key that does not otherwise name `owner` in `owner`'s slot: `{owner}:` to
    /// insert into its name in a cluster, nothing on a single server.
    pub fn beside(&self, owner: impl Display) -> String {
        match self {
            Redis::Single(_) => String::new(),
            Redis::Cluster(_) => format!("{{{owner}}}:"),
        }
    }

    /// A `SCAN` of the keys matching `pattern`, page by page ([`KeyScan::next_page`]): of the
    /// single server, or of every master of the cluster, one after the other (a cluster's
    /// `SCAN` reads one node), so the pattern need not lie within one hash tag.
    pub async fn scan(&self, pattern: &str, count: usize) -> RedisResult<KeyScan> {
        let nodes = match self {
            Redis::Single(_) => vec![None],
            Redis::Cluster(conn) => masters(&mut conn.clone())
                .await?
                .into_iter()
                .map(Some)
                .collect(),
        };
        Ok(KeyScan {
            pattern: pattern.to_owned(),
            count,
            nodes,
            cursor: 0,
        })
    }

    /// `INFO <section>` of the single server, or of every master of the cluster (the cluster
    /// client asks all masters and answers with one text per node).
    pub async fn info(&self, section: &str) -> RedisResult<Vec<String>> {
        let mut conn = self.clone();
        let mut info = redis::cmd("INFO");
        info.arg(section);
        match self {
            Redis::Single(_) => Ok(vec![info.query_async(&mut conn).await?]),
            Redis::Cluster(_) => {
                let per_node: HashMap<String, String> = info.query_async(&mut conn).await?;
                Ok(per_node.into_values().collect())
            }
        }
    }
}

/// A `SCAN` under way: the nodes left to read (the first one being read from `cursor`), `None`
/// for a single server. Keys written or moved between slots meanwhile may be missed or repeated,
/// as with any `SCAN`.
pub struct KeyScan {
    pattern: String,
    count: usize,
    nodes: Vec<Option<Route>>,
    cursor: u64,
}

impl KeyScan {
    /// The next page of keys (possibly empty), or `None` once every node was read to its end.
    pub async fn next_page(&mut self, redis: &Redis) -> RedisResult<Option<Vec<String>>> {
        let Some(node) = self.nodes.first() else {
            return Ok(None);
        };
        let mut scan = redis::cmd("SCAN");
        scan.arg(self.cursor)
            .arg("MATCH")
            .arg(&self.pattern)
            .arg("COUNT")
            .arg(self.count);
        let (next, keys): (u64, Vec<String>) = match (redis, node) {
            (Redis::Cluster(conn), Some(master)) => {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(*master));
                let page = conn.clone().route_command(&scan, routing).await?;
                redis::from_owned_redis_value(page)?
            }
            _ => scan.query_async(&mut redis.clone()).await?,
        };
        if next == 0 {
            self.nodes.remove(0);
        }
        self.cursor = next;
        Ok(Some(keys))
    }
}

/// A route to each master of the cluster: to the master of the first slot of each node that
/// serves slots (`CLUSTER SLOTS`), so it follows that slot if a failover moves it.
async fn masters(conn: &mut ClusterConnection) -> RedisResult<Vec<Route>> {
    let ranges: Vec<Value> = redis::cmd("CLUSTER").arg("SLOTS").query_async(conn).await?;
    let mut seen = Vec::new();
    let mut routes = Vec::new();
    for range in ranges {
        let Value::Array(range) = range else { continue };
        let (Some(start), Some(Value::Array(master))) = (range.first(), range.get(2)) else {
            continue;
        };
        let start: u16 = redis::from_redis_value(start)?;
        let address: (String, u16) = (
            redis::from_redis_value(&master[0])?,
            redis::from_redis_value(&master[1])?,
        );
        if !seen.contains(&address) {
            seen.push(address);
            routes.push(Route::new(start, SlotAddr::Master));
        }
    }
    Ok(routes)
}

impl ConnectionLike for Redis {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Redis::Single(conn) => conn.req_packed_command(cmd),
            Redis::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Redis::Single(conn) => conn.req_packed_commands(cmd, offset, count),
            Redis::Cluster(conn) => conn.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Redis::Single(conn) => conn.get_db(),
            Redis::Cluster(conn) => conn.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::info_field;

    #[test]
    fn info_fields_are_found_by_their_whole_name() {
        let info = "# Server\r\nredis_version_suffix:x\r\nredis_version:7.0.15\r\n\
                    # Replication\r\nconnected_slaves:1\r\n";
        assert_eq!(info_field(info, "redis_version"), Some("7.0.15"));
        assert_eq!(info_field(info, "connected_slaves"), Some("1"));
        assert_eq!(info_field(info, "connected"), None);
        assert_eq!(info_field(info, "process_id"), None);
    }
}
