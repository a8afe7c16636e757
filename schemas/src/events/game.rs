//! The game: taps, daily check-ins and the referral credits derived from sessions.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{PayloadType, uuid_as_str};
use crate::rules::{MAX_TAPS, Violation, value};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapsSubmitted {
    pub count: i32,
}

impl PayloadType for TapsSubmitted {
    fn check(&self) -> Result<(), Violation> {
        let TapsSubmitted { count } = self;
        if (1..=MAX_TAPS).contains(count) {
            Ok(())
        } else {
            Err(value("count", format!("must be between 1 and {MAX_TAPS}")))
        }
    }

    fn energy_cost(&self) -> u64 {
        u64::try_from(self.count).unwrap_or(0)
    }

    fn sample() -> Self {
        TapsSubmitted { count: 1000 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyCheckedIn {
    /// Days since 1970-01-01, UTC.
    pub day: i32,
}

impl PayloadType for DailyCheckedIn {
    /// Any day: the write API derives it from an `occurred_at` it bounds itself.
    fn check(&self) -> Result<(), Violation> {
        let DailyCheckedIn { day: _ } = self;
        Ok(())
    }

    fn energy_cost(&self) -> u64 {
        0
    }

    fn sample() -> Self {
        DailyCheckedIn { day: 20_050 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferralCredited {
    pub referred_user_id: i64,
    #[serde(serialize_with = "uuid_as_str")]
    pub source_event_id: Uuid,
}

impl PayloadType for ReferralCredited {
    fn check(&self) -> Result<(), Violation> {
        let ReferralCredited {
            referred_user_id,
            source_event_id: _,
        } = self;
        if *referred_user_id > 0 {
            Ok(())
        } else {
            Err(value(
                "referred_user_id",
                "must be a positive user id".into(),
            ))
        }
    }

    fn energy_cost(&self) -> u64 {
        0
    }

    fn sample() -> Self {
        ReferralCredited {
            referred_user_id: 9_000_000_000,
            source_event_id: Uuid::now_v7(),
        }
    }
}
