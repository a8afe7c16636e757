UPDATE projection_versions SET state = 'active', switched_at = now()
WHERE projection = $1 AND version = $2
