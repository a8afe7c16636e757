//! Reading the leaderboard: the top of a period with names, and one user's standing.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use futures::future::try_join_all;
use redis::{ErrorKind, RedisError, RedisResult, Script};
use serde::Serialize;
use surge_redis::Redis;

use super::period::{NAMES_SUFFIX, Period};
use crate::partitioning::partition_of_user;

/// The most entries [`top`] returns; larger limits are cut to this.
pub const MAX_LIMIT: usize = 1000;

/// One row of a leaderboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Entry {
    /// 1-based. Equal scores are ordered by the user id's decimal string, descending byte by
    /// byte (as Redis orders them within one sorted set), so ranks are unique and [`top`],
    /// [`rank_of`] and [`places_of`] agree on them across shards.
    pub rank: u64,
    pub user_id: i64,
    /// Coins earned in the period.
    pub score: i64,
    /// The name from the leaderboard's `names` hash, if the user has one yet.
    pub name: Option<String>,
}

/// A leaderboard version's sets: under its key space, one shard per partition of the events
/// topic (`<suffix>:<partition>`, see [`shard`]). A user's coins and name are in the shard of
/// the partition their events are on ([`partition_of_user`]), written by that partition's
/// batches; the readers merge the shards.
#[derive(Debug, Clone, Copy)]
pub struct Board<'a> {
    /// The version's key space, `<deployment prefix>:leaderboard:v<version>`.
    pub base: &'a str,
    /// Partitions of the events topic: a shard each.
    pub partitions: i32,
}

impl Board<'_> {
    fn key(&self, suffix: &str, partition: i32) -> String {
        format!("{}:{}", self.base, shard(suffix, partition))
    }

    fn shard_of(&self, user_id: i64) -> i32 {
        partition_of_user(user_id, self.partitions)
    }
}

/// The key suffix of the shard of `suffix` (a period's, or [`NAMES_SUFFIX`]) for `partition`:
/// `<suffix>:<partition>`. The processors' fold writes an event's coins and names there.
pub fn shard(suffix: &str, partition: i32) -> String {
    format!("{suffix}:{partition}")
}

/// Reads the top slice of one shard and the names of its members in one round trip (and one
/// consistent snapshot). Returns `member, score, name-or-nil` triples, flattened.
const TOP_SCRIPT: &str = r"
local flat = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
if #flat == 0 then return {} end
local members = {}
for i = 1, #flat, 2 do members[#members + 1] = flat[i] end
local names = redis.call('HMGET', KEYS[2], unpack(members))
local out = {}
for i = 1, #members do
  out[3 * i - 2] = members[i]
  out[3 * i - 1] = flat[2 * i]
  out[3 * i] = names[i]
end
return out
";

