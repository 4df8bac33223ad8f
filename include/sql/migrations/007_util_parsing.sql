-- Safe parsers for staged text: NULL instead of an error, so that suites can name the rows
-- whose values do not parse, and the merge can cast what passed. Functions with an exception
-- block open a subtransaction, which parallel workers cannot: they are PARALLEL RESTRICTED.

-- ISO 8601 date, YYYY-MM-DD, a real calendar day. Plain SQL without an exception block, so
-- it is inlined and may run in parallel workers (a subtransaction may not).
CREATE OR REPLACE FUNCTION util.try_date(p text) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p ~ '^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$' THEN
            CASE
                WHEN substr(p, 1, 4)::int < 1 THEN NULL
                -- greatest(): never an invalid make_date, even if folded early for a literal
                WHEN substr(p, 9, 2)::int <= extract(day FROM
                         make_date(greatest(substr(p, 1, 4)::int, 1), substr(p, 6, 2)::int, 1)
                         + interval '1 month - 1 day')
                THEN p::date
            END
    END
$$;

-- ISO 8601 timestamp WITH an offset (sources.md): without one its instant is unknown.
CREATE OR REPLACE FUNCTION util.try_timestamptz(p text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL RESTRICTED AS $$
BEGIN
    IF p IS NULL OR p !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)$' THEN
        RETURN NULL;
    END IF;
    RETURN p::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;

-- Local wall-clock timestamp in Asia/Ho_Chi_Minh without offset (health_visits), as an instant.
CREATE OR REPLACE FUNCTION util.try_local_timestamp(p text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL RESTRICTED AS $$
BEGIN
    IF p IS NULL OR p !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}$' THEN
        RETURN NULL;
    END IF;
    RETURN p::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh';
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;

-- The calendar date of an instant in Asia/Ho_Chi_Minh, whatever the session time zone.
CREATE OR REPLACE FUNCTION util.local_date(p timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (p AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
$$;
