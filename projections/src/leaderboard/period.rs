//! Leaderboard periods: which sorted set an instant belongs to, the key suffix each set has, and
//! when a past period's set expires. The writer (the processors' `leaderboard` fold) and the
//! readers ([`super::top`], [`super::rank_of`]) name keys only through this file, so they cannot
//! drift apart.

use std::fmt;
use std::str::FromStr;

use time::{Date, Month};

/// Suffix of the hash `user id -> display name` shown beside scores.
pub const NAMES_SUFFIX: &str = "names";
/// A daily set lives this many days past the end of its (UTC) day, so "yesterday" stays readable.
pub const DAILY_GRACE_DAYS: i64 = 2;
/// A weekly set lives this many weeks past the end of its ISO week.
pub const WEEKLY_GRACE_WEEKS: i64 = 2;

const DAY_MS: i64 = 86_400_000;
const DAY_SECS: i64 = 86_400;
const WEEK_SECS: i64 = 7 * DAY_SECS;
/// Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// The kinds of leaderboard; a [`Period`] is one concrete set of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeriodKind {
    AllTime,
    /// One UTC calendar day.
    Daily,
    /// One ISO 8601 week (Monday to Sunday, UTC).
    Weekly,
}

/// One leaderboard sorted set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    AllTime,
    /// A UTC calendar day.
    Day(Date),
    Week(IsoWeek),
}

/// An ISO 8601 week, e.g. `2026-W47`: Monday to Sunday, numbered by the year its Thursday falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IsoWeek {
    monday: Date,
}

impl IsoWeek {
    /// The week holding `date`; `None` only at the very edge of the representable calendar.
    pub fn containing(date: Date) -> Option<IsoWeek> {
        let back = i64::from(date.weekday().number_days_from_monday());
        date_from_days(days_of(date) - back).map(|monday| IsoWeek { monday })
    }

    /// Week `week` (1 to 52 or 53) of ISO year `year`.
    pub fn new(year: i32, week: u8) -> Option<IsoWeek> {
        Date::from_iso_week_date(year, week, time::Weekday::Monday)
            .ok()
            .map(|monday| IsoWeek { monday })
    }

    /// The ISO week-numbering year, which differs from the calendar year around New Year.
    pub fn year(self) -> i32 {
        self.monday.to_iso_week_date().0
    }

    pub fn week(self) -> u8 {
        self.monday.to_iso_week_date().1
    }

    pub fn monday(self) -> Date {
        self.monday
    }
}

impl Period {
    /// The set of `kind` that the instant `unix_ms` (Unix milliseconds) counts towards. `None`
    /// when the instant lies outside the calendar `time` represents (years -9999 to 9999).
    pub fn containing(kind: PeriodKind, unix_ms: i64) -> Option<Period> {
        let day = || date_from_days(unix_ms.div_euclid(DAY_MS));
        match kind {
            PeriodKind::AllTime => Some(Period::AllTime),
            PeriodKind::Daily => day().map(Period::Day),
            PeriodKind::Weekly => day().and_then(IsoWeek::containing).map(Period::Week),
        }
    }

    pub fn kind(&self) -> PeriodKind {
        match self {
            Period::AllTime => PeriodKind::AllTime,
            Period::Day(_) => PeriodKind::Daily,
            Period::Week(_) => PeriodKind::Weekly,
        }
    }

    /// The key suffix: `all`, `daily:2026-11-22` or `weekly:2026-W47`. The full key is
    /// `<keyspace base>:<suffix>`.
    pub fn suffix(&self) -> String {
        match self {
            Period::AllTime => "all".to_owned(),
            Period::Day(date) => format!("daily:{}", iso_date(*date)),
            Period::Week(week) => format!("weekly:{:04}-W{:02}", week.year(), week.week()),
        }
    }

    /// When the period ends (exclusive), in Unix seconds; `None` for all time.
    pub fn ends_at(&self) -> Option<i64> {
        match self {
            Period::AllTime => None,
            Period::Day(date) => Some((days_of(*date) + 1) * DAY_SECS),
            Period::Week(week) => Some(days_of(week.monday) * DAY_SECS + WEEK_SECS),
        }
    }

