//! The referral rule, pure: what one SessionStarted leads to, given the user's recorded first
//! session and whether the named referrer is known.

use sha2::{Digest, Sha256};
use surge_schemas::{Envelope, Event, ReferralCredited};
use uuid::Uuid;

use crate::decisions;
use crate::projectors::profiles::referrer;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Emit this event.
    Credit(Box<Event>),
    NoReferrer,
    SelfReferral,
    /// Not the user's first session.
    RepeatedSession,
    /// The referrer has never had a session (as far as this deriver has applied).
    UnknownReferrer,
    NotASession,
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Credit(_) => "credited",
            Outcome::NoReferrer => "no_referrer",
            Outcome::SelfReferral => "self_referral",
            Outcome::RepeatedSession => "repeated_session",
            Outcome::UnknownReferrer => "unknown_referrer",
            Outcome::NotASession => "not_a_session",
        }
    }
}

/// The id `start_param` names, valid or not for this user (for looking referrers up).
pub(super) fn named_referrer(start_param: Option<&str>) -> Option<i64> {
    // `referrer` refuses the user themselves; no real user has id 0, so this returns the name.
    referrer(start_param, 0)
}

/// `first_session` is the event id recorded as the user's first session.
pub fn decide(
    event: &Event,
    first_session: Option<Uuid>,
    referrer_known: impl Fn(i64) -> bool,
) -> Outcome {
    let Some(session) = decisions::referral_source(&event.payload) else {
        return Outcome::NotASession;
    };
    let user = event.envelope.user_id;
    let Some(named) = named_referrer(session.start_param.as_deref()) else {
        return Outcome::NoReferrer;
    };
    if first_session != Some(event.envelope.event_id) {
        return Outcome::RepeatedSession;
    }
    if referrer(session.start_param.as_deref(), user).is_none() {
        return Outcome::SelfReferral;
    }
    if !referrer_known(named) {
        return Outcome::UnknownReferrer;
    }
    let envelope = Envelope {
        event_id: derived_event_id(event.envelope.event_id, "ReferralCredited"),
        user_id: named,
        // The source's times, so a re-emission is the same event byte for byte.
        occurred_at: event.envelope.occurred_at,
        recorded_at: event.envelope.recorded_at,
    };
    let payload = ReferralCredited {
        referred_user_id: user,
        source_event_id: event.envelope.event_id,
    };
    Outcome::Credit(Box::new(Event {
        envelope,
        payload: payload.into(),
    }))
}

/// A UUIDv7-shaped id derived from `source`: its timestamp bits (so ids still sort by time) and
/// a hash of the source id and the kind of derivation for the rest.
pub fn derived_event_id(source: Uuid, kind: &str) -> Uuid {
    let digest = Sha256::new()
        .chain_update(kind.as_bytes())
        .chain_update(source.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&source.as_bytes()[..6]);
    bytes[6..].copy_from_slice(&digest[..10]);
    bytes[6] = (bytes[6] & 0x0f) | 0x70; // version 7
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use surge_schemas::SessionStarted;

    fn session(user: i64, start_param: Option<&str>) -> Event {
        let payload = SessionStarted {
            first_name: "A".into(),
            last_name: None,
            username: None,
            language_code: None,
            is_premium: false,
            photo_url: None,
            allows_write_to_pm: false,
            start_param: start_param.map(str::to_owned),
            platform: None,
        };
        let envelope = Envelope {
            event_id: Uuid::now_v7(),
            user_id: user,
            occurred_at: 1,
            recorded_at: 2,
        };
        Event {
            envelope,
            payload: payload.into(),
        }
    }

    #[test]
    fn a_first_session_with_a_known_referrer_credits_the_referrer() {
        let event = session(10, Some("ref_7"));
        let Outcome::Credit(credit) = decide(&event, Some(event.envelope.event_id), |id| id == 7)
        else {
            panic!("no credit");
        };
        assert_eq!(credit.envelope.user_id, 7);
        assert_eq!(
            credit.envelope.event_id,
            derived_event_id(event.envelope.event_id, "ReferralCredited")
        );
        let again = decide(&event, Some(event.envelope.event_id), |id| id == 7);
        assert_eq!(
            again,
            Outcome::Credit(credit),
            "a replay decides and emits the same"
        );
    }

    #[test]
    fn everything_else_produces_nothing() {
        let event = session(10, Some("ref_7"));
        let first = Some(event.envelope.event_id);
        assert_eq!(
            decide(&event, Some(Uuid::now_v7()), |_| true),
            Outcome::RepeatedSession
        );
        assert_eq!(decide(&event, first, |_| false), Outcome::UnknownReferrer);
        let own = session(10, Some("ref_10"));
        assert_eq!(
            decide(&own, Some(own.envelope.event_id), |_| true),
            Outcome::SelfReferral
        );
        let none = session(10, None);
        assert_eq!(
            decide(&none, Some(none.envelope.event_id), |_| true),
            Outcome::NoReferrer
        );
        let odd = session(10, Some("ref_007"));
        assert_eq!(
            decide(&odd, Some(odd.envelope.event_id), |_| true),
            Outcome::NoReferrer
        );
    }

    #[test]
    fn derived_ids_are_deterministic_v7_and_distinct_per_source() {
        let source = Uuid::now_v7();
        let id = derived_event_id(source, "ReferralCredited");
        assert_eq!(id, derived_event_id(source, "ReferralCredited"));
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(&id.as_bytes()[..6], &source.as_bytes()[..6]);
        assert_ne!(id, derived_event_id(Uuid::now_v7(), "ReferralCredited"));
        assert_ne!(id, derived_event_id(source, "Other"));
    }
}
