//! The write endpoints. Each turns its body into actions and hands them to [`accept`], which
//! applies the one write protocol: idempotency claim, validation, durable append, 202.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use surge_telegram_auth::InitData;
use tracing::Instrument;
use uuid::Uuid;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::json::ApiJson;
use crate::actions::{
    Action, BatchBody, CheckinBody, ClaimRefused, ProfileBody, QuestClaimBody, SessionBody,
    TapsBody, build_events, check_claims,
};
use crate::energy::{self, Level, Spend};
use crate::idempotency::{self, Claim, Record, SaveError};
use crate::trace::TraceContext;
use surge_kafka::{AppendError, TraceMeta};

#[utoipa::path(
    post,
    path = "/v1/sessions",
    tag = "writes",
    summary = "Start a session (SessionStarted)",
    security(("tma" = [])),
    params(surge_http::openapi::WriteHeaders),
    request_body(content = SessionBody, description = "Optional: an empty body means no options"),
    responses(
        (status = 202, description = "Accepted: appended to the log", body = super::openapi::Accepted),
        super::openapi::WriteErrors,
    ),
)]
pub(super) async fn sessions(
    State(s): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SessionBody>,
) -> Result<Response, ApiError> {
    accept(&s, &who, &headers, "sessions", vec![Action::Session(body)]).await
}

#[utoipa::path(
    post,
    path = "/v1/taps",
    tag = "writes",
    summary = "Submit taps (TapsSubmitted)",
    security(("tma" = [])),
    params(surge_http::openapi::WriteHeaders),
    request_body = TapsBody,
    responses(
        (status = 202, description = "Accepted: appended to the log", body = super::openapi::Accepted),
        super::openapi::WriteErrors,
    ),
)]
pub(super) async fn taps(
    State(s): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<TapsBody>,
) -> Result<Response, ApiError> {
    accept(&s, &who, &headers, "taps", vec![Action::Taps(body)]).await
}

#[utoipa::path(
    post,
    path = "/v1/checkins",
    tag = "writes",
    summary = "Daily check-in (DailyCheckedIn)",
    security(("tma" = [])),
    params(surge_http::openapi::WriteHeaders),
    request_body(content = CheckinBody, description = "Optional: an empty body means no options"),
    responses(
        (status = 202, description = "Accepted: appended to the log", body = super::openapi::Accepted),
        super::openapi::WriteErrors,
    ),
)]
pub(super) async fn checkins(
    State(s): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CheckinBody>,
) -> Result<Response, ApiError> {
    accept(&s, &who, &headers, "checkins", vec![Action::Checkin(body)]).await
}

#[utoipa::path(
    patch,
    path = "/v1/profile",
    tag = "writes",
    summary = "Update the profile (ProfileUpdated)",
    security(("tma" = [])),
    params(surge_http::openapi::WriteHeaders),
    request_body = ProfileBody,
    responses(
        (status = 202, description = "Accepted: appended to the log", body = super::openapi::Accepted),
        super::openapi::WriteErrors,
    ),
)]
pub(super) async fn profile(
    State(s): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ProfileBody>,
) -> Result<Response, ApiError> {
    accept(&s, &who, &headers, "profile", vec![Action::Profile(body)]).await
}

/// `POST /v1/quests/{id}/claim`, no body: the user claims a quest they complete themselves.
/// The quests deriver completes it if its goal is met; `GET /v1/me/quests` shows the result.
#[utoipa::path(
    post,
    path = "/v1/quests/{quest_id}/claim",
    tag = "writes",
    summary = "Claim a quest (QuestClaimed)",
    security(("tma" = [])),
    params(("quest_id" = String, Path, example = "open_5", description = "A quest of the book that is claimed, not completed by itself"), surge_http::openapi::WriteHeaders),
    responses(
        (status = 202, description = "Accepted: appended to the log", body = super::openapi::Accepted),
        super::openapi::ClaimErrors,
    ),
)]
pub(super) async fn claim_quest(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(quest_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let claim = Action::QuestClaim(QuestClaimBody { quest_id });
    accept(&s, &who, &headers, "quest_claim", vec![claim]).await
}

#[utoipa::path(
    post,
    path = "/v1/batch",
    tag = "writes",
    summary = "Several actions at once, one event each, in order",
    security(("tma" = [])),
    params(surge_http::openapi::WriteHeaders),
    request_body = BatchBody,
    responses(
        (status = 202, description = "Accepted: appended to the log", body = super::openapi::BatchAccepted),
        super::openapi::ClaimErrors,
    ),
)]
pub(super) async fn batch(
    State(s): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<BatchBody>,
) -> Result<Response, ApiError> {
    accept(&s, &who, &headers, "batch", body.actions).await
}

