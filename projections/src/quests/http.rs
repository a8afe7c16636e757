//! `GET /v1/me/quests`: every quest of the quest book with the caller's progress and status,
//! from the `quests` projection (PostgreSQL).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};
use surge_http::ApiError;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::catalog::ProjectionId;
use crate::query_api::QueryState;
use crate::query_api::auth::Reader;
use crate::query_api::caching::{PRIVATE_REVALIDATE, cached_json};
use crate::query_api::consistency::ReadAfter;
use crate::quests::{QuestState, QuestStore, states};

/// The endpoints of `quests`, registered with their OpenAPI operations through the catalog's
/// line.
pub(crate) fn routes() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new().routes(routes!(my_quests))
}

/// `GET /v1/me/quests`.
#[derive(ToSchema)]
#[allow(dead_code)]
struct Quests {
    quests: Vec<QuestState>,
}

#[utoipa::path(
    get,
    path = "/v1/me/quests",
    tag = "me",
    summary = "Every quest of the book with the caller's progress",
    security(("tma" = [])),
    params(surge_http::openapi::ReadHeaders),
    responses(
        (status = 200, description = "The quests, in the book's order", body = Quests),
        crate::query_api::openapi::UserReadErrors,
    ),
)]
pub(crate) async fn my_quests(
    State(state): State<QueryState>,
    Reader(user_id): Reader,
    after: ReadAfter,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let body = read(&state, &after, user_id).await?.to_string();
    Ok(cached_json(&headers, body, PRIVATE_REVALIDATE))
}

/// What `GET /v1/me/quests` answers `user_id`, once `quests` has applied `after`.
pub(crate) async fn read(
    state: &QueryState,
    after: &ReadAfter,
    user_id: i64,
) -> Result<Value, ApiError> {
    let served = state
        .read_after(after, Some(user_id), &[ProjectionId::Quests])
        .await?;
    let quests = served.store::<QuestStore>();
    let (progress, completed) = served
        .read(state, ProjectionId::Quests, |pool| {
            quests.of_user(pool, user_id)
        })
        .await?;
    let quests = states(&state.config.game.quests, progress.as_ref(), &completed);
    Ok(json!({ "quests": quests }))
}
