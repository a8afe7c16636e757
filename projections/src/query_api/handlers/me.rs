//! `GET /v1/me`: the caller's profile, wallet (balance and latest ledger entries) and streak,
//! from the `profiles` and `wallets` projections in PostgreSQL.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};
use surge_http::ApiError;
use utoipa::ToSchema;
use uuid::Uuid;

use super::time;
use crate::catalog::ProjectionId;
use crate::feed::iso_date;
use crate::profiles::{Profile, ProfileStore};
use crate::query_api::QueryState;
use crate::query_api::auth::Reader;
use crate::query_api::caching::{PRIVATE_REVALIDATE, cached_json};
use crate::query_api::consistency::ReadAfter;
use crate::wallets::{Wallet, WalletStore};

/// Ledger entries shown with the balance.
const LATEST_ENTRIES: u32 = 20;

/// `GET /v1/me`: a user who has not opened the app yet gets a null profile and an empty wallet.
#[derive(ToSchema)]
#[allow(dead_code)]
struct Me {
    user_id: i64,
    profile: Option<MeProfile>,
    wallet: MeWallet,
    streak: MeStreak,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct MeProfile {
    first_name: Option<String>,
    last_name: Option<String>,
    username: Option<String>,
    display_name: Option<String>,
    language_code: Option<String>,
    photo_url: Option<String>,
    is_premium: bool,
    /// RFC 3339, milliseconds, UTC.
    first_seen_at: Option<String>,
    last_seen_at: Option<String>,
    sessions_count: i64,
    referred_by: Option<i64>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct MeWallet {
    balance: i64,
    /// Ledger entries in all.
    entries: i64,
    /// The latest 20, newest first.
    latest: Vec<LedgerEntry>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct LedgerEntry {
    event_id: Uuid,
    seq: i64,
    kind: String,
    amount: i64,
    balance_after: i64,
    occurred_at: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct MeStreak {
    current: i64,
    best: i64,
    /// `YYYY-MM-DD` (UTC).
    last_check_in_day: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "me",
    summary = "The caller's profile, wallet and streak",
    security(("tma" = [])),
    params(surge_http::openapi::ReadHeaders),
    responses(
        (status = 200, description = "The caller's state", body = Me),
        crate::query_api::openapi::UserReadErrors,
    ),
)]
pub(crate) async fn me(
    State(state): State<QueryState>,
    Reader(user_id): Reader,
    after: ReadAfter,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let body = read(&state, &after, user_id).await?.to_string();
    Ok(cached_json(&headers, body, PRIVATE_REVALIDATE))
}

/// The projections `GET /v1/me` reads (and whose changes `GET /v1/me/live` streams).
pub(crate) const READS: [ProjectionId; 2] = [ProjectionId::Profiles, ProjectionId::Wallets];

/// What `GET /v1/me` answers `user_id`, once its projections have applied `after`.
pub(crate) async fn read(
    state: &QueryState,
    after: &ReadAfter,
    user_id: i64,
) -> Result<Value, ApiError> {
    let served = state.read_after(after, Some(user_id), &READS).await?;
    let profiles = served.store::<ProfileStore>();
    let wallets = served.store::<WalletStore>();
    let (profile, wallet) = tokio::try_join!(
        served.read(state, ProjectionId::Profiles, |pool| profiles
            .profile(pool, user_id)),
        served.read(state, ProjectionId::Wallets, |pool| wallets.wallet(
            pool,
            user_id,
            LATEST_ENTRIES
        )),
    )?;
    Ok(view(user_id, profile.as_ref(), wallet.as_ref()))
}

/// A user who has not opened the app yet gets a null profile and an empty wallet, not a 404:
/// the Mini App renders its first screen from this.
fn view(user_id: i64, profile: Option<&Profile>, wallet: Option<&Wallet>) -> Value {
    let profile_json = profile.map(|p| {
        json!({
            "first_name": p.first_name,
            "last_name": p.last_name,
            "username": p.username,
            "display_name": p.display_name,
            "language_code": p.language_code,
            "photo_url": p.photo_url,
            "is_premium": p.is_premium,
            "first_seen_at": time(p.first_seen_at_ms),
            "last_seen_at": time(p.last_seen_at_ms),
            "sessions_count": p.sessions_count,
            "referred_by": p.referred_by,
        })
    });
    let latest: Vec<Value> = wallet
        .map(|w| {
            w.latest
                .iter()
                .map(|e| {
                    json!({
                        "event_id": e.event_id,
                        "seq": e.seq,
                        "kind": e.kind,
                        "amount": e.amount,
                        "balance_after": e.balance_after,
                        "occurred_at": time(e.occurred_at_ms),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let (current, best, last_day) = profile.map_or((0, 0, None), |p| {
        (p.streak_current, p.streak_best, p.streak_last_day)
    });
    json!({
        "user_id": user_id,
        "profile": profile_json,
        "wallet": {
            "balance": wallet.map_or(0, |w| w.balance),
            "entries": wallet.map_or(0, |w| w.entries),
            "latest": latest,
        },
        "streak": {
            "current": current,
            "best": best,
            "last_check_in_day": last_day.and_then(iso_date),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_without_rows_gets_an_empty_wallet_and_no_profile() {
        let body = view(7, None, None);
        assert_eq!(body["user_id"], 7);
        assert!(body["profile"].is_null());
        assert_eq!(body["wallet"]["balance"], 0);
        assert_eq!(body["wallet"]["latest"], json!([]));
        assert_eq!(body["streak"]["current"], 0);
    }

    #[test]
    fn the_profile_shows_its_fields_and_streak_days_as_dates() {
        let profile = Profile {
            user_id: 7,
            display_name: Some("seven".into()),
            first_seen_at_ms: 1_700_000_000_000,
            last_seen_at_ms: 1_700_000_000_000,
            sessions_count: 3,
            streak_current: 2,
            streak_best: 4,
            streak_last_day: Some(20_000),
            ..Profile::default()
        };
        let body = view(7, Some(&profile), None);
        assert_eq!(body["profile"]["display_name"], "seven");
        assert_eq!(body["profile"]["sessions_count"], 3);
        assert_eq!(body["profile"]["first_seen_at"], "2023-11-14T22:13:20.000Z");
        assert_eq!(body["streak"]["best"], 4);
        assert_eq!(body["streak"]["last_check_in_day"], "2024-10-04");
    }
}
