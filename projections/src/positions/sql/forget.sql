-- Forgets the positions of one version of a projection ($2), or of all its versions ($2 NULL).
DELETE FROM projection_positions WHERE projection = $1 AND ($2::integer IS NULL OR version = $2)
