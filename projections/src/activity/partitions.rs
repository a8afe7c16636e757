//! Day partitions of the plain-PostgreSQL layout: one per table per UTC day, named
//! `<table>_p<yyyymmdd>` so an operator can read them, created on first use and dropped whole by
//! retention.

use time::{Date, Duration, Month};

use super::MS_PER_DAY;

const EPOCH: Date = match Date::from_calendar_date(1970, Month::January, 1) {
    Ok(date) => date,
    Err(_) => panic!("1970-01-01 is a date"),
};

/// Days since 1970-01-01 (UTC) of a unix-milliseconds instant.
pub fn day_of(unix_ms: i64) -> i32 {
    unix_ms.div_euclid(MS_PER_DAY) as i32
}

fn date_of(day: i32) -> Option<Date> {
    EPOCH.checked_add(Duration::days(day.into()))
}

/// `<table>_p<yyyymmdd>`; `None` for a day outside the calendar.
pub fn partition_name(table: &str, day: i32) -> Option<String> {
    let date = date_of(day)?;
    Some(format!(
        "{table}_p{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

/// The day a partition of `table` holds, from its name; `None` for any other table.
pub(crate) fn partition_day(table: &str, name: &str) -> Option<i32> {
    let digits = name.strip_prefix(table)?.strip_prefix("_p")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = digits[..4].parse().ok()?;
    let month: u8 = digits[4..6].parse().ok()?;
    let day: u8 = digits[6..].parse().ok()?;
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    Some((date - EPOCH).whole_days() as i32)
}

/// DDL creating `day`'s partitions of the per-minute and daily-users tables.
pub(crate) fn create_day(prefix: &str, day: i32) -> Option<String> {
    let per_minute = format!("{prefix}_per_minute");
    let daily_users = format!("{prefix}_daily_users");
    let from = date_of(day)?;
    let to = date_of(day + 1)?;
    Some(format!(
        "CREATE TABLE IF NOT EXISTS {} PARTITION OF {per_minute} \
           FOR VALUES FROM ('{from} 00:00:00+00') TO ('{to} 00:00:00+00');\n\
         CREATE TABLE IF NOT EXISTS {} PARTITION OF {daily_users} \
           FOR VALUES FROM ('{from}') TO ('{to}');",
        partition_name(&per_minute, day)?,
        partition_name(&daily_users, day)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_days_round_trip() {
        let day = day_of(1_795_379_397_000);
        let name = partition_name("activity_v1_per_minute", day).unwrap();
        assert_eq!(name, "activity_v1_per_minute_p20261122");
        assert_eq!(partition_day("activity_v1_per_minute", &name), Some(day));
        assert_eq!(partition_day("activity_v1_daily_users", &name), None);
        assert_eq!(
            partition_day("activity_v1_per_minute", "activity_v1_per_minute_p2026"),
            None
        );
    }

    #[test]
    fn days_before_1970_belong_to_their_own_day() {
        assert_eq!(day_of(-1), -1);
        assert_eq!(partition_name("t", -1).unwrap(), "t_p19691231");
    }

    #[test]
    fn a_day_partition_covers_exactly_that_utc_day() {
        let ddl = create_day("activity_v1", 0).unwrap();
        assert!(ddl.contains("FROM ('1970-01-01 00:00:00+00') TO ('1970-01-02 00:00:00+00')"));
        assert!(
            ddl.contains("activity_v1_daily_users_p19700101 PARTITION OF activity_v1_daily_users")
        );
    }
}
