//! The consistency token: where an event landed (topic, partition, offset), handed to the client
//! by the write API and given back to the query API to read its own writes. Opaque to clients:
//! `v1.` followed by base64url of `topic/partition/offset`, so the format can change behind the
//! version prefix.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a Surge consistency token")]
pub struct InvalidToken;

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = format!("{}/{}/{}", self.topic, self.partition, self.offset);
        write!(f, "v1.{}", URL_SAFE_NO_PAD.encode(raw))
    }
}

impl FromStr for Position {
    type Err = InvalidToken;

    fn from_str(token: &str) -> Result<Self, InvalidToken> {
        let body = token.strip_prefix("v1.").ok_or(InvalidToken)?;
        let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| InvalidToken)?;
        let raw = String::from_utf8(raw).map_err(|_| InvalidToken)?;
        // Topic names may not contain '/', so splitting from the right is unambiguous.
        let mut parts = raw.rsplitn(3, '/');
        let offset = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or(InvalidToken)?;
        let partition = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or(InvalidToken)?;
        let topic = parts.next().filter(|t| !t.is_empty()).ok_or(InvalidToken)?;
        if partition < 0 || offset < 0 {
            return Err(InvalidToken);
        }
        Ok(Position {
            topic: topic.to_owned(),
            partition,
            offset,
        })
    }
}

impl serde::Serialize for Position {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let p = Position {
            topic: "surge.events".into(),
            partition: 7,
            offset: 123_456,
        };
        let token = p.to_string();
        assert!(token.starts_with("v1."));
        assert_eq!(token.parse::<Position>(), Ok(p));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "v1.", "v2.abc", "v1.!!!", "v1.dG9waWMvMS94"] {
            assert_eq!(bad.parse::<Position>(), Err(InvalidToken), "{bad:?}");
        }
        let negative = format!("v1.{}", URL_SAFE_NO_PAD.encode("t/-1/5"));
        assert_eq!(negative.parse::<Position>(), Err(InvalidToken));
    }
}
