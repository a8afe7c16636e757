-- Records completions; one already recorded (by the decision, or by its event coming back
-- through the topic) stays as it is.
INSERT INTO {t}_completed (user_id, quest_id, reward, event_id, completed_at)
SELECT u, q, r, e, TIMESTAMPTZ 'epoch' + t * INTERVAL '1 millisecond'
FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::uuid[], $5::bigint[]) AS x(u, q, r, e, t)
ON CONFLICT (user_id, quest_id) DO NOTHING
