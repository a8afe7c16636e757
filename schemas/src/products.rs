//! The product catalogue: what a Mini App sells for Telegram Stars, from configuration
//! (`SURGE_CATALOG`, a JSON array; [`Catalog::builtin`] when unset). The write API reads it to
//! create invoices and to answer pre-checkout queries; `GET /v1/catalog` lists it. A payment
//! carries what it granted in its event, so changing the catalogue later never rewrites what a
//! past purchase gave, nor what its refund takes back.
//!
//! ```json
//! [{"id": "coins_1000", "title": "1,000 coins", "description": "A pile of coins",
//!   "stars": 50, "grants": {"coins": 1000}},
//!  {"id": "vip", "title": "VIP", "description": "VIP for 30 days", "stars": 250,
//!   "grants": {"subscription": "vip"}, "once": true},
//!  {"id": "full_energy", "title": "Full energy", "description": "Fill your tap energy bar",
//!   "stars": 10, "grants": "energy_refill"}]
//! ```

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::rules::Text;

/// Item ids are tokens of at most this many bytes (they go into invoice payloads and URLs).
pub const MAX_ID: usize = 32;
/// Telegram's bounds on an invoice's title and description, in characters.
pub const MAX_TITLE: usize = 32;
pub const MAX_DESCRIPTION: usize = 255;
/// The most Stars one item may cost (Telegram's ceiling for a subscription's price).
pub const MAX_STARS: i64 = 10_000;
/// The most coins one item may grant.
pub const MAX_COINS: i64 = 1_000_000_000;
/// The only subscription period Telegram accepts: 30 days, in seconds.
pub const SUBSCRIPTION_PERIOD_SECS: i64 = 2_592_000;

/// What buying an item gives the buyer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Grant {
    /// Coins on the wallet (and the leaderboards), taken back on refund.
    Coins(i64),
    /// A 30-day Telegram Stars subscription to the named plan, renewed by Telegram each month.
    Subscription(String),
    /// A boost: the tap energy bar filled at once (`"grants": "energy_refill"`), once per
    /// payment. Spent as it is used, so a refund takes nothing back.
    EnergyRefill,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    pub id: String,
    pub title: String,
    pub description: String,
    /// The price in Telegram Stars (currency `XTR`).
    pub stars: i64,
    pub grants: Grant,
    /// Bought at most once per user (a refund makes it buyable again).
    #[serde(default)]
    pub once: bool,
}

impl Product {
    /// The coins one purchase grants (zero for a subscription).
    pub fn coins(&self) -> i64 {
        match self.grants {
            Grant::Coins(coins) => coins,
            Grant::Subscription(_) | Grant::EnergyRefill => 0,
        }
    }

    pub fn is_subscription(&self) -> bool {
        matches!(self.grants, Grant::Subscription(_))
    }
}

/// The items, in the catalogue's order. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    products: Arc<[Product]>,
}

const BUILTIN: &str = r#"[
  {"id": "coins_1000", "title": "1,000 coins", "description": "A pile of 1,000 coins for your wallet.", "stars": 50, "grants": {"coins": 1000}},
  {"id": "starter_pack", "title": "Starter pack", "description": "10,000 coins to start with. One per player.", "stars": 100, "grants": {"coins": 10000}, "once": true},
  {"id": "vip", "title": "VIP", "description": "VIP status for 30 days, renewed monthly.", "stars": 250, "grants": {"subscription": "vip"}, "once": true},
  {"id": "full_energy", "title": "Full energy", "description": "Fill your tap energy bar now.", "stars": 10, "grants": "energy_refill"}
]"#;

impl Catalog {
    /// The catalogue `surge dev` and the tests run with when no file is configured.
    pub fn builtin() -> Catalog {
        Catalog::parse(BUILTIN).expect("the built-in catalogue is valid")
    }

