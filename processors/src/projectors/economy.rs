//! The game's coin rules, shared by every projection that counts coins (wallets, leaderboard),
//! so "score = coins earned" holds across stores. Which events earn, and how, is decided in one
//! place, [`earning`] (in [`crate::decisions`], beside every other projection's decisions).
//! Pure: no I/O.

use serde::{Deserialize, Serialize};
use surge_schemas::Event;

pub use crate::decisions::earning;

use crate::runtime::ApplyError;

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
    /// The streak a row keeps as three columns: current, best, last day.
    pub fn from_columns(current: i32, best: i32, last_day: Option<i32>) -> Streak {
        Streak {
            current,
            best,
            last_day,
        }
    }

    /// Its three columns, as [`from_columns`](Self::from_columns) takes them.
    pub fn columns(&self) -> (i32, i32, Option<i32>) {
        (self.current, self.best, self.last_day)
    }

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

/// How an event earns coins. [`earning`] decides it for every event type in one exhaustive
/// match (in [`crate::decisions`]), so a new event type does not compile until this rule says
/// what it earns; wallets, leaderboard and the benchmarks all ask it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Earning {
    /// Never earns (sessions, profile updates).
    Nothing,
    /// [`COINS_PER_TAP`] per tap.
    Taps { count: i32 },
    /// The streak bonus when it is the first check-in of its day ([`checkin_bonus`]).
    CheckIn { day: i32 },
    /// [`REFERRAL_BONUS`], to the event's user (the referrer).
    Referral,
    /// Coins the event carries, to the ledger under `kind`: a completed quest's reward, a
    /// Stars payment's coins, or a refunded payment's coins taken back (negative). The balance
    /// may go below zero when the coins were spent or a payment is refunded twice over in
    /// coins; it is the truth of what the user was given. A new event type that grants coins
    /// names its `kind`, the ledger row's text, where it is priced (`crate::decisions::earning`).
    Granted { coins: i64, kind: &'static str },
}

impl Earning {
    /// Whether the event can earn at all: whose balances and streaks a batch must load.
    pub fn may_earn(self) -> bool {
        self != Earning::Nothing
    }

    /// Whether the event reads and moves its user's check-in streak.
    pub fn moves_streak(self) -> bool {
        matches!(self, Earning::CheckIn { .. })
    }

    /// Why the coins were earned, as the wallets ledger records it.
    pub fn kind(self) -> Option<&'static str> {
        match self {
            Earning::Nothing => None,
            Earning::Taps { .. } => Some("taps"),
            Earning::CheckIn { .. } => Some("checkin"),
            Earning::Referral => Some("referral"),
            Earning::Granted { kind, .. } => Some(kind),
        }
    }

    /// The coins earned, moving `streak` for check-ins. Events must be applied once each, in
    /// partition order; the runtime guarantees both.
    pub fn coins(self, streak: &mut Streak) -> i64 {
        match self {
            Earning::Nothing => 0,
            Earning::Taps { count } => COINS_PER_TAP * i64::from(count),
            Earning::CheckIn { day } => match streak.check_in(day) {
                CheckIn::Counted(length) => checkin_bonus(length),
                CheckIn::SameDay | CheckIn::Late => 0,
            },
            Earning::Referral => REFERRAL_BONUS,
            Earning::Granted { coins, .. } => coins,
        }
    }
}

/// Coins `event` earns its user, updating the streak for check-ins; a payload no rule can
/// price is poison, refused before anything changes.
pub fn coins(event: &Event, streak: &mut Streak) -> Result<i64, ApplyError> {
    Ok(priced(event)?.coins(streak))
}

/// [`earning`] of `event`, its refusal as the poison error of that event.
pub fn priced(event: &Event) -> Result<Earning, ApplyError> {
    earning(&event.payload).map_err(|reason| ApplyError::Poison {
        event_id: event.envelope.event_id,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use surge_schemas::Payload;

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
    fn a_payment_grants_its_coins_and_its_refund_takes_them_back() {
        use surge_schemas::{StarsPaymentReceived, StarsPaymentRefunded};
        let paid = |coins: i64, subscription: Option<&str>| {
            Payload::from(StarsPaymentReceived {
                telegram_payment_charge_id: "stx1".into(),
                purchase_id: uuid::Uuid::nil(),
                item_id: "coins_1000".into(),
                stars: 50,
                coins,
                subscription: subscription.map(Into::into),
                subscription_expires_at: None,
                recurring: false,
            })
        };
        let refunded = |coins: i64| {
            Payload::from(StarsPaymentRefunded {
                telegram_payment_charge_id: "stx1".into(),
                purchase_id: uuid::Uuid::nil(),
                item_id: "coins_1000".into(),
                stars: 50,
                coins,
            })
        };
        let mut streak = Streak::default();
        let granted = earning(&paid(1000, None)).unwrap();
        assert_eq!(
            (granted.kind(), granted.coins(&mut streak)),
            (Some("purchase"), 1000)
        );
        let taken = earning(&refunded(1000)).unwrap();
        assert_eq!(
            (taken.kind(), taken.coins(&mut streak)),
            (Some("refund"), -1000)
        );
        assert_eq!(earning(&paid(0, Some("vip"))), Ok(Earning::Nothing));
        assert_eq!(earning(&refunded(0)), Ok(Earning::Nothing));
        assert!(earning(&paid(-1, None)).unwrap_err().contains("negative"));
        assert!(earning(&refunded(-1)).unwrap_err().contains("negative"));
        assert_eq!(streak, Streak::default(), "payments never move the streak");
    }

    #[test]
    fn the_bonus_is_capped() {
        assert_eq!(checkin_bonus(1), 100);
        assert_eq!(checkin_bonus(7), 700);
        assert_eq!(checkin_bonus(30), 700);
    }
}
