//! What the write side remembers about payments, in Redis, shared by every write-API instance:
//!
//! - `<prefix>:stars:charge:<charge id>`: the payment (buyer, payload, Stars), kept without
//!   expiry, so an operator can refund it by its charge id alone.
//! - `<prefix>:stars:owned:<user>`: the items bought once that the user owns (a set); a refund
//!   removes the item.
//! - `<prefix>:stars:pending:<user>:<item>`: the purchase of a once-only item whose pre-checkout
//!   was approved, for [`PENDING_TTL`] or until its payment or refund is recorded, so two
//!   invoices of it cannot both be approved.
//! - `<prefix>:tg:update:<update id>`: Telegram updates handled to the end, for [`UPDATE_TTL`]
//!   (Telegram redelivers an update it got no 2xx for; this answers a late duplicate at once).
//!
//! None of this decides what is credited: payment events carry ids derived from the charge id,
//! so every projection applies a payment once however often it is appended. These records only
//! refuse what Telegram should not let through and find a charge for a refund.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How long an approved pre-checkout holds a once-only item for its purchase.
pub const PENDING_TTL: Duration = Duration::from_secs(60);
/// How long a handled update id is remembered.
pub const UPDATE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// A payment as the write side received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    pub user_id: i64,
    pub invoice_payload: String,
    pub stars: i64,
    /// A refund was recorded: a redelivery of the payment must not make the item owned again.
    #[serde(default)]
    pub refunded: bool,
}

#[derive(Clone)]
pub struct PaymentRecords {
    redis: ConnectionManager,
    prefix: String,
}

impl PaymentRecords {
    pub fn new(redis: ConnectionManager, prefix: &str) -> PaymentRecords {
        PaymentRecords {
            redis,
            prefix: prefix.to_owned(),
        }
    }

    pub async fn charge(&self, charge_id: &str) -> redis::RedisResult<Option<Charge>> {
        let json: Option<String> = self.redis.clone().get(self.charge_key(charge_id)).await?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Records a payment of `item_id` (`once`: a once-only item, now owned) and releases the
    /// item's pre-checkout hold, in one script. A charge already refunded stays refunded and
    /// owns nothing: its payment was redelivered after the refund.
    pub async fn paid(
        &self,
        charge_id: &str,
        charge: &Charge,
        item_id: &str,
        once: bool,
    ) -> redis::RedisResult<()> {
        let script = redis::Script::new(
            r"local old = redis.call('GET', KEYS[1])
              if old and cjson.decode(old).refunded then return 0 end
              redis.call('SET', KEYS[1], ARGV[1])
              if ARGV[2] == '1' then redis.call('SADD', KEYS[2], ARGV[3]) end
              redis.call('DEL', KEYS[3])
              return 1",
        );
        let json = serde_json::to_string(charge).expect("plain data serialises");
        let _: i32 = script
            .key(self.charge_key(charge_id))
            .key(self.owned(charge.user_id))
            .key(self.hold_key(charge.user_id, item_id))
            .arg(json)
            .arg(if once { "1" } else { "0" })
            .arg(item_id)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    /// Records the refund of a charge: refunded for good, the item no longer owned, its hold
    /// released, in one transaction.
    pub async fn refunded(
        &self,
        charge_id: &str,
        charge: &Charge,
        item_id: &str,
    ) -> redis::RedisResult<()> {
        let charge = Charge {
            refunded: true,
            ..charge.clone()
        };
        let json = serde_json::to_string(&charge).expect("plain data serialises");
        redis::pipe()
            .atomic()
            .set(self.charge_key(charge_id), json)
            .ignore()
            .srem(self.owned(charge.user_id), item_id)
            .ignore()
            .del(self.hold_key(charge.user_id, item_id))
            .ignore()
            .query_async(&mut self.redis.clone())
            .await
    }

    pub async fn owns(&self, user_id: i64, item_id: &str) -> redis::RedisResult<bool> {
        self.redis
            .clone()
            .sismember(self.owned(user_id), item_id)
            .await
    }

    /// Holds a once-only item for `purchase_id`: false when another purchase holds it.
    pub async fn hold(
        &self,
        user_id: i64,
        item_id: &str,
        purchase_id: Uuid,
    ) -> redis::RedisResult<bool> {
        let key = self.hold_key(user_id, item_id);
        // Set when free, or renewed when this purchase already holds it.
        let script = redis::Script::new(
            r"local held = redis.call('GET', KEYS[1])
              if held and held ~= ARGV[1] then return 0 end
              redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
              return 1",
        );
        let held: i32 = script
            .key(key)
            .arg(purchase_id.to_string())
            .arg(PENDING_TTL.as_millis() as u64)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(held == 1)
    }

    pub async fn update_handled(&self, update_id: i64) -> redis::RedisResult<bool> {
        self.redis.clone().exists(self.update(update_id)).await
    }

    pub async fn mark_update_handled(&self, update_id: i64) -> redis::RedisResult<()> {
        self.redis
            .clone()
            .set_ex(self.update(update_id), 1, UPDATE_TTL.as_secs())
            .await
    }

    fn charge_key(&self, charge_id: &str) -> String {
        format!("{}:stars:charge:{charge_id}", self.prefix)
    }

    fn hold_key(&self, user_id: i64, item_id: &str) -> String {
        format!("{}:stars:pending:{user_id}:{item_id}", self.prefix)
    }

    fn owned(&self, user_id: i64) -> String {
        format!("{}:stars:owned:{user_id}", self.prefix)
    }

    fn update(&self, update_id: i64) -> String {
        format!("{}:tg:update:{update_id}", self.prefix)
    }
}
