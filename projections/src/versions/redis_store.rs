//! The version registry in Redis: hash `<prefix>:<name>:versions`, field = version number,
//! value = [`VersionInfo`] as JSON. Writes that must see the whole hash run as scripts, so two
//! processes never number two versions alike.

use std::collections::HashMap;

use redis::Script;
use surge_redis::Redis;

use super::{VersionInfo, VersionState, VersionsError};

pub(super) async fn list(
    redis: &Redis,
    projection: &str,
    key: &str,
) -> Result<Vec<VersionInfo>, VersionsError> {
    let mut conn = redis.clone();
    let fields: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(key)
        .query_async(&mut conn)
        .await?;
    fields
        .into_iter()
        .map(|(field, json)| {
            serde_json::from_str(&json).map_err(|e| VersionsError::Corrupt {
                projection: projection.to_owned(),
                version: field,
                reason: e.to_string(),
            })
        })
        .collect()
}

fn json(info: &VersionInfo) -> String {
    serde_json::to_string(info).expect("version info serialises")
}

pub(super) async fn insert_if_none(
    redis: &Redis,
    _projection: &str,
    key: &str,
    first: &VersionInfo,
) -> Result<(), VersionsError> {
    let mut conn = redis.clone();
    // HSETNX on an empty hash only: the first writer wins, later ones change nothing.
    let script = Script::new(
        "if redis.call('HLEN', KEYS[1]) == 0 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end return 1",
    );
    let _: i64 = script
        .key(key)
        .arg(first.version)
        .arg(json(first))
        .invoke_async(&mut conn)
        .await?;
    Ok(())
}

pub(super) async fn insert_next(
    redis: &Redis,
    _projection: &str,
    key: &str,
    mut info: VersionInfo,
) -> Result<VersionInfo, VersionsError> {
    let mut conn = redis.clone();
    // The JSON is written with a placeholder version the script replaces, so numbering and
    // writing happen in one atomic step.
    info.version = 0;
    let script = Script::new(
        r#"
local next = 1
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  local n = tonumber(field)
  if n and n >= next then next = n + 1 end
end
local info = cjson.decode(ARGV[1])
info['version'] = next
redis.call('HSET', KEYS[1], tostring(next), cjson.encode(info))
return next
"#,
    );
    let next: u32 = script
        .key(key)
        .arg(json(&info))
        .invoke_async(&mut conn)
        .await?;
    info.version = next;
    Ok(info)
}

pub(super) async fn set_state(
    redis: &Redis,
    projection: &str,
    key: &str,
    version: u32,
    state: VersionState,
) -> Result<(), VersionsError> {
    let mut all = list(redis, projection, key).await?;
    let Some(info) = all.iter_mut().find(|v| v.version == version) else {
        return Ok(());
    };
    info.state = state;
    let mut conn = redis.clone();
    let _: () = redis::cmd("HSET")
        .arg(key)
        .arg(version)
        .arg(json(info))
        .query_async(&mut conn)
        .await?;
    Ok(())
}

/// The states of `versions` in the versions hash `key`, in their order: `None` for a version not
/// registered, or whose entry this build cannot read.
pub(crate) async fn states_of(
    redis: &Redis,
    key: &str,
    versions: &[u32],
) -> Result<Vec<Option<VersionState>>, redis::RedisError> {
    #[derive(serde::Deserialize)]
    struct Entry {
        state: VersionState,
    }
    let entries: Vec<Option<String>> = redis::cmd("HMGET")
        .arg(key)
        .arg(versions)
        .query_async(&mut redis.clone())
        .await?;
    Ok(entries
        .into_iter()
        .map(|json| Some(serde_json::from_str::<Entry>(&json?).ok()?.state))
        .collect())
}

/// The keys matching `pattern`, a `SCAN` page at a time, each page handed to `each`. Never
/// `KEYS`: a version may hold millions of keys, and Redis serves reads meanwhile. In a cluster,
/// from every master ([`Redis::scan`]).
pub(crate) async fn for_each_page<F, Fut>(
    redis: &Redis,
    pattern: &str,
    mut each: F,
) -> Result<(), redis::RedisError>
where
    F: FnMut(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(), redis::RedisError>>,
{
    let mut scan = redis.scan(pattern, 1000).await?;
    while let Some(keys) = scan.next_page(redis).await? {
        each(keys).await?;
    }
    Ok(())
}