/// For each `(set, score, member)` of ARGV (`set` indexes KEYS), how many members of one shard
/// rank above `member` with `score`: a higher score, or the same score and a greater member,
/// byte by byte, which is how `ZREVRANGE` orders equal scores. The ties of a score are
/// contiguous in the set, ascending by member, so a binary search by index finds them.
const ABOVE_SCRIPT: &str = r"
local function greater(a, b)
  -- Byte by byte, as Redis orders members: Lua's own < follows the locale.
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
local out = {}
for i = 1, #ARGV, 3 do
  local key, score, member = KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2]
  local above = redis.call('ZCOUNT', key, '(' .. score, '+inf')
  local ties = redis.call('ZCOUNT', key, score, score)
  if ties > 0 then
    local first = redis.call('ZCOUNT', key, '-inf', '(' .. score)
    local lo, hi = first, first + ties
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if greater(redis.call('ZRANGE', key, mid, mid)[1], member) then hi = mid else lo = mid + 1 end
    end
    above = above + first + ties - lo
  end
  out[#out + 1] = above
end
return out
";

static TOP: LazyLock<Script> = LazyLock::new(|| Script::new(TOP_SCRIPT));
static ABOVE: LazyLock<Script> = LazyLock::new(|| Script::new(ABOVE_SCRIPT));

/// One shard's row.
#[derive(Clone)]
struct Row {
    member: String,
    score: i64,
    name: Option<String>,
}

impl Row {
    /// Best first: a higher score, then a greater member byte by byte (as `ZREVRANGE`).
    fn order(&self, other: &Row) -> std::cmp::Ordering {
        (other.score.cmp(&self.score))
            .then_with(|| other.member.as_bytes().cmp(self.member.as_bytes()))
    }
}

/// The best `limit` (at most [`MAX_LIMIT`]) entries of `period`, best first, merged from every
/// shard. Each shard is asked first for a little over its share of `limit` (read at once, each
/// in one script); a shard that gave all it was asked for, and whose last row still made the
/// cut, may hold more of the top, so it is read again for all of `limit`. Its unread rows rank
/// below its last one, so every other shard's are out of the top.
pub async fn top(
    conn: &mut Redis,
    board: Board<'_>,
    period: Period,
    limit: usize,
) -> RedisResult<Vec<Entry>> {
    let limit = limit.min(MAX_LIMIT);
    if limit == 0 || board.partitions < 1 {
        return Ok(Vec::new());
    }
    let suffix = period.suffix();
    let first = limit.min(limit.div_ceil(board.partitions as usize) * 2 + 4);
    let mut shards: Vec<Vec<Row>> = try_join_all(
        (0..board.partitions).map(|partition| shard_top(conn, board, &suffix, partition, first)),
    )
    .await?;
    let cut = merged(&shards, limit);
    let more: Vec<usize> = (shards.iter().enumerate())
        .filter(|(_, rows)| rows.len() == first && first < limit)
        .filter(|(_, rows)| {
            let last = rows.last().expect("a full page");
            cut.len() < limit || last.order(&cut[limit - 1]).is_le()
        })
        .map(|(i, _)| i)
        .collect();
    if !more.is_empty() {
        let again = try_join_all(more.iter().map(|&i| {
            let partition = i32::try_from(i).expect("a shard index");
            shard_top(conn, board, &suffix, partition, limit)
        }))
        .await?;
        for (i, rows) in more.into_iter().zip(again) {
            shards[i] = rows;
        }
    }
    merged(&shards, limit)
        .into_iter()
        .zip(1..)
        .map(|(row, rank)| {
            Ok(Entry {
                rank,
                user_id: parse_member(&row.member)?,
                score: row.score,
                name: row.name,
            })
        })
        .collect()
}

/// The best `limit` rows of `shards` together, best first.
fn merged(shards: &[Vec<Row>], limit: usize) -> Vec<Row> {
    let mut rows: Vec<Row> = shards.iter().flatten().cloned().collect();
    rows.sort_by(Row::order);
    rows.truncate(limit);
    rows
}

/// The best `limit` rows of one shard of `suffix`, with names, in one script.
async fn shard_top(
    conn: &Redis,
    board: Board<'_>,
    suffix: &str,
    partition: i32,
    limit: usize,
) -> RedisResult<Vec<Row>> {
    let flat: Vec<Option<String>> = TOP
        .key(board.key(suffix, partition))
        .key(board.key(NAMES_SUFFIX, partition))
        .arg(limit)
        .invoke_async(&mut conn.clone())
        .await?;
    flat.chunks(3)
        .map(|triple| match triple {
            [Some(member), Some(score), name] => Ok(Row {
                member: member.clone(),
                score: parse_score(score)?,
                name: name.clone().filter(|n| !n.is_empty()),
            }),
            _ => Err(corrupt(
                "a leaderboard row is incomplete",
                format!("{triple:?}"),
            )),
        })
        .collect()
}

/// `user_id`'s entry in `period`, or `None` if they earned nothing in it.
pub async fn rank_of(
    conn: &mut Redis,
    board: Board<'_>,
    period: Period,
    user_id: i64,
) -> RedisResult<Option<Entry>> {
    let partition = board.shard_of(user_id);
    let member = user_id.to_string();
    let (score, name): (Option<String>, Option<String>) = redis::pipe()
        .atomic()
        .zscore(board.key(&period.suffix(), partition), &member)
        .hget(board.key(NAMES_SUFFIX, partition), &member)
        .query_async(conn)
        .await?;
    let Some(score) = score else {
        return Ok(None);
    };
    let above = above(conn, board, &[period], &[(0, score.clone(), member)]).await?;
    Ok(Some(Entry {
        rank: above[0] + 1,
        user_id,
        score: parse_score(&score)?,
        name: name.filter(|n| !n.is_empty()),
    }))
}

/// Every user's score in `period`, from every shard: for checking the leaderboard against a fold
/// of the topic. It reads whole sets, so never on a request.
pub async fn scores(
    conn: &Redis,
    board: Board<'_>,
    period: Period,
) -> RedisResult<BTreeMap<i64, i64>> {
    let suffix = period.suffix();
    let shards = (0..board.partitions).map(|partition| {
        let mut conn = conn.clone();
        let set = board.key(&suffix, partition);
        async move {
            let flat: Vec<(String, String)> = redis::cmd("ZRANGE")
                .arg(set)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(&mut conn)
                .await?;
            RedisResult::Ok(flat)
        }
    });
    let mut scores = BTreeMap::new();
    for (member, score) in try_join_all(shards).await?.into_iter().flatten() {
        scores.insert(parse_member(&member)?, parse_score(&score)?);
    }
    Ok(scores)
}

/// A place on one leaderboard, without the name (for the player's own view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Place {
    /// 1 is the top.
    pub rank: u64,
    pub score: i64,
}