    /// When the period's set expires, in Unix seconds: a grace time after it ends. Absolute, so a
    /// replay sets the same deadline. `None` for all time, which never expires.
    pub fn expires_at(&self) -> Option<i64> {
        let grace = match self {
            Period::AllTime => return None,
            Period::Day(_) => DAILY_GRACE_DAYS * DAY_SECS,
            Period::Week(_) => WEEKLY_GRACE_WEEKS * WEEK_SECS,
        };
        self.ends_at().map(|end| end + grace)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.suffix())
    }
}

/// A string that is not a period's suffix (or kind) in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a leaderboard period: expected {expected}")]
pub struct ParsePeriodError {
    input: String,
    expected: &'static str,
}

impl FromStr for Period {
    type Err = ParsePeriodError;

    /// Parses the form [`Period::suffix`] writes, and only that form (`daily:2026-1-5` is
    /// refused), so one period has one spelling.
    fn from_str(s: &str) -> Result<Period, ParsePeriodError> {
        let parsed = if s == "all" {
            Some(Period::AllTime)
        } else if let Some(date) = s.strip_prefix("daily:") {
            parse_date(date).map(Period::Day)
        } else if let Some(week) = s.strip_prefix("weekly:") {
            parse_week(week).map(Period::Week)
        } else {
            None
        };
        parsed
            .filter(|p| p.suffix() == s)
            .ok_or_else(|| ParsePeriodError {
                input: s.to_owned(),
                expected: "all, daily:YYYY-MM-DD or weekly:YYYY-Www",
            })
    }
}

impl FromStr for PeriodKind {
    type Err = ParsePeriodError;

    /// `all`, `daily` or `weekly`.
    fn from_str(s: &str) -> Result<PeriodKind, ParsePeriodError> {
        match s {
            "all" => Ok(PeriodKind::AllTime),
            "daily" => Ok(PeriodKind::Daily),
            "weekly" => Ok(PeriodKind::Weekly),
            _ => Err(ParsePeriodError {
                input: s.to_owned(),
                expected: "all, daily or weekly",
            }),
        }
    }
}

/// `YYYY-MM-DD`.
fn iso_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

