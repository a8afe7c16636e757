//! `GET /v1/users/{id}`: another user's public card. Only what the leaderboard already shows to
//! everyone (name, photo, streak): never language, referrer, sessions or last activity.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use surge_http::ApiError;
use surge_http::Path;
use surge_http::error_responses;
use surge_http::openapi::{INIT_DATA_ERRORS, PATH_ERRORS};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::catalog::ProjectionId;
use crate::profiles::{Profile, ProfileStore};
use crate::query_api::QueryState;
use crate::query_api::auth::Reader;
use crate::query_api::caching::{PRIVATE_CARD, cached_json};
use crate::query_api::consistency::ReadAfter;
use crate::query_api::handlers::time;
use crate::query_api::openapi::READ_ERRORS;

/// The endpoints of `profiles`, registered with their OpenAPI operations through the catalog's
/// line.
pub(crate) fn routes() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new().routes(routes!(user))
}

/// `GET /v1/users/{id}`: a public card.
#[derive(ToSchema)]
#[allow(dead_code)]
struct UserCard {
    user_id: i64,
    /// The display name, else the username, else the first name.
    name: Option<String>,
    username: Option<String>,
    photo_url: Option<String>,
    is_premium: bool,
    member_since: Option<String>,
    streak: CardStreak,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct CardStreak {
    current: i64,
    best: i64,
}

error_responses!(
    UserErrors = [
        INIT_DATA_ERRORS,
        READ_ERRORS,
        PATH_ERRORS,
        [(400, "invalid_user_id"), (404, "user_not_found")],
    ]
);

#[utoipa::path(
    get,
    path = "/v1/users/{id}",
    tag = "users",
    summary = "Another user's public card",
    security(("tma" = [])),
    params(
        ("id" = i64, Path, minimum = 1, description = "The user's Telegram id"),
        surge_http::openapi::ReadHeaders,
    ),
    responses(
        (status = 200, description = "The card", body = UserCard),
        UserErrors,
    ),
)]
pub(crate) async fn user(
    State(state): State<QueryState>,
    Reader(reader): Reader,
    Path(id): Path<String>,
    after: ReadAfter,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user_id: i64 = id.parse().ok().filter(|id| *id > 0).ok_or_else(|| {
        ApiError::bad_request("invalid_user_id", "a user id is a positive whole number")
    })?;
    let served = state
        .read_after(&after, Some(reader), &[ProjectionId::Profiles])
        .await?;
    let profiles = served.store::<ProfileStore>();
    let profile = served
        .read(&state, ProjectionId::Profiles, |pool| {
            profiles.profile(pool, user_id)
        })
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "user_not_found", "no such user"))?;
    Ok(cached_json(
        &headers,
        card(&profile).to_string(),
        PRIVATE_CARD,
    ))
}

fn card(p: &Profile) -> Value {
    let name = p
        .display_name
        .as_ref()
        .or(p.username.as_ref())
        .or(p.first_name.as_ref());
    json!({
        "user_id": p.user_id,
        "name": name,
        "username": p.username,
        "photo_url": p.photo_url,
        "is_premium": p.is_premium,
        "member_since": time(p.first_seen_at_ms),
        "streak": { "current": p.streak_current, "best": p.streak_best },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_card_leaves_private_fields_out() {
        let profile = Profile {
            user_id: 9,
            first_name: Some("Nine".into()),
            language_code: Some("de".into()),
            referred_by: Some(3),
            sessions_count: 12,
            ..Profile::default()
        };
        let card = card(&profile);
        assert_eq!(card["name"], "Nine");
        let keys: Vec<&String> = card.as_object().unwrap().keys().collect();
        for private in [
            "language_code",
            "referred_by",
            "sessions_count",
            "last_seen_at",
            "last_name",
        ] {
            assert!(!keys.iter().any(|k| *k == private), "{private} is private");
        }
    }
}
