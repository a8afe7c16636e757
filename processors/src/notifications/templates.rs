//! Which events message their user, and what the message says in each language: from
//! configuration (`SURGE_NOTIFICATIONS_FILE`, JSON; [`Templates::builtin`] when unset).
//!
//! ```json
//! {"button": {"en": "Play", "ru": "Играть"},
//!  "events": {
//!    "ReferralCredited": {"en": "A friend joined through your link: +{coins} coins!"},
//!    "QuestCompleted": {"en": "Quest {quest} complete: +{coins} coins"},
//!    "StarsPaymentReceived": {"en": "Thank you! {item} is yours."}}}
//! ```
//!
//! An event type not listed under `events` sends nothing. Each template needs an `en` text,
//! the fallback; a user's language (chosen in the Mini App, else Telegram's) picks its own
//! template, then its base language (`pt` for `pt-BR`), then English. `{name}` stands for one of
//! the event's [`message_variables`] (which event types notify, and with what, is decided in
//! [`crate::decisions`]); a template naming another is refused when the file is read. The
//! button, when configured and `SURGE_MINI_APP_URL` is set, is an inline `web_app` button that
//! opens the Mini App.

use std::collections::BTreeMap;

use serde::Deserialize;
use surge_schemas::rules::{MAX_BUTTON_CHARS, MAX_MESSAGE_CHARS, Text};
use surge_schemas::{EventType, Payload};

use crate::decisions::{message_variable_names, message_variables};

/// Texts by language tag; `en` is required.
type ByLanguage = BTreeMap<String, String>;

/// The notification templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates {
    button: Option<ByLanguage>,
    events: BTreeMap<&'static str, ByLanguage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    button: Option<ByLanguage>,
    events: BTreeMap<String, ByLanguage>,
}

const BUILTIN: &str = r#"{
  "button": {"en": "Open", "ru": "Открыть", "es": "Abrir", "pt": "Abrir"},
  "events": {
    "ReferralCredited": {
      "en": "A friend joined through your link: +{coins} coins!",
      "ru": "Друг присоединился по вашей ссылке: +{coins} монет!"
    },
    "QuestCompleted": {
      "en": "Quest {quest} complete: +{coins} coins",
      "ru": "Задание {quest} выполнено: +{coins} монет"
    },
    "StarsPaymentReceived": {
      "en": "Thank you! {item} is yours.",
      "ru": "Спасибо! {item} теперь ваш."
    }
  }
}"#;

/// A message to one user, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub button_text: Option<String>,
}

impl Templates {
    /// The built-in templates: every event that can notify does, in English and Russian.
    pub fn builtin() -> Templates {
        Templates::parse(BUILTIN).expect("the built-in templates are valid")
    }

    /// Templates from their JSON; the error names the event, the language and the rule.
    pub fn parse(json: &str) -> Result<Templates, String> {
        let file: File =
            serde_json::from_str(json).map_err(|e| format!("not notification templates: {e}"))?;
        let mut events = BTreeMap::new();
        for (name, texts) in file.events {
            let event_type = EventType::from_name(&name)
                .ok_or_else(|| format!("events: {name:?} is not an event type"))?;
            let names = message_variable_names(event_type).ok_or_else(|| {
                format!(
                    "events: {name} never notifies; these can: ReferralCredited, \
                     QuestCompleted, StarsPaymentReceived"
                )
            })?;
            check_texts(&format!("events.{name}"), &texts, MAX_MESSAGE_CHARS, true)?;
            for (language, text) in &texts {
                for placeholder in placeholders(text) {
                    if !names.contains(&placeholder) {
                        return Err(format!(
                            "events.{name}.{language}: {{{placeholder}}} is not one of {names:?}"
                        ));
                    }
                }
            }
            events.insert(event_type.name(), texts);
        }
        if let Some(button) = &file.button {
            check_texts("button", button, MAX_BUTTON_CHARS, false)?;
        }
        Ok(Templates {
            button: file.button,
            events,
        })
    }

    /// The message `payload` sends a user whose language is `language`, if it sends one.
    pub fn render(&self, payload: &Payload, language: Option<&str>) -> Option<Rendered> {
        let variables = message_variables(payload)?;
        let texts = self.events.get(payload.event_type().name())?;
        let mut text = pick(texts, language).to_owned();
        for (name, value) in variables {
            text = text.replace(&format!("{{{name}}}"), &value);
        }
        Some(Rendered {
            text,
            button_text: self.button_text(language),
        })
    }

    /// The label of the button that opens the Mini App, in `language`.
    pub fn button_text(&self, language: Option<&str>) -> Option<String> {
        self.button.as_ref().map(|b| pick(b, language).to_owned())
    }
}

/// The text for `language`: its own, its base language's, else English.
fn pick<'a>(texts: &'a ByLanguage, language: Option<&str>) -> &'a str {
    let language = language.unwrap_or("en").to_ascii_lowercase();
    let base = language.split('-').next().unwrap_or("en");
    texts
        .iter()
        .find(|(tag, _)| tag.to_ascii_lowercase() == language)
        .or_else(|| {
            texts
                .iter()
                .find(|(tag, _)| tag.to_ascii_lowercase() == base)
        })
        .map(|(_, text)| text.as_str())
        .unwrap_or_else(|| &texts["en"])
}

