//! The kinds of text an event field holds, and the characters none of them may hold.

use super::{Problem, Violation};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    /// A name the player chose, shown to others: 1 to 64 characters, not invisible-only.
    DisplayName,
    /// A name from the player's Telegram account (`first_name`, `last_name`): at most 64
    /// characters, Telegram's own limit. Telegram allows names that look blank (a Hangul filler),
    /// so these may be invisible; the player chooses a display name to show instead.
    TelegramName,
    /// A Telegram username: 1 to 32 of `[A-Za-z0-9_]`.
    Username,
    /// An IETF language tag such as `en` or `pt-BR`: 2 to 35 of `[A-Za-z0-9-]`, a letter first.
    LanguageTag,
    /// An `https://` URL of at most 512 bytes, without whitespace.
    HttpsUrl,
    /// 1 to `max` of `[A-Za-z0-9_-]` (Telegram's `start_param` alphabet).
    Token { max: usize },
    /// An identifier another system chose (Telegram's payment charge ids): 1 to `max` printable
    /// ASCII characters, no spaces.
    Opaque { max: usize },
    /// Text shown to users (an invoice's title, a button's label): 1 to `max` characters, not
    /// invisible-only.
    Shown { max: usize },
    /// A message's text: like [`Text::Shown`], and it may break lines (`\n`, the one control
    /// character allowed).
    Message { max: usize },
}

const NAME_CHARS: usize = 64;

impl Text {
    pub fn check(self, field: &'static str, value: &str) -> Result<(), Violation> {
        let refuse = |problem| Err(Violation { field, problem });
        let lines = matches!(self, Text::Message { .. });
        if let Some(what) = forbidden(value, lines) {
            return refuse(Problem::Characters(what));
        }
        let chars = value.chars().count();
        let ok = match self {
            Text::DisplayName | Text::Shown { .. } | Text::Message { .. } => {
                let max = match self {
                    Text::Shown { max } | Text::Message { max } => max,
                    _ => NAME_CHARS,
                };
                if (1..=max).contains(&chars) && value.chars().all(invisible) {
                    return refuse(Problem::Characters("only invisible characters"));
                }
                (1..=max).contains(&chars)
            }
            Text::TelegramName => chars <= NAME_CHARS,
            Text::Username => {
                (1..=32).contains(&value.len())
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            }
            Text::LanguageTag => {
                (2..=35).contains(&value.len())
                    && value.starts_with(|c: char| c.is_ascii_alphabetic())
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }
            Text::HttpsUrl => {
                value.starts_with("https://")
                    && value.len() <= 512
                    && !value.chars().any(char::is_whitespace)
            }
            Text::Token { max } => {
                (1..=max).contains(&value.len())
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            }
            Text::Opaque { max } => {
                (1..=max).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic())
            }
        };
        if ok {
            Ok(())
        } else {
            refuse(Problem::Value(self.rule()))
        }
    }

    /// [`Text::check`] for an optional field: absent is always fine.
    pub fn check_opt(self, field: &'static str, value: &Option<String>) -> Result<(), Violation> {
        value.as_deref().map_or(Ok(()), |v| self.check(field, v))
    }

    /// The rule, as a client reads it in an error.
    pub fn rule(self) -> String {
        match self {
            Text::DisplayName => format!("must be 1 to {NAME_CHARS} characters"),
            Text::TelegramName => format!("must be at most {NAME_CHARS} characters"),
            Text::Username => "must be 1 to 32 of [A-Za-z0-9_]".into(),
            Text::LanguageTag => "must be an IETF language tag such as en or pt-BR".into(),
            Text::HttpsUrl => "must be an https:// URL of at most 512 bytes".into(),
            Text::Token { max } => format!("must be 1 to {max} of [A-Za-z0-9_-]"),
            Text::Shown { max } | Text::Message { max } => {
                format!("must be 1 to {max} characters")
            }
            Text::Opaque { max } => format!("must be 1 to {max} printable ASCII characters"),
        }
    }
}

/// What no text field may hold, if `value` holds it; a message may hold newlines.
fn forbidden(value: &str, newlines: bool) -> Option<&'static str> {
    if value
        .chars()
        .any(|c| c.is_control() && !(newlines && c == '\n'))
    {
        Some("control characters (NUL, newlines, escapes)")
    } else if value.chars().any(bidi_control) {
        Some("bidirectional embedding, override or isolate characters")
    } else {
        None
    }
}

/// U+202A–U+202E (embeddings, overrides) and U+2066–U+2069 (isolates): they reorder the text
/// around them, so a name could make the next line on a leaderboard read backwards.
fn bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that show nothing: whitespace, zero-width and format characters, variation
/// selectors, tags, and the blank letters used for "invisible" names (Hangul fillers, the
/// braille blank). Not the whole Unicode `Cf` class, but every member of it that is used to fake
/// an empty name, and the standard library has no general-category lookup.
fn invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E007F}'
                | '\u{E0100}'..='\u{E01EF}'
        )
}
