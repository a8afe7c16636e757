//! The game's coin rules, shared by every projection that counts coins (wallets, leaderboard),
//! so "score = coins earned" holds across stores. Pure: no I/O.

use serde::{Deserialize, Serialize};
use surge_schemas::{Event, Payload};

pub const COINS_PER_TAP: i64 = 1;
/// A check-in earns this times the streak length, capped at [`STREAK_CAP`] days.
pub const CHECKIN_BONUS: i64 = 100;
pub const STREAK_CAP: i32 = 7;
/// The referrer earns this when a referral is credited.
pub const REFERRAL_BONUS: i64 = 500;

/// A user's daily check-in streak, by UTC day (days since 1970-01-01).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Streak {
    pub current: i32,
    pub best: i32,
    pub last_day: Option<i32>,
}

/// What a check-in did to the streak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckIn {
    /// First check-in of its day: the streak is now this long.
    Counted(i32),
    /// Already checked in that day.
    SameDay,
    /// Older than the last counted day (an offline check-in that arrived late): ignored.
    Late,
}

impl Streak {
    pub fn check_in(&mut self, day: i32) -> CheckIn {
        match self.last_day {
            Some(last) if day == last => return CheckIn::SameDay,
            Some(last) if day < last => return CheckIn::Late,
            Some(last) if day == last + 1 => self.current += 1,
            _ => self.current = 1,
        }
        self.last_day = Some(day);
        self.best = self.best.max(self.current);
        CheckIn::Counted(self.current)
    }
}

pub fn checkin_bonus(streak: i32) -> i64 {
    CHECKIN_BONUS * i64::from(streak.clamp(1, STREAK_CAP))
}

/// Coins `event` earns its user (`event.envelope.user_id`), updating the streak for check-ins.
/// Events must be applied once each, in partition order; the runtime guarantees both.
pub fn coins(event: &Event, streak: &mut Streak) -> i64 {
    match &event.payload {
        Payload::TapsSubmitted(t) => COINS_PER_TAP * i64::from(t.count),
        Payload::DailyCheckedIn(c) => match streak.check_in(c.day) {
            CheckIn::Counted(length) => checkin_bonus(length),
            CheckIn::SameDay | CheckIn::Late => 0,
        },
        Payload::ReferralCredited(_) => REFERRAL_BONUS,
        Payload::SessionStarted(_) | Payload::ProfileUpdated(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaks_grow_on_consecutive_days_and_reset_after_a_gap() {
        let mut s = Streak::default();
        assert_eq!(s.check_in(100), CheckIn::Counted(1));
        assert_eq!(s.check_in(100), CheckIn::SameDay);
        assert_eq!(s.check_in(101), CheckIn::Counted(2));
        assert_eq!(s.check_in(102), CheckIn::Counted(3));
        assert_eq!(s.check_in(101), CheckIn::Late);
        assert_eq!(s.check_in(105), CheckIn::Counted(1));
        assert_eq!(
            s,
            Streak {
                current: 1,
                best: 3,
                last_day: Some(105)
            }
        );
    }

    #[test]
    fn the_bonus_is_capped() {
        assert_eq!(checkin_bonus(1), 100);
        assert_eq!(checkin_bonus(7), 700);
        assert_eq!(checkin_bonus(30), 700);
    }
}