    /// A catalogue from its JSON; the error names the item and the rule it breaks.
    pub fn parse(json: &str) -> Result<Catalog, String> {
        let products: Vec<Product> =
            serde_json::from_str(json).map_err(|e| format!("not a catalogue: {e}"))?;
        let mut ids = HashSet::new();
        for (index, product) in products.iter().enumerate() {
            let name = format!("item {index} ({:?})", product.id);
            let broken = |rule: String| format!("{name}: {rule}");
            Text::Token { max: MAX_ID }
                .check("id", &product.id)
                .map_err(|v| broken(v.to_string()))?;
            if !ids.insert(product.id.as_str()) {
                return Err(broken("the id is used twice".into()));
            }
            Text::Shown { max: MAX_TITLE }
                .check("title", &product.title)
                .map_err(|v| broken(v.to_string()))?;
            Text::Shown {
                max: MAX_DESCRIPTION,
            }
            .check("description", &product.description)
            .map_err(|v| broken(v.to_string()))?;
            if !(1..=MAX_STARS).contains(&product.stars) {
                return Err(broken(format!("stars must be between 1 and {MAX_STARS}")));
            }
            match &product.grants {
                Grant::Coins(coins) if !(1..=MAX_COINS).contains(coins) => {
                    return Err(broken(format!("coins must be between 1 and {MAX_COINS}")));
                }
                Grant::Subscription(plan) => Text::Token { max: MAX_ID }
                    .check("subscription", plan)
                    .map_err(|v| broken(v.to_string()))?,
                Grant::Coins(_) | Grant::EnergyRefill => {}
            }
        }
        Ok(Catalog {
            products: products.into(),
        })
    }

    pub fn get(&self, id: &str) -> Option<&Product> {
        self.products.iter().find(|p| p.id == id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Product> {
        self.products.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalogue_sells_coins_a_pack_once_a_subscription_and_a_boost() {
        let catalog = Catalog::builtin();
        assert_eq!(catalog.get("coins_1000").unwrap().coins(), 1000);
        assert!(catalog.get("starter_pack").unwrap().once);
        assert!(catalog.get("vip").unwrap().is_subscription());
        assert_eq!(
            catalog.get("full_energy").unwrap().grants,
            Grant::EnergyRefill
        );
        assert_eq!(catalog.get("vip").unwrap().coins(), 0);
        assert_eq!(catalog.get("nope"), None);
    }

    #[test]
    fn a_broken_catalogue_is_refused_naming_the_item_and_the_rule() {
        let refused = |json: &str| Catalog::parse(json).unwrap_err();
        let item = |id: &str, title: &str, stars: i64, grants: &str| {
            format!(
                r#"{{"id": "{id}", "title": "{title}", "description": "D", "stars": {stars}, "grants": {grants}}}"#
            )
        };
        let ok = item("a", "T", 1, r#"{"coins": 1}"#);
        assert!(Catalog::parse(&format!("[{ok}]")).is_ok());
        assert!(refused(&format!("[{ok}, {ok}]")).contains("used twice"));
        let bad_id = refused(&format!("[{}]", item("a b", "T", 1, r#"{"coins": 1}"#)));
        assert!(bad_id.contains(r#"item 0 ("a b"): id"#), "{bad_id}");
        let long_title = "x".repeat(33);
        let title = refused(&format!(
            "[{}]",
            item("a", &long_title, 1, r#"{"coins": 1}"#)
        ));
        assert!(title.contains("title"), "{title}");
        assert!(refused(&format!("[{}]", item("a", "T", 0, r#"{"coins": 1}"#))).contains("stars"));
        assert!(
            refused(&format!("[{}]", item("a", "T", 10_001, r#"{"coins": 1}"#))).contains("stars")
        );
        assert!(refused(&format!("[{}]", item("a", "T", 1, r#"{"coins": 0}"#))).contains("coins"));
        let plan = refused(&format!(
            "[{}]",
            item("a", "T", 1, r#"{"subscription": ""}"#)
        ));
        assert!(plan.contains("subscription"), "{plan}");
        assert!(refused(&format!("[{}]", item("a", "T", 1, r#"{"gems": 5}"#))).contains("unknown"));
        assert!(refused("{}").contains("not a catalogue"));
    }
}
