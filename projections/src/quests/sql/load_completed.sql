-- The quests a batch's users (or one reader) have completed.
SELECT user_id, quest_id, reward, event_id, (extract(epoch FROM completed_at) * 1000)::bigint AS completed_at_ms
FROM {t}_completed
WHERE user_id = ANY($1::bigint[])
