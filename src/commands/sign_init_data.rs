//! `surge sign-init-data`: valid initData for the configured bot token, printed on stdout, so
//! `curl -H "Authorization: tma $(surge sign-init-data --user-id 1)"` works against `surge dev`.

use std::time::{SystemTime, UNIX_EPOCH};

use secrecy::ExposeSecret;
use surge_telegram_auth::{InitDataBuilder, WebAppUser};

use crate::settings::Telegram;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) telegram: Telegram,
    /// Telegram user id (64-bit).
    #[arg(long)]
    pub(crate) user_id: i64,
    #[arg(long, default_value = "Dev")]
    pub(crate) first_name: String,
    #[arg(long)]
    pub(crate) last_name: Option<String>,
    #[arg(long)]
    pub(crate) username: Option<String>,
    #[arg(long)]
    pub(crate) language_code: Option<String>,
    #[arg(long)]
    pub(crate) is_premium: bool,
    /// The Mini App start parameter, e.g. ref_<referrer id>.
    #[arg(long)]
    pub(crate) start_param: Option<String>,
    /// Unix seconds; default now.
    #[arg(long)]
    pub(crate) auth_date: Option<i64>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let user = WebAppUser {
        id: args.user_id,
        first_name: args.first_name,
        last_name: args.last_name,
        username: args.username,
        language_code: args.language_code,
        is_premium: args.is_premium,
        is_bot: false,
        photo_url: None,
        allows_write_to_pm: true,
    };
    let mut builder = InitDataBuilder::new(user, args.auth_date.unwrap_or(now));
    if let Some(start_param) = args.start_param {
        builder = builder.start_param(start_param);
    }
    println!("{}", builder.sign(args.telegram.bot_token.expose_secret()));
    Ok(())
}