/// The places of many `users` on each of `periods`: per user, one per period, `None` where
/// unranked. What live streams show as each player's rank. Two rounds: the scores from each
/// user's shard, then one script per shard counting who is above them.
pub async fn places_of(
    conn: &mut Redis,
    board: Board<'_>,
    periods: &[Period],
    users: &[i64],
) -> RedisResult<Vec<Vec<Option<Place>>>> {
    let suffixes: Vec<String> = periods.iter().map(Period::suffix).collect();
    let mut by_shard: HashMap<i32, Vec<usize>> = HashMap::new();
    for (i, &user) in users.iter().enumerate() {
        by_shard.entry(board.shard_of(user)).or_default().push(i);
    }
    let read = try_join_all(by_shard.into_iter().map(|(partition, of_shard)| {
        let mut pipe = redis::pipe();
        for &i in &of_shard {
            let member = users[i].to_string();
            for suffix in &suffixes {
                pipe.zscore(board.key(suffix, partition), &member);
            }
        }
        let mut conn = conn.clone();
        async move {
            let flat: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
            RedisResult::Ok((of_shard, flat))
        }
    }))
    .await?;
    let mut scores: Vec<Vec<Option<String>>> = vec![Vec::new(); users.len()];
    for (of_shard, flat) in read {
        for (i, of_user) in of_shard.into_iter().zip(flat.chunks(suffixes.len().max(1))) {
            scores[i] = of_user.to_vec();
        }
    }
    let mut queries = Vec::new();
    for (user, of_user) in users.iter().zip(&scores) {
        for (period, score) in of_user.iter().enumerate() {
            if let Some(score) = score {
                queries.push((period, score.clone(), user.to_string()));
            }
        }
    }
    let mut above = above(conn, board, periods, &queries).await?.into_iter();
    scores
        .iter()
        .map(|of_user| {
            of_user
                .iter()
                .map(|score| match score {
                    Some(score) => Ok(Some(Place {
                        rank: above.next().unwrap_or(0) + 1,
                        score: parse_score(score)?,
                    })),
                    None => Ok(None),
                })
                .collect()
        })
        .collect()
}

/// For each `(period index, score, member)` of `queries`, how many members rank above it on
/// that period, summed over every shard (one [`ABOVE_SCRIPT`] each, at once).
async fn above(
    conn: &Redis,
    board: Board<'_>,
    periods: &[Period],
    queries: &[(usize, String, String)],
) -> RedisResult<Vec<u64>> {
    if queries.is_empty() {
        return Ok(Vec::new());
    }
    let suffixes: Vec<String> = periods.iter().map(Period::suffix).collect();
    let shards = (0..board.partitions).map(|partition| {
        let mut invocation = ABOVE.prepare_invoke();
        for suffix in &suffixes {
            invocation.key(board.key(suffix, partition));
        }
        for (period, score, member) in queries {
            invocation.arg(period + 1).arg(score).arg(member);
        }
        let mut conn = conn.clone();
        async move { invocation.invoke_async::<Vec<u64>>(&mut conn).await }
    });
    let mut sums = vec![0; queries.len()];
    for counts in try_join_all(shards).await? {
        for (sum, count) in sums.iter_mut().zip(counts) {
            *sum += count;
        }
    }
    Ok(sums)
}

fn parse_member(member: &str) -> RedisResult<i64> {
    member
        .parse()
        .map_err(|_| corrupt("a leaderboard member is not a user id", member.to_owned()))
}

/// Scores are integral coin counts kept as doubles, exact up to 2^53.
fn parse_score(score: &str) -> RedisResult<i64> {
    match score.parse::<f64>() {
        Ok(s) if s.is_finite() && s.fract() == 0.0 => Ok(s as i64),
        _ => Err(corrupt(
            "a leaderboard score is not a whole number",
            score.to_owned(),
        )),
    }
}

fn corrupt(what: &'static str, detail: String) -> RedisError {
    RedisError::from((ErrorKind::TypeError, what, detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_must_be_whole_numbers() {
        assert_eq!(parse_score("1500").ok(), Some(1500));
        assert_eq!(parse_score("-3").ok(), Some(-3));
        assert!(parse_score("1.5").is_err());
        assert!(parse_score("inf").is_err());
        assert!(parse_member("alice").is_err());
    }
}
