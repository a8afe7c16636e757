//! What the write side remembers about payments, in Redis, shared by every write-API instance:
//!
//! - `<prefix>:stars:charge:<charge id>`: the payment (buyer, payload, Stars), kept without
//!   expiry, so an operator can refund it by its charge id alone.
//! - `<prefix>:stars:owned:<user>`: the items bought once that the user owns (a set); a refund
//!   removes the item.
//! - `<prefix>:stars:pending:<user>:<item>`: the purchase of a once-only item whose pre-checkout
//!   was approved, for [`PENDING_TTL`] or until its payment or refund is recorded, so two
//!   invoices of it cannot both be approved.
//! - `<prefix>:stars:refunded:<user>:<charge id>`: the charge was refunded, beside the user's
//!   other keys (in a Redis Cluster the charge's own key may sit elsewhere), without expiry.
//! - `<prefix>:tg:update:<update id>`: Telegram updates handled to the end, for [`UPDATE_TTL`]
//!   (Telegram redelivers an update it got no 2xx for; this answers a late duplicate at once).
//!
//! `<user>` is the user id, a hash tag (`{42}`) in a Redis Cluster, so a user's keys share a
//! slot ([`Redis::slot`]).
//!
//! None of this decides what is credited: payment events carry ids derived from the charge id,
//! so every projection applies a payment once however often it is appended. These records only
//! refuse what Telegram should not let through and find a charge for a refund.

use std::time::Duration;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use surge_redis::Redis;
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
    redis: Redis,
    prefix: String,
}

impl PaymentRecords {
    pub fn new(redis: Redis, prefix: &str) -> PaymentRecords {
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
    /// item's pre-checkout hold. A charge already refunded stays refunded and owns nothing: its
    /// payment was redelivered after the refund.
    ///
    /// Two scripts, as the charge and the user's keys may sit in different cluster slots: the
    /// charge first, then what the user owns, unless the refund's marker says that a refund ran
    /// in between. A crash between them leaves the update unanswered; Telegram's redelivery
    /// then finds the charge recorded and calls [`PaymentRecords::paid_again`].
    pub async fn paid(
        &self,
        charge_id: &str,
        charge: &Charge,
        item_id: &str,
        once: bool,
    ) -> redis::RedisResult<()> {
        if self.record_payment(charge_id, charge).await? {
            self.own(charge_id, charge.user_id, item_id, once).await?;
        }
        Ok(())
    }

    /// A payment whose charge is already recorded, reported again: the user's side once more
    /// (owning is idempotent), as a crash may have come between the two steps of
    /// [`PaymentRecords::paid`]. Nothing for a refunded charge, and the refund's marker stops
    /// it when a refund is under way.
    pub async fn paid_again(
        &self,
        charge_id: &str,
        recorded: &Charge,
        item_id: &str,
        once: bool,
    ) -> redis::RedisResult<()> {
        if recorded.refunded {
            return Ok(());
        }
        self.own(charge_id, recorded.user_id, item_id, once).await
    }

    /// The charge's record, unless it says refunded: whether it was written.
    async fn record_payment(&self, charge_id: &str, charge: &Charge) -> redis::RedisResult<bool> {
        let script = redis::Script::new(
            r"local old = redis.call('GET', KEYS[1])
              if old and cjson.decode(old).refunded then return 0 end
              redis.call('SET', KEYS[1], ARGV[1])
              return 1",
        );
        let json = serde_json::to_string(charge).expect("plain data serialises");
        let written: i32 = script
            .key(self.charge_key(charge_id))
            .arg(json)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(written == 1)
    }

    /// The user's side of a payment: owns the item (`once`) and releases its hold, unless the
    /// charge's refund marker is there.
    async fn own(
        &self,
        charge_id: &str,
        user_id: i64,
        item_id: &str,
        once: bool,
    ) -> redis::RedisResult<()> {
        let script = redis::Script::new(
            r"if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
              if ARGV[1] == '1' then redis.call('SADD', KEYS[1], ARGV[2]) end
              redis.call('DEL', KEYS[2])
              return 1",
        );
        let _: i32 = script
            .key(self.owned(user_id))
            .key(self.hold_key(user_id, item_id))
            .key(self.refund_marker(user_id, charge_id))
            .arg(if once { "1" } else { "0" })
            .arg(item_id)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    /// Records the refund of a charge: the item no longer owned, its hold released and the
    /// refund's marker set (one transaction on the user's keys), then the charge refunded for
    /// good. In that order: a crash between them leaves the charge unrefunded, so the refund is
    /// recorded again when it is retried; and a payment recorded between them finds the marker.
    pub async fn refunded(
        &self,
        charge_id: &str,
        charge: &Charge,
        item_id: &str,
    ) -> redis::RedisResult<()> {
        let user_id = charge.user_id;
        redis::pipe()
            .atomic()
            .set(self.refund_marker(user_id, charge_id), 1)
            .ignore()
            .srem(self.owned(user_id), item_id)
            .ignore()
            .del(self.hold_key(user_id, item_id))
            .ignore()
            .query_async::<()>(&mut self.redis.clone())
            .await?;
        let charge = Charge {
            refunded: true,
            ..charge.clone()
        };
        let json = serde_json::to_string(&charge).expect("plain data serialises");
        self.redis
            .clone()
            .set(self.charge_key(charge_id), json)
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
        let user = self.redis.slot(user_id);
        format!("{}:stars:pending:{user}:{item_id}", self.prefix)
    }

    fn owned(&self, user_id: i64) -> String {
        format!("{}:stars:owned:{}", self.prefix, self.redis.slot(user_id))
    }

    /// Set by a refund in the user's slot, so that a payment of the charge recorded after it
    /// owns nothing.
    fn refund_marker(&self, user_id: i64, charge_id: &str) -> String {
        let user = self.redis.slot(user_id);
        format!("{}:stars:refunded:{user}:{charge_id}", self.prefix)
    }

    fn update(&self, update_id: i64) -> String {
        format!("{}:tg:update:{update_id}", self.prefix)
    }
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
