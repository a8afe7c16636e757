UPDATE projection_versions SET state = $3 WHERE projection = $1 AND version = $2
