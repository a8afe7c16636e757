//! Reading the leaderboard: the top of a period with names, and one user's standing.

use std::sync::LazyLock;

use redis::{ErrorKind, RedisError, RedisResult, Script};
use serde::Serialize;
use surge_redis::Redis;

use super::period::{NAMES_SUFFIX, Period};

/// The most entries [`top`] returns; larger limits are cut to this.
pub const MAX_LIMIT: usize = 1000;

/// One row of a leaderboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Entry {
    /// 1-based. Equal scores are ordered by Redis (member string descending), so ranks are
    /// unique and [`top`] and [`rank_of`] agree on them.
    pub rank: u64,
    pub user_id: i64,
    /// Coins earned in the period.
    pub score: i64,
    /// The name from the leaderboard's `names` hash, if the user has one yet.
    pub name: Option<String>,
}

/// Reads the top slice and the names of its members in one round trip (and one consistent
/// snapshot). Returns `member, score, name-or-nil` triples, flattened.
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

/// The best `limit` (at most [`MAX_LIMIT`]) entries of `period`, best first. `keys_base` is the
/// leaderboard version's key space, `<deployment prefix>:leaderboard:v<version>`.
pub async fn top(
    conn: &mut Redis,
    keys_base: &str,
    period: Period,
    limit: usize,
) -> RedisResult<Vec<Entry>> {
    let limit = limit.min(MAX_LIMIT);
    if limit == 0 {
        return Ok(Vec::new());
    }
    let flat: Vec<Option<String>> = TOP
        .key(key(keys_base, &period.suffix()))
        .key(key(keys_base, NAMES_SUFFIX))
        .arg(limit)
        .invoke_async(conn)
        .await?;
    flat.chunks(3)
        .zip(1..)
        .map(|(triple, rank)| match triple {
            [Some(member), Some(score), name] => Ok(Entry {
                rank,
                user_id: parse_member(member)?,
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
    keys_base: &str,
    period: Period,
    user_id: i64,
) -> RedisResult<Option<Entry>> {
    let set = key(keys_base, &period.suffix());
    let member = user_id.to_string();
    let (rank, score, name): (Option<u64>, Option<String>, Option<String>) = redis::pipe()
        .atomic()
        .zrevrank(&set, &member)
        .zscore(&set, &member)
        .hget(key(keys_base, NAMES_SUFFIX), &member)
        .query_async(conn)
        .await?;
    match (rank, score) {
        (Some(rank), Some(score)) => Ok(Some(Entry {
            rank: rank + 1,
            user_id,
            score: parse_score(&score)?,
            name: name.filter(|n| !n.is_empty()),
        })),
        _ => Ok(None),
    }
}

/// A place on one leaderboard, without the name (for the player's own view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Place {
    /// 1 is the top.
    pub rank: u64,
    pub score: i64,
}

/// The places of many `users` on each of `periods` in one pipeline: per user, one per period,
/// `None` where unranked. What live streams show as each player's rank.
pub async fn places_of(
    conn: &mut Redis,
    keys_base: &str,
    periods: &[Period],
    users: &[i64],
) -> RedisResult<Vec<Vec<Option<Place>>>> {
    let sets: Vec<String> = periods
        .iter()
        .map(|period| key(keys_base, &period.suffix()))
        .collect();
    let mut pipe = redis::pipe();
    for user in users {
        let member = user.to_string();
        for set in &sets {
            pipe.zrevrank(set, &member).zscore(set, &member);
        }
    }
    let replies: Vec<(Option<u64>, Option<String>)> = pipe.query_async(conn).await?;
    replies
        .chunks(sets.len().max(1))
        .map(|of_user| {
            of_user
                .iter()
                .map(|(rank, score)| match (rank, score) {
                    (Some(rank), Some(score)) => Ok(Some(Place {
                        rank: rank + 1,
                        score: parse_score(score)?,
                    })),
                    _ => Ok(None),
                })
                .collect()
        })
        .collect()
}

/// The same join as the processors' `KeySpace::key`; their integration tests write through
/// `KeySpace` and read through here, so a difference fails them.
fn key(keys_base: &str, suffix: &str) -> String {
    format!("{keys_base}:{suffix}")
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
