//! `POST /v1/live/tickets`: `EventSource` cannot send an Authorization header, and initData
//! must never travel in a URL (proxies and browsers log URLs). So a Mini App trades its
//! initData for a ticket: random, bound to the user, single-use and valid for [`TICKET_TTL`],
//! kept in Redis so any query-API instance can redeem it.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use rand::RngCore;
use redis::AsyncCommands;
use serde_json::{Value, json};
use surge_http::ApiError;
use surge_http::error_responses;
use surge_http::openapi::INIT_DATA_ERRORS;
use utoipa::ToSchema;

use crate::naming;
use crate::query_api::QueryState;
use crate::query_api::auth::Reader;
use crate::query_api::consistency::bounded;

/// The store's name in logs.
const TICKETS: &str = "live tickets";

/// How long a ticket may wait to be redeemed.
pub(crate) const TICKET_TTL: Duration = Duration::from_secs(60);

/// `POST /v1/live/tickets`.
#[derive(ToSchema)]
#[allow(dead_code)]
struct Ticket {
    /// Single-use, for `GET /v1/me/live?ticket=`.
    ticket: String,
    /// Seconds it stays valid.
    expires_in: u64,
}

error_responses!(
    TicketErrors = [
        INIT_DATA_ERRORS,
        [(503, "store_unavailable"), (503, "overloaded")],
    ]
);

#[utoipa::path(
    post,
    path = "/v1/live/tickets",
    tag = "live",
    summary = "A single-use ticket for GET /v1/me/live (EventSource cannot send headers)",
    security(("tma" = [])),
    responses(
        (status = 201, description = "The ticket", body = Ticket),
        TicketErrors,
    ),
)]
pub(crate) async fn issue(
    State(state): State<QueryState>,
    Reader(user_id): Reader,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let ticket = hex::encode(bytes);
    let key = naming::live_ticket_key(&state.config.redis_prefix, &ticket);
    let mut redis = state.redis.clone();
    let set = redis.set_ex::<_, _, ()>(&key, user_id, TICKET_TTL.as_secs());
    bounded(&state, TICKETS, set).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "ticket": ticket, "expires_in": TICKET_TTL.as_secs() })),
    ))
}

/// The user `ticket` was issued to, taking it (a second use finds nothing).
pub(crate) async fn redeem(state: &QueryState, ticket: &str) -> Result<i64, ApiError> {
    let valid = ticket.len() == 48 && ticket.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_ticket",
            "ticket must be what POST /v1/live/tickets answered",
        ));
    }
    let key = naming::live_ticket_key(&state.config.redis_prefix, ticket);
    let mut redis = state.redis.clone();
    let user: Option<i64> = bounded(state, TICKETS, redis.get_del(&key)).await?;
    user.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "ticket_expired",
            "the ticket was used already or expired; ask POST /v1/live/tickets for another",
        )
    })
}
