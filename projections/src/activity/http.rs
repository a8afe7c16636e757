//! `GET /v1/stats/activity?minutes=&days=`: events per minute by type over the last `minutes`
//! (default 60, at most a day), active users per day over the last `days` (default 30, at most
//! 90), and today's daily, weekly and monthly active users, from the `activity` projection.
//! Operator-only: `Authorization: Bearer <SURGE_OPERATOR_TOKEN>`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value, json};
use surge_http::ApiError;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::activity::{ActivityStore, MinuteCount, day_of};
use crate::catalog::ProjectionId;
use crate::feed::iso_date;
use crate::query_api::QueryState;
use crate::query_api::auth::Operator;
use crate::query_api::caching::{PRIVATE_REVALIDATE, cached_json};
use crate::query_api::consistency::ReadAfter;
use crate::query_api::handlers::{Params, time, whole_number};
use crate::versions::now_ms;

/// The endpoints of `activity`, registered with their OpenAPI operations through the catalog's
/// line.
pub(crate) fn routes() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new().routes(routes!(activity))
}

/// `GET /v1/stats/activity`.
#[derive(ToSchema)]
#[allow(dead_code)]
struct Activity {
    as_of: Option<String>,
    /// Minutes that had events, ascending.
    events_per_minute: Vec<MinuteActivity>,
    active_users: ActiveUsers,
    daily_active_users: Vec<DayActivity>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct MinuteActivity {
    minute: Option<String>,
    total: i64,
    /// Events by type.
    by_type: BTreeMap<String, i64>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct ActiveUsers {
    daily: i64,
    weekly: i64,
    monthly: i64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct DayActivity {
    day: Option<String>,
    users: i64,
}

#[utoipa::path(
    get,
    path = "/v1/stats/activity",
    tag = "admin",
    summary = "Events per minute, active users per day, DAU/WAU/MAU",
    security(("operator" = [])),
    params(
        ("minutes" = Option<u32>, Query, minimum = 1, maximum = 1440, description = "Minutes back (default 60)"),
        ("days" = Option<u32>, Query, minimum = 1, maximum = 90, description = "Days back (default 30)"),
        surge_http::openapi::ReadHeaders,
    ),
    responses(
        (status = 200, description = "Activity", body = Activity),
        crate::query_api::openapi::WindowErrors,
    ),
)]
pub(crate) async fn activity(
    State(state): State<QueryState>,
    _operator: Operator,
    query: Params,
    after: ReadAfter,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let minutes = window(&query, "minutes", 60, 1_440)?;
    let days = window(&query, "days", 30, 90)?;
    let served = state
        .read_after(&after, None, &[ProjectionId::Activity])
        .await?;
    let now_ms = now_ms();
    let next_minute = now_ms.div_euclid(60_000) * 60 + 60;
    let today = day_of(now_ms);
    let store = served.store::<ActivityStore>();
    let (per_minute, daily, weekly, monthly) = served
        .read(&state, ProjectionId::Activity, |pool| async move {
            tokio::try_join!(
                store.per_minute(pool, next_minute - minutes as i64 * 60, next_minute),
                store.daily_active(pool, today + 1 - days as i32, today + 1),
                store.distinct_active(pool, today - 6, today + 1),
                store.distinct_active(pool, today - 29, today + 1),
            )
        })
        .await?;
    let today_users = daily
        .iter()
        .find(|(day, _)| *day == today)
        .map_or(0, |(_, users)| *users);
    let body = json!({
        "as_of": time(now_ms),
        "events_per_minute": by_minute(per_minute),
        "active_users": { "daily": today_users, "weekly": weekly, "monthly": monthly },
        "daily_active_users": daily
            .iter()
            .map(|(day, users)| json!({ "day": iso_date(*day), "users": users }))
            .collect::<Vec<_>>(),
    });
    Ok(cached_json(&headers, body.to_string(), PRIVATE_REVALIDATE))
}

/// Minutes that had events, ascending: `{"minute", "total", "by_type": {type: events}}`.
fn by_minute(rows: Vec<MinuteCount>) -> Vec<Value> {
    let mut minutes: BTreeMap<i64, Map<String, Value>> = BTreeMap::new();
    for row in rows {
        minutes
            .entry(row.minute)
            .or_default()
            .insert(row.event_type, row.events.into());
    }
    minutes
        .into_iter()
        .map(|(minute, by_type)| {
            let total: i64 = by_type.values().filter_map(Value::as_i64).sum();
            json!({ "minute": time(minute * 1_000), "total": total, "by_type": by_type })
        })
        .collect()
}

/// `?<name>=` within `1..=max`, `default` when absent.
fn window(query: &Params, name: &str, default: usize, max: usize) -> Result<usize, ApiError> {
    whole_number(name, "invalid_window", query.get(name), default, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_group_their_types_and_total_them() {
        let rows = vec![
            MinuteCount {
                minute: 120,
                event_type: "A".into(),
                events: 2,
            },
            MinuteCount {
                minute: 60,
                event_type: "B".into(),
                events: 1,
            },
            MinuteCount {
                minute: 120,
                event_type: "B".into(),
                events: 3,
            },
        ];
        let minutes = by_minute(rows);
        assert_eq!(minutes.len(), 2);
        assert_eq!(minutes[0]["minute"], "1970-01-01T00:01:00.000Z");
        assert_eq!(minutes[1]["total"], 5);
        assert_eq!(minutes[1]["by_type"]["A"], 2);
    }

    #[test]
    fn windows_are_bounded_whole_numbers() {
        let query = |v: &str| Params::parse(&format!("days={v}")).unwrap();
        assert_eq!(window(&Params::default(), "days", 30, 90).unwrap(), 30);
        assert_eq!(window(&query("90"), "days", 30, 90).unwrap(), 90);
        for bad in ["0", "91", "-3", "week"] {
            let error = window(&query(bad), "days", 30, 90).unwrap_err();
            assert_eq!(error.code, "invalid_window");
            assert!(error.message.contains("days"));
        }
    }
}
