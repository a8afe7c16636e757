SELECT version, revision, state,
       (extract(epoch FROM from_at) * 1000)::bigint AS from_ms,
       (extract(epoch FROM created_at) * 1000)::bigint AS created_at_ms,
       (extract(epoch FROM switched_at) * 1000)::bigint AS switched_at_ms
FROM projection_versions
WHERE projection = $1
ORDER BY version