fn parse_date(s: &str) -> Option<Date> {
    let (year_month, day) = s.rsplit_once('-')?;
    let (year, month) = year_month.rsplit_once('-')?;
    let month = Month::try_from(month.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()
}

fn parse_week(s: &str) -> Option<IsoWeek> {
    let (year, week) = s.split_once("-W")?;
    IsoWeek::new(year.parse().ok()?, week.parse().ok()?)
}

/// Days since 1970-01-01.
fn days_of(date: Date) -> i64 {
    i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY
}

fn date_from_days(days: i64) -> Option<Date> {
    let julian = i32::try_from(days.checked_add(UNIX_EPOCH_JULIAN_DAY)?).ok()?;
    Date::from_julian_day(julian).ok()
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    /// Unix milliseconds of `date` at `h:m:s.ms` UTC.
    fn at(date: Date, h: i64, m: i64, s: i64, ms: i64) -> i64 {
        (days_of(date) * DAY_SECS + h * 3600 + m * 60 + s) * 1000 + ms
    }

    fn suffix(kind: PeriodKind, unix_ms: i64) -> String {
        Period::containing(kind, unix_ms)
            .expect("in range")
            .suffix()
    }

    #[test]
    fn days_change_at_utc_midnight() {
        let last_ms = at(date!(2026 - 12 - 31), 23, 59, 59, 999);
        assert_eq!(suffix(PeriodKind::Daily, last_ms), "daily:2026-12-31");
        assert_eq!(suffix(PeriodKind::Daily, last_ms + 1), "daily:2027-01-01");
        assert_eq!(suffix(PeriodKind::Daily, 0), "daily:1970-01-01");
        assert_eq!(suffix(PeriodKind::Daily, -1), "daily:1969-12-31");
    }

    #[test]
    fn weeks_change_from_sunday_to_monday() {
        // 2026-11-22 is a Sunday, 2026-11-23 a Monday.
        let sunday_end = at(date!(2026 - 11 - 22), 23, 59, 59, 999);
        assert_eq!(suffix(PeriodKind::Weekly, sunday_end), "weekly:2026-W47");
        assert_eq!(
            suffix(PeriodKind::Weekly, sunday_end + 1),
            "weekly:2026-W48"
        );
        let monday_start = at(date!(2026 - 11 - 16), 0, 0, 0, 0);
        assert_eq!(suffix(PeriodKind::Weekly, monday_start), "weekly:2026-W47");
        assert_eq!(
            suffix(PeriodKind::Weekly, monday_start - 1),
            "weekly:2026-W46"
        );
    }

    #[test]
    fn iso_weeks_cross_new_year_by_their_thursday() {
        // 2026-12-31 is a Thursday: its week is 2026-W53 and holds 2027-01-01 to 01-03.
        for d in [
            date!(2026 - 12 - 28),
            date!(2026 - 12 - 31),
            date!(2027 - 01 - 03),
        ] {
            assert_eq!(
                suffix(PeriodKind::Weekly, at(d, 12, 0, 0, 0)),
                "weekly:2026-W53",
                "{d}"
            );
        }
        assert_eq!(
            suffix(PeriodKind::Weekly, at(date!(2027 - 01 - 04), 0, 0, 0, 0)),
            "weekly:2027-W01"
        );
        // 2024-12-30 (a Monday) already belongs to 2025-W01.
        assert_eq!(
            suffix(PeriodKind::Weekly, at(date!(2024 - 12 - 30), 0, 0, 0, 0)),
            "weekly:2025-W01"
        );
    }

    #[test]
    fn all_time_has_one_key_and_never_expires() {
        assert_eq!(suffix(PeriodKind::AllTime, 1_800_000_000_000), "all");
        assert_eq!(Period::AllTime.expires_at(), None);
        assert_eq!(Period::AllTime.ends_at(), None);
    }

    #[test]
    fn past_periods_expire_after_their_grace_time() {
        let day = Period::Day(date!(2026 - 11 - 22));
        let next_midnight = at(date!(2026 - 11 - 23), 0, 0, 0, 0) / 1000;
        assert_eq!(day.ends_at(), Some(next_midnight));
        assert_eq!(day.expires_at(), Some(next_midnight + 2 * DAY_SECS));

        let week = Period::Week(IsoWeek::new(2026, 47).expect("valid week"));
        assert_eq!(
            week.ends_at(),
            Some(next_midnight),
            "W47 ends as Monday 2026-11-23 begins"
        );
        assert_eq!(week.expires_at(), Some(next_midnight + 14 * DAY_SECS));
    }

    #[test]
    fn suffixes_parse_back_in_canonical_form_only() {
        for s in [
            "all",
            "daily:2026-11-22",
            "daily:2027-01-01",
            "weekly:2026-W53",
            "weekly:2027-W01",
        ] {
            assert_eq!(s.parse::<Period>().map(|p| p.suffix()), Ok(s.to_owned()));
        }
        for bad in [
            "",
            "daily",
            "daily:2026-1-5",
            "daily:2026-02-30",
            "weekly:2026-W1",
            "weekly:2027-W53",
            "weekly:2026-47",
            "monthly:2026-11",
            "ALL",
        ] {
            assert!(bad.parse::<Period>().is_err(), "{bad:?} parsed");
        }
        assert_eq!("weekly".parse(), Ok(PeriodKind::Weekly));
        assert!("week".parse::<PeriodKind>().is_err());
    }

    #[test]
    fn instants_outside_the_calendar_have_no_period() {
        assert_eq!(Period::containing(PeriodKind::Daily, i64::MAX), None);
        assert_eq!(Period::containing(PeriodKind::Weekly, i64::MIN), None);
        assert_eq!(
            Period::containing(PeriodKind::AllTime, i64::MAX),
            Some(Period::AllTime)
        );
    }
}