/// The write protocol shared by every endpoint.
async fn accept(
    state: &AppState,
    who: &InitData,
    headers: &HeaderMap,
    route: &'static str,
    actions: Vec<Action>,
) -> Result<Response, ApiError> {
    let trace = TraceContext::continue_or_start(header(headers, "traceparent"));
    let span =
        tracing::info_span!("write", route, user_id = who.user.id, trace_id = %trace.trace_id);
    let batch = route == "batch";
    async move {
        check_claims(&actions, &state.config.game.quests).map_err(claim_refused)?;
        let user_id = who.user.id;
        let key = idempotency_key(headers)?;
        let Some(key) = key else {
            let events = events_for(&actions, who, None)?;
            let energy = spend_energy(state, user_id, &events, batch).await?;
            let body = match append(state, &events, batch, &trace, None).await {
                Ok(body) => body,
                Err(failed) => {
                    // Without a key there is no retry that could reuse the energy: give it back
                    // when nothing can have landed. A broker that did not answer may have
                    // appended, so then the energy stays spent.
                    if failed.nothing_appended {
                        refund(state, user_id, &events).await;
                    }
                    return Err(failed.error);
                }
            };
            return Ok(accepted(with_energy(body, energy), false));
        };
        let canonical = serde_json::to_vec(&actions).expect("actions serialise");
        let fingerprint = idempotency::fingerprint(route, &canonical);
        let claim = state
            .idempotency
            .claim(user_id, key, &fingerprint)
            .await
            .map_err(redis_down)?;
        let earlier_ids = match claim {
            Claim::Replay(body) => {
                let body = signed_position(body, &state.config.token_keys);
                return Ok(accepted(body, true));
            }
            Claim::Mismatch => {
                return Err(ApiError::unprocessable(
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request",
                ));
            }
            Claim::InProgress => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "idempotency_in_progress",
                    "a request with this Idempotency-Key is still being processed",
                )
                .retry_after(Duration::from_secs(1)));
            }
            Claim::Proceed { event_ids } => event_ids,
        };
        let result = async {
            let events = events_for(&actions, who, earlier_ids.as_deref())?;
            let event_ids = events.iter().map(|e| e.envelope.event_id).collect();
            let mut record = Record {
                fingerprint,
                event_ids,
                response: None,
            };
            // The first attempt with a key pays for its taps before it records its event ids;
            // a retry finds the ids, so it was paid for and does not pay again, whether or not
            // the first attempt's append landed.
            let mut energy = None;
            if earlier_ids.is_none() {
                energy = spend_energy(state, user_id, &events, batch).await?;
                if let Err(error) = state.idempotency.save(user_id, key, &record).await {
                    if error.certainly_not_saved() {
                        refund(state, user_id, &events).await;
                    }
                    return Err(not_saved(error));
                }
            }
            let body = append(state, &events, batch, &trace, Some(key))
                .await
                .map_err(|failed| failed.error)?;
            let body = with_energy(body, energy);
            record.response = Some(body.clone());
            // The response and the lock's release in one round trip.
            state
                .idempotency
                .finish(user_id, key, &record)
                .await
                .map_err(redis_down)?;
            Ok(body)
        }
        .await;
        // A failed attempt releases its lock here. The lock also expires on its own; releasing
        // early only lets a retry in sooner.
        if result.is_err()
            && let Err(error) = state.idempotency.release(user_id, key).await
        {
            surge_http::sampled_warn!(%error, "Could not release an idempotency lock; it will expire.");
        }
        result.map(|body| accepted(body, false))
    }
    .instrument(span)
    .await
}

