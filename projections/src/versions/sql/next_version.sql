-- One past every version of the projection the registry or the positions have seen.
SELECT greatest(
    (SELECT max(version) FROM projection_versions WHERE projection = $1),
    (SELECT max(version) FROM projection_positions WHERE projection = $1),
    0
) + 1
