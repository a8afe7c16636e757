-- The states of two versions of a projection.
SELECT version, state FROM projection_versions WHERE projection = $1 AND version IN ($2, $3)
