-- Invoices a user opened (PurchaseStarted), paid or not: what a Mini App told "failed" by
-- openInvoice looks up by its purchase id.
CREATE TABLE IF NOT EXISTS {t}_started (
    purchase_id UUID PRIMARY KEY,
    user_id     BIGINT NOT NULL,
    item_id     TEXT NOT NULL,
    stars       BIGINT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL
)
