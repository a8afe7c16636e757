//! A user opening the Mini App and changing their profile.

use serde::{Deserialize, Serialize};

use super::PayloadType;
use crate::rules::{Text, Violation};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStarted {
    pub first_name: String,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub language_code: Option<String>,
    pub is_premium: bool,
    pub photo_url: Option<String>,
    pub allows_write_to_pm: bool,
    pub start_param: Option<String>,
    pub platform: Option<String>,
}

impl PayloadType for SessionStarted {
    fn check(&self) -> Result<(), Violation> {
        let SessionStarted {
            first_name,
            last_name,
            username,
            language_code,
            is_premium: _,
            photo_url,
            allows_write_to_pm: _,
            start_param,
            platform,
        } = self;
        Text::TelegramName.check("first_name", first_name)?;
        Text::TelegramName.check_opt("last_name", last_name)?;
        Text::Username.check_opt("username", username)?;
        Text::LanguageTag.check_opt("language_code", language_code)?;
        Text::HttpsUrl.check_opt("photo_url", photo_url)?;
        Text::Token { max: 512 }.check_opt("start_param", start_param)?;
        Text::Token { max: 32 }.check_opt("platform", platform)
    }

    fn energy_cost(&self) -> u64 {
        0
    }

    fn sample() -> Self {
        SessionStarted {
            first_name: "Ада".into(),
            last_name: None,
            username: Some("ada".into()),
            language_code: Some("ru".into()),
            is_premium: true,
            photo_url: Some("https://t.me/i/userpic/320/a.jpg".into()),
            allows_write_to_pm: true,
            start_param: Some("ref_42".into()),
            platform: Some("ios".into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileUpdated {
    pub display_name: Option<String>,
    pub language_code: Option<String>,
    pub photo_url: Option<String>,
}

impl PayloadType for ProfileUpdated {
    fn check(&self) -> Result<(), Violation> {
        let ProfileUpdated {
            display_name,
            language_code,
            photo_url,
        } = self;
        Text::DisplayName.check_opt("display_name", display_name)?;
        Text::LanguageTag.check_opt("language_code", language_code)?;
        Text::HttpsUrl.check_opt("photo_url", photo_url)
    }

    fn energy_cost(&self) -> u64 {
        0
    }

    fn sample() -> Self {
        ProfileUpdated {
            display_name: Some("A".into()),
            language_code: None,
            photo_url: Some("https://t.me/i/userpic/320/a.jpg".into()),
        }
    }
}
