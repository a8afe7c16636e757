SELECT {timescaledb}.drop_chunks($1::regclass,
    older_than => (date '1970-01-01' + $2::integer)::timestamptz)::text