fn claim_refused(refused: ClaimRefused) -> ApiError {
    match refused {
        ClaimRefused::Unknown(id) => ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_quest",
            format!("there is no quest {id:?}"),
        ),
        ClaimRefused::NotClaimable(id) => ApiError::new(
            StatusCode::CONFLICT,
            "quest_not_claimable",
            format!("quest {id:?} completes by itself once its goal is met; it cannot be claimed"),
        ),
    }
}

fn events_for(
    actions: &[Action],
    who: &InitData,
    ids: Option<&[Uuid]>,
) -> Result<Vec<surge_schemas::Event>, ApiError> {
    build_events(actions, who, now_ms(), ids).map_err(|e| {
        let message = format!("{}: {}", e.field, e.message);
        if e.bad_text {
            ApiError::bad_request("invalid_text", message)
        } else {
            ApiError::unprocessable("invalid_field", message)
        }
    })
}

/// Pays for the events' taps from the user's energy, or says why not. `None`: they have none.
async fn spend_energy(
    state: &AppState,
    user_id: i64,
    events: &[surge_schemas::Event],
    batch: bool,
) -> Result<Option<Level>, ApiError> {
    let taps = energy::total_cost(events);
    if taps == 0 {
        return Ok(None);
    }
    let spend = state.energy.spend(user_id, taps).await.map_err(|error| {
        surge_http::sampled_warn!(%error, "Energy store unavailable.");
        ApiError::unavailable(
            "energy_store_unavailable",
            "taps cannot be counted right now",
            Duration::from_secs(1),
        )
    })?;
    match spend {
        Spend::Granted(level) => Ok(Some(level)),
        Spend::Refused { level, wait } => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "out_of_energy",
            format!(
                "not enough energy: {taps} taps asked, {} left, refilling {} per second",
                level.left, level.refill_per_sec
            ),
        )
        .retry_after(wait)),
        Spend::OverCapacity { capacity } => Err(ApiError::unprocessable(
            "invalid_field",
            format!(
                "{}: {taps} taps in one request exceed the energy capacity of {capacity}",
                if batch { "actions" } else { "count" }
            ),
        )),
    }
}

/// Gives back the energy of events that were certainly not appended; if Redis cannot take it
/// back, the user loses it (the economy errs against the client, never for it).
async fn refund(state: &AppState, user_id: i64, events: &[surge_schemas::Event]) {
    if let Err(error) = state
        .energy
        .refund(user_id, energy::total_cost(events))
        .await
    {
        surge_http::sampled_warn!(%error, "Could not refund the energy of a failed write.");
    }
}

fn with_energy(mut body: Value, energy: Option<Level>) -> Value {
    if let (Some(level), Some(fields)) = (energy, body.as_object_mut()) {
        fields.insert("energy".into(), json!(level));
    }
    body
}

/// A failed append, and whether it certainly appended nothing (an event could not be encoded,
/// a single event found the queue full) or may have (the broker did not acknowledge in time).
pub(crate) struct AppendFailed {
    pub(crate) error: ApiError,
    nothing_appended: bool,
}

