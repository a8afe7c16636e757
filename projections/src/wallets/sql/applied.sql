-- Which of these events the ledger already holds.
SELECT event_id
FROM {t}_ledger
WHERE event_id = ANY($1::uuid[])
