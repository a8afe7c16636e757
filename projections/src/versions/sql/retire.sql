UPDATE projection_versions SET state = 'retired' WHERE projection = $1 AND version = $2
