SELECT version FROM projection_versions WHERE projection = $1 LIMIT 1
