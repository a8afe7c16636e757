-- The versions of a projection with positions stored for a topic.
SELECT DISTINCT version FROM projection_positions
WHERE projection = $1 AND topic = $2 ORDER BY version
