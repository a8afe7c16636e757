DELETE FROM projection_versions WHERE projection = $1
