//! What a Mini App can ask for, as JSON bodies, and the event each becomes. Validation happens
//! here, before anything is produced: a batch with one bad action appends nothing. What each
//! event field may hold is `surge_schemas::rules`, checked for every event built here; this
//! module adds only what depends on the request (the batch size, `occurred_at` against now).

use serde::{Deserialize, Serialize};
use surge_schemas::quests::QuestBook;
use surge_schemas::rules::{self, Problem};
use surge_schemas::{
    DailyCheckedIn, Envelope, Event, Payload, ProfileUpdated, QuestClaimed, SessionStarted,
    TapsSubmitted,
};
use surge_telegram_auth::InitData;
use uuid::Uuid;

/// Taps in one request, inclusive.
pub const MAX_TAPS: i64 = rules::MAX_TAPS as i64;
/// Actions in one batch request, inclusive.
pub const MAX_BATCH: usize = 100;
/// Clients may report when an action happened (offline play), within these bounds.
const MAX_PAST_MS: i64 = 24 * 3600 * 1000;
const MAX_FUTURE_MS: i64 = 60 * 1000;
const DAY_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionBody {
    /// The client's platform (`ios`, `android`, `tdesktop`, ...): 1 to 32 of `[A-Za-z0-9_-]`.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,32}$")]
    pub platform: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TapsBody {
    /// 1 to 1000, and at most the energy left (else `429 out_of_energy`).
    #[schema(minimum = 1, maximum = 1000, example = 3)]
    pub count: i64,
    /// Unix milliseconds; defaults to the time the API received it. At most 24 h in the past and
    /// 60 s in the future.
    pub occurred_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckinBody {
    /// Unix milliseconds, as for taps; the check-in counts for its UTC day.
    pub occurred_at: Option<i64>,
}

/// At least one field.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    /// 1 to 64 characters after trimming, not invisible-only.
    #[schema(example = "Neo")]
    pub display_name: Option<String>,
    /// An IETF language tag, 2 to 35 characters.
    pub language_code: Option<String>,
    /// `https://`, at most 512 bytes, no whitespace.
    pub photo_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuestClaimBody {
    pub quest_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    Session(SessionBody),
    Taps(TapsBody),
    Checkin(CheckinBody),
    Profile(ProfileBody),
    QuestClaim(QuestClaimBody),
}

// The schema of `Action` in the OpenAPI document (documentation only). Derived from `Action`
// itself it would be `allOf` the body and the `type` tag, which no object satisfies since the
// bodies refuse unknown fields; the fields here are the bodies' own.
/// One action of a batch, tagged by `type`, with the fields of its endpoint's body.
#[derive(utoipa::ToSchema)]
#[schema(as = Action)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[allow(dead_code)]
pub enum ActionSchema {
    Session {
        #[schema(pattern = "^[A-Za-z0-9_-]{1,32}$")]
        platform: Option<String>,
    },
    Taps {
        #[schema(minimum = 1, maximum = 1000)]
        count: i64,
        occurred_at: Option<i64>,
    },
    Checkin {
        occurred_at: Option<i64>,
    },
    Profile {
        display_name: Option<String>,
        language_code: Option<String>,
        photo_url: Option<String>,
    },
    QuestClaim {
        quest_id: String,
    },
}

/// Why a claim names no quest the user can claim: the quest book decides, not the event rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimRefused {
    /// The book has no such quest.
    Unknown(String),
    /// It completes by itself once its goal is met.
    NotClaimable(String),
}

/// Checks every quest claim among `actions` against `book`.
pub fn check_claims(actions: &[Action], book: &QuestBook) -> Result<(), ClaimRefused> {
    for action in actions {
        let Action::QuestClaim(QuestClaimBody { quest_id }) = action else {
            continue;
        };
        match book.get(quest_id) {
            None => return Err(ClaimRefused::Unknown(quest_id.clone())),
            Some(quest) if !quest.claim => {
                return Err(ClaimRefused::NotClaimable(quest_id.clone()));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// 1 to 100 actions, validated whole before anything is appended.
    #[schema(min_items = 1, max_items = 100, value_type = Vec<ActionSchema>)]
    pub actions: Vec<Action>,
}

/// A field the client got wrong: `field` names it (`actions[3].count` in a batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
    /// The field holds characters it never may (NUL, control, bidirectional controls,
    /// nothing visible): not acceptable text at all, rather than a value out of bounds.
    pub bad_text: bool,
}

fn invalid(field: &str, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.to_owned(),
        message: message.into(),
        bad_text: false,
    }
}

/// The event rule's verdict on the payload built for `action`. A session's fields other than
/// `platform` come from initData, so they are named as its (`init_data.first_name`).
fn check_rules(action: &Action, payload: &Payload) -> Result<(), Invalid> {
    rules::check(payload).map_err(|violation| {
        let from_init_data = match action {
            Action::Session(_) => violation.field != "platform",
            Action::Taps(_) | Action::Checkin(_) | Action::Profile(_) | Action::QuestClaim(_) => {
                false
            }
        };
        let field = if from_init_data {
            format!("init_data.{}", violation.field)
        } else {
            violation.field.to_owned()
        };
        let (message, bad_text) = match violation.problem {
            Problem::Characters(what) => (format!("must not contain {what}"), true),
            Problem::Value(rule) => (rule, false),
        };
        Invalid {
            field,
            message,
            bad_text,
        }
    })
}

/// Turns validated actions into events for `user`, with fresh UUIDv7 ids unless `ids` are given
/// (an idempotent retry reuses the ids of its first attempt, so duplicates share an id).
pub fn build_events(
    actions: &[Action],
    auth: &InitData,
    now_ms: i64,
    ids: Option<&[Uuid]>,
) -> Result<Vec<Event>, Invalid> {
    if actions.is_empty() || actions.len() > MAX_BATCH {
        return Err(invalid(
            "actions",
            format!("must hold 1 to {MAX_BATCH} actions"),
        ));
    }
    let batch = actions.len() > 1;
    actions
        .iter()
        .enumerate()
        .map(|(i, action)| {
            let built = to_payload(action, auth, now_ms)
                .and_then(|(payload, at)| check_rules(action, &payload).map(|()| (payload, at)));
            let (payload, occurred_at) = built.map_err(|e| {
                if batch {
                    Invalid {
                        field: format!("actions[{i}].{}", e.field),
                        ..e
                    }
                } else {
                    e
                }
            })?;
            let event_id = ids
                .and_then(|ids| ids.get(i).copied())
                .unwrap_or_else(Uuid::now_v7);
            let envelope = Envelope {
                event_id,
                user_id: auth.user.id,
                occurred_at,
                recorded_at: now_ms,
            };
            Ok(Event { envelope, payload })
        })
        .collect()
}

fn to_payload(action: &Action, auth: &InitData, now_ms: i64) -> Result<(Payload, i64), Invalid> {
    Ok(match action {
        Action::Session(SessionBody { platform }) => {
            let user = &auth.user;
            let payload = SessionStarted {
                first_name: user.first_name.clone(),
                last_name: user.last_name.clone(),
                username: user.username.clone(),
                language_code: user.language_code.clone(),
                is_premium: user.is_premium,
                photo_url: user.photo_url.clone(),
                allows_write_to_pm: user.allows_write_to_pm,
                start_param: auth.start_param.clone(),
                platform: platform.clone(),
            };
            (payload.into(), now_ms)
        }
        Action::Taps(TapsBody { count, occurred_at }) => {
            // Out-of-range stays out of range; the event rule bounds the count.
            let count =
                i32::try_from(*count).unwrap_or(if *count < 0 { i32::MIN } else { i32::MAX });
            (
                TapsSubmitted { count }.into(),
                occurred(*occurred_at, now_ms)?,
            )
        }
        Action::Checkin(CheckinBody { occurred_at }) => {
            let at = occurred(*occurred_at, now_ms)?;
            let day = i32::try_from(at.div_euclid(DAY_MS)).expect("bounded by now");
            (DailyCheckedIn { day }.into(), at)
        }
        Action::Profile(body) => (profile(body)?.into(), now_ms),
        Action::QuestClaim(QuestClaimBody { quest_id }) => (
            QuestClaimed {
                quest_id: quest_id.clone(),
            }
            .into(),
            now_ms,
        ),
    })
}

fn profile(body: &ProfileBody) -> Result<ProfileUpdated, Invalid> {
    let ProfileBody {
        display_name,
        language_code,
        photo_url,
    } = body;
    if display_name.is_none() && language_code.is_none() && photo_url.is_none() {
        return Err(invalid(
            "profile",
            "name at least one of display_name, language_code, photo_url",
        ));
    }
    Ok(ProfileUpdated {
        display_name: display_name.as_deref().map(|name| name.trim().to_owned()),
        language_code: language_code.clone(),
        photo_url: photo_url.clone(),
    })
}

fn occurred(claimed: Option<i64>, now_ms: i64) -> Result<i64, Invalid> {
    match claimed {
        None => Ok(now_ms),
        Some(at) if at < now_ms - MAX_PAST_MS => {
            Err(invalid("occurred_at", "is more than 24 hours in the past"))
        }
        Some(at) if at > now_ms + MAX_FUTURE_MS => Err(invalid("occurred_at", "is in the future")),
        Some(at) => Ok(at),
    }
}

#[cfg(test)]
#[path = "actions_tests.rs"]
mod tests;
