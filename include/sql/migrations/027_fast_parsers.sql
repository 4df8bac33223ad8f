-- The parsers of 007 without an exception block (docs/performance.md): plain SQL the planner
-- inlines into the suites', dedupe's and the merges' queries (no function call and no
-- subtransaction per row) and may run in parallel workers. The accepted set is EXACTLY the
-- one of 007 (tests/integration/test_fast_parsers.py compares both on valid and hostile
-- inputs): one regular expression checks the shape and the ranges the text cast would refuse
-- (hours 00-23 or 24:00[:00[.0…]], minutes 00-59, seconds up to 60, offsets Z, ±hh, ±hhmm,
-- ±hh:mm up to ±15:59), then the calendar day is checked as util.try_date does, so the cast
-- can no longer fail. [0-9], not \d: only ASCII digits may reach the casts.
--
-- try_timestamptz and try_local_timestamp are STABLE, not IMMUTABLE as in 007: the text cast
-- is STABLE (it reads DateStyle and knows 'now', which the expression refuses), and
-- PostgreSQL only inlines a function whose body is no more volatile than its declaration.
-- Declared IMMUTABLE the same body runs as a function call per row, twice as slow as 007.

-- ISO 8601 date, YYYY-MM-DD, a real calendar day: 007's rule with make_date (IMMUTABLE) in
-- place of the text cast, so that it is inlined too. Nested CASE and greatest(): no invalid
-- make_date or integer cast even when the planner folds a literal early.
CREATE OR REPLACE FUNCTION util.try_date(p text) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p ~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$' THEN
            CASE
                WHEN substr(p, 1, 4)::int < 1 THEN NULL
                WHEN substr(p, 9, 2)::int <= extract(day FROM
                         make_date(greatest(substr(p, 1, 4)::int, 1), substr(p, 6, 2)::int, 1)
                         + interval '1 month - 1 day')
                THEN make_date(substr(p, 1, 4)::int, substr(p, 6, 2)::int, substr(p, 9, 2)::int)
            END
    END
$$;

-- True when the first ten characters, already of the shape YYYY-MM-DD with a month 01-12
-- and a day 01-31, name a real calendar day (the cheap string test first: days 01-28).
CREATE OR REPLACE FUNCTION util.is_calendar_day(p text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT left(p, 4) <> '0000'
       AND (substr(p, 9, 2) COLLATE "C" <= '28'
            OR substr(p, 9, 2)::int <= extract(day FROM
                   make_date(greatest(substr(p, 1, 4)::int, 1), substr(p, 6, 2)::int, 1)
                   + interval '1 month - 1 day'))
$$;

-- ISO 8601 timestamp WITH an offset (sources.md): without one its instant is unknown.
CREATE OR REPLACE FUNCTION util.try_timestamptz(p text) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p ~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ](([01][0-9]|2[0-3]):[0-5][0-9](:([0-5][0-9]|60)(\.[0-9]{1,6})?)?|24:00(:00(\.0{1,6})?)?)(Z|[+-](0[0-9]|1[0-5])(:?[0-5][0-9])?)$' THEN
            CASE
                WHEN util.is_calendar_day(p)
                     -- the cast refuses a time of day past 24:00:00: 23:59:60.5
                     AND (substr(p, 12, 8) <> '23:59:60' OR p !~ '^.{19}\.0*[1-9]')
                THEN p::timestamptz
            END
    END
$$;

-- Local wall-clock timestamp in Asia/Ho_Chi_Minh without offset (health_visits), as an instant.
CREATE OR REPLACE FUNCTION util.try_local_timestamp(p text) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p ~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ](([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)|24:00:00)$' THEN
            CASE WHEN util.is_calendar_day(p) THEN p::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh' END
    END
$$;
