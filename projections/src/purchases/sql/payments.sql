-- One row per Stars payment, keyed by Telegram's charge id (what payments are deduplicated
-- by). A refund marks its payment; a refund applied before its payment (never in one partition's
-- order, but harmless) makes the row, which the payment then completes.
CREATE TABLE IF NOT EXISTS {t}_payments (
    telegram_payment_charge_id TEXT PRIMARY KEY,
    user_id      BIGINT NOT NULL,
    purchase_id  UUID NOT NULL,
    item_id      TEXT NOT NULL,
    stars        BIGINT NOT NULL,
    coins        BIGINT NOT NULL,
    subscription TEXT,
    expires_at   TIMESTAMPTZ,
    recurring    BOOLEAN NOT NULL,
    paid_at      TIMESTAMPTZ,
    refunded_at  TIMESTAMPTZ
)