fn check_texts(at: &str, texts: &ByLanguage, max: usize, lines: bool) -> Result<(), String> {
    if !texts.contains_key("en") {
        return Err(format!("{at}: an \"en\" text is required (the fallback)"));
    }
    for (language, text) in texts {
        Text::LanguageTag
            .check("language", language)
            .map_err(|v| format!("{at}.{language}: {v}"))?;
        let rule = if lines {
            Text::Message { max }
        } else {
            Text::Shown { max }
        };
        rule.check("text", text)
            .map_err(|v| format!("{at}.{language}: {v}"))?;
    }
    Ok(())
}

/// The `{name}`s in `text`.
fn placeholders(text: &str) -> Vec<&str> {
    text.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use surge_schemas::{QuestCompleted, ReferralCredited, TapsSubmitted};
    use uuid::Uuid;

    fn quest() -> Payload {
        QuestCompleted {
            quest_id: "tap_1000".into(),
            reward: 250,
            source_event_id: Uuid::nil(),
        }
        .into()
    }

    #[test]
    fn a_template_is_picked_by_language_then_base_language_then_english() {
        let t = Templates::builtin();
        let ru = t.render(&quest(), Some("ru")).unwrap();
        assert_eq!(ru.text, "Задание tap_1000 выполнено: +250 монет");
        assert_eq!(ru.button_text.as_deref(), Some("Открыть"));
        let pt = t.render(&quest(), Some("pt-BR")).unwrap();
        assert_eq!(pt.text, "Quest tap_1000 complete: +250 coins");
        assert_eq!(pt.button_text.as_deref(), Some("Abrir"));
        assert_eq!(
            t.render(&quest(), None).unwrap().text,
            "Quest tap_1000 complete: +250 coins"
        );
        let referral = ReferralCredited {
            referred_user_id: 7,
            source_event_id: Uuid::nil(),
        };
        assert!(
            t.render(&referral.into(), Some("de"))
                .unwrap()
                .text
                .contains("+500 coins")
        );
        assert_eq!(t.render(&TapsSubmitted { count: 3 }.into(), None), None);
    }

    #[test]
    fn only_listed_events_notify() {
        let t = Templates::parse(r#"{"events": {"QuestCompleted": {"en": "{quest}!"}}}"#).unwrap();
        assert_eq!(t.render(&quest(), Some("en")).unwrap().text, "tap_1000!");
        assert_eq!(t.render(&quest(), None).unwrap().button_text, None);
        let referral = ReferralCredited {
            referred_user_id: 7,
            source_event_id: Uuid::nil(),
        };
        assert_eq!(t.render(&referral.into(), None), None);
    }

    #[test]
    fn bad_templates_are_refused_naming_what_is_wrong() {
        let refused = |json: &str| Templates::parse(json).unwrap_err();
        assert!(refused(r#"{"events": {"Nope": {"en": "x"}}}"#).contains("\"Nope\""));
        assert!(
            refused(r#"{"events": {"TapsSubmitted": {"en": "x"}}}"#).contains("never notifies")
        );
        assert!(refused(r#"{"events": {"QuestCompleted": {"ru": "x"}}}"#).contains("\"en\""));
        let unknown = refused(r#"{"events": {"QuestCompleted": {"en": "{stars}"}}}"#);
        assert!(unknown.contains("QuestCompleted.en: {stars}"), "{unknown}");
        assert!(refused(r#"{"events": {"QuestCompleted": {"en": ""}}}"#).contains("text"));
        let long = format!(
            r#"{{"button": {{"en": "{}"}}, "events": {{}}}}"#,
            "b".repeat(65)
        );
        assert!(refused(&long).contains("button.en"));
        assert!(refused(r#"{"events": {}, "extra": 1}"#).contains("extra"));
    }

    #[test]
    fn every_event_that_offers_variables_names_them_for_the_check() {
        let paid = surge_schemas::StarsPaymentReceived {
            telegram_payment_charge_id: "stx".into(),
            purchase_id: Uuid::nil(),
            item_id: "vip".into(),
            stars: 250,
            coins: 0,
            subscription: None,
            subscription_expires_at: None,
            recurring: false,
        };
        let referral = ReferralCredited {
            referred_user_id: 7,
            source_event_id: Uuid::nil(),
        };
        let samples = [
            quest(),
            paid.into(),
            referral.into(),
            TapsSubmitted { count: 1 }.into(),
        ];
        for payload in samples {
            let offered =
                message_variables(&payload).map(|v| v.into_iter().map(|(n, _)| n).collect());
            let named = message_variable_names(payload.event_type()).map(<[&str]>::to_vec);
            assert_eq!(offered, named, "{:?}", payload.event_type());
        }
    }
}
