//! Reading the leaderboard: the top of a period with names, and one user's standing.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use futures::future::try_join_all;
use redis::{ErrorKind, RedisError, RedisResult, Script};
use serde::Serialize;
use surge_redis::Redis;

use super::period::{NAMES_SUFFIX, Period};
use crate::naming;
use crate::partitioning::partition_of_user;

/// The most entries [`top`] returns; larger limits are cut to this.
pub const MAX_LIMIT: usize = 1000;

/// One row of a leaderboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Entry {
    /// 1-based. Equal scores are ordered by the shard (the user's partition, higher first), then
    /// by the user id's decimal string, descending byte by byte (as Redis orders them within one
    /// sorted set), so ranks are unique and [`top`], [`rank_of`] and [`places_of`] agree on them.
    pub rank: u64,
    pub user_id: i64,
    /// Coins earned in the period.
    pub score: i64,
    /// The name from the leaderboard's `names` hash, if the user has one yet.
    pub name: Option<String>,
}

/// A leaderboard version's sets: one shard per partition of the events topic, in the
/// partition's key space ([`Board::key`]). A user's coins and name are in the shard of the
/// partition their events are on ([`partition_of_user`]), written by that partition's batches;
/// the readers merge the shards.
#[derive(Debug, Clone, Copy)]
pub struct Board<'a> {
    /// The version's key space, `<deployment prefix>:leaderboard:v<version>`.
    pub base: &'a str,
    /// Partitions of the events topic: a shard each.
    pub partitions: i32,
}

impl Board<'_> {
    /// The shard of `suffix` (a period's, or [`NAMES_SUFFIX`]) for `partition`:
    /// `<partition's key space>:<suffix>`, where the processors' fold writes its events' coins
    /// and names.
    pub fn key(&self, suffix: &str, partition: i32) -> String {
        format!(
            "{}:{suffix}",
            naming::partition_keys_base(self.base, partition)
        )
    }

    fn shard_of(&self, user_id: i64) -> i32 {
        partition_of_user(user_id, self.partitions)
    }
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

static TOP: LazyLock<Script> = LazyLock::new(|| Script::new(TOP_SCRIPT));

/// One shard's row.
#[derive(Clone)]
struct Row {
    partition: i32,
    member: String,
    score: i64,
    name: Option<String>,
}

impl Row {
    /// Best first: a higher score, then (equal scores) a higher shard, then a greater member
    /// byte by byte (as `ZREVRANGE` orders equal scores within one set).
    fn order(&self, other: &Row) -> std::cmp::Ordering {
        (other.score.cmp(&self.score))
            .then_with(|| other.partition.cmp(&self.partition))
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
                partition,
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
    let (set, member) = (board.key(&period.suffix(), partition), user_id.to_string());
    let (rank, score, name): (Option<u64>, Option<String>, Option<String>) = redis::pipe()
        .atomic()
        .zrevrank(&set, &member)
        .zscore(&set, &member)
        .hget(board.key(NAMES_SUFFIX, partition), &member)
        .query_async(conn)
        .await?;
    let (Some(rank), Some(score)) = (rank, score) else {
        return Ok(None);
    };
    let standing = Standing {
        period: 0,
        partition,
        rank,
        score,
    };
    let above = elsewhere(conn, board, &[period], std::slice::from_ref(&standing)).await?;
    Ok(Some(Entry {
        rank: standing.rank + above[0] + 1,
        user_id,
        score: parse_score(&standing.score)?,
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
/// unranked. What live streams show as each player's rank. Two rounds of a pipeline per shard:
/// the users' ranks and scores in their own shards, then who is above them in the others.
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
                let set = board.key(suffix, partition);
                pipe.zrevrank(&set, &member).zscore(&set, &member);
            }
        }
        let mut conn = conn.clone();
        async move {
            let flat: Vec<(Option<u64>, Option<String>)> = pipe.query_async(&mut conn).await?;
            RedisResult::Ok((partition, of_shard, flat))
        }
    }))
    .await?;
    let mut standings: Vec<Vec<Option<Standing>>> = vec![Vec::new(); users.len()];
    for (partition, of_shard, flat) in read {
        for (i, of_user) in of_shard.into_iter().zip(flat.chunks(suffixes.len().max(1))) {
            standings[i] = (of_user.iter().enumerate())
                .map(|(period, (rank, score))| {
                    Some(Standing {
                        period,
                        partition,
                        rank: (*rank)?,
                        score: score.clone()?,
                    })
                })
                .collect();
        }
    }
    let queries: Vec<Standing> = standings.iter().flatten().flatten().cloned().collect();
    let mut above = elsewhere(conn, board, periods, &queries).await?.into_iter();
    standings
        .iter()
        .map(|of_user| {
            of_user
                .iter()
                .map(|standing| match standing {
                    Some(standing) => Ok(Some(Place {
                        rank: standing.rank + above.next().unwrap_or(0) + 1,
                        score: parse_score(&standing.score)?,
                    })),
                    None => Ok(None),
                })
                .collect()
        })
        .collect()
}

/// A user's place within their own shard of one period.
#[derive(Debug, Clone)]
struct Standing {
    /// Which of the asked periods.
    period: usize,
    partition: i32,
    /// 0-based, within the shard (`ZREVRANK`).
    rank: u64,
    score: String,
}

/// For each of `standings`, how many members of the other shards rank above it: a higher score,
/// or the same score in a higher shard ([`Row::order`]). One `ZCOUNT` per standing per shard,
/// a pipeline per shard, at once.
async fn elsewhere(
    conn: &Redis,
    board: Board<'_>,
    periods: &[Period],
    standings: &[Standing],
) -> RedisResult<Vec<u64>> {
    if standings.is_empty() {
        return Ok(Vec::new());
    }
    let suffixes: Vec<String> = periods.iter().map(Period::suffix).collect();
    let shards = (0..board.partitions).map(|partition| {
        let mut pipe = redis::pipe();
        let mut asked = Vec::new();
        for (i, standing) in standings.iter().enumerate() {
            if standing.partition == partition {
                continue; // its own shard's are in its rank
            }
            asked.push(i);
            let set = board.key(&suffixes[standing.period], partition);
            // A higher shard's equal scores rank above, a lower one's below.
            let min = if partition > standing.partition {
                standing.score.clone()
            } else {
                format!("({}", standing.score)
            };
            pipe.zcount(set, min, "+inf");
        }
        let mut conn = conn.clone();
        async move {
            let counts: Vec<u64> = pipe.query_async(&mut conn).await?;
            RedisResult::Ok(asked.into_iter().zip(counts))
        }
    });
    let mut sums = vec![0; standings.len()];
    for (i, count) in try_join_all(shards).await?.into_iter().flatten() {
        sums[i] += count;
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