/// Appends `events` and answers the body of a write: the event id(s) and the signed position.
pub(crate) async fn append(
    state: &AppState,
    events: &[surge_schemas::Event],
    batch: bool,
    trace: &TraceContext,
    key: Option<&str>,
) -> Result<Value, AppendFailed> {
    let meta = TraceMeta {
        traceparent: trace.traceparent(),
        idempotency_key: key.map(str::to_owned),
    };
    let retry = Duration::from_secs(1);
    let position = state.log.append(events, &meta).await.map_err(|e| {
        // Events are all encoded before the first is queued; a full queue may refuse a later
        // event of a batch after earlier ones were queued.
        let nothing_appended = match &e {
            AppendError::Encode(_) => true,
            AppendError::QueueFull => events.len() == 1,
            AppendError::Broker(_) => false,
        };
        let error = match e {
            AppendError::QueueFull => ApiError::unavailable(
                "overloaded",
                "the event queue is full; retry shortly",
                retry,
            ),
            AppendError::Broker(error) => {
                surge_http::sampled_warn!(%error, "Broker did not acknowledge a write.");
                ApiError::unavailable("broker_unavailable", "the event log is unavailable", retry)
            }
            AppendError::Encode(error) if error.is_transient() => {
                surge_http::sampled_warn!(%error, "Schema registry unavailable.");
                ApiError::unavailable(
                    "schema_registry_unavailable",
                    "the schema registry is unavailable",
                    retry,
                )
            }
            AppendError::Encode(error) => ApiError::internal("Event encoding failed.", &error),
        };
        AppendFailed {
            error,
            nothing_appended,
        }
    })?;
    let metrics = &state.metrics;
    for event in events {
        metrics
            .events_produced
            .with_label_values(&[event.event_type().name()])
            .inc();
    }
    metrics
        .producer_queue_depth
        .set(i64::from(state.log.queue_depth()));
    let position = state.config.token_keys.sign(&position);
    Ok(if batch {
        let ids: Vec<_> = events.iter().map(|e| e.envelope.event_id).collect();
        json!({ "event_ids": ids, "position": position })
    } else {
        json!({ "event_id": events[0].envelope.event_id, "position": position })
    })
}

/// A 202 body stored before tokens were signed (within the idempotency TTL of an upgrade) holds
/// a plain `v1.` position, which the query API refuses: replay it signed.
fn signed_position(mut body: Value, keys: &surge_schemas::TokenKeys) -> Value {
    let plain = body
        .get("position")
        .and_then(Value::as_str)
        .and_then(|token| token.parse::<surge_schemas::Position>().ok());
    if let Some(plain) = plain {
        body["position"] = Value::String(keys.sign(&plain));
    }
    body
}

pub(crate) fn accepted(body: Value, replayed: bool) -> Response {
    // The token also travels as a header, the one the query API reads, so a client can
    // forward it without parsing the body.
    let token = body
        .get("position")
        .and_then(Value::as_str)
        .and_then(|t| HeaderValue::from_str(t).ok());
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Some(token) = token {
        response.headers_mut().insert("x-consistency-token", token);
    }
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if idempotency::valid_key(key) => Ok(Some(key)),
        _ => Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
        )),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn not_saved(error: SaveError) -> ApiError {
    match error {
        SaveError::Redis(error) => redis_down(error),
        SaveError::NotReplicated { .. } => {
            surge_http::sampled_warn!(%error, "Idempotency record not replicated; write refused.");
            ApiError::unavailable(
                "idempotency_not_replicated",
                format!("{error} in time; nothing was written, retry with the same key"),
                Duration::from_secs(1),
            )
        }
    }
}

fn redis_down(error: redis::RedisError) -> ApiError {
    surge_http::sampled_warn!(%error, "Idempotency store unavailable.");
    ApiError::unavailable(
        "idempotency_store_unavailable",
        "cannot honour Idempotency-Key right now",
        Duration::from_secs(1),
    )
}

pub(crate) fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("fits until year 292 million")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replayed_plain_position_is_signed_and_a_signed_one_kept() {
        let keys = surge_schemas::TokenKeys::new(Some("secret"), "bot");
        let position = surge_schemas::Position {
            topic: "surge.events".into(),
            partition: 2,
            offset: 9,
        };
        let stored = json!({ "event_id": "x", "position": position.to_string() });
        let replayed = signed_position(stored, &keys);
        let token = replayed["position"].as_str().unwrap();
        assert_eq!(keys.verify(token), Ok(position.clone()));
        let signed = json!({ "event_id": "x", "position": keys.sign(&position) });
        assert_eq!(signed_position(signed.clone(), &keys), signed);
    }
}
