"""The exception-free parsers of migration 027 accept EXACTLY what 007's did.

007's PL/pgSQL bodies (regex, then a text cast inside an exception block) are re-created here
as test-only functions and both versions run over the same large table of valid and hostile
inputs: every value, NULL or not, must be identical, under two different session settings.
"""
import itertools

import pytest

from tests.integration.warehouse_helpers import migrated

pytestmark = pytest.mark.integration

# The bodies of include/sql/migrations/007_util_parsing.sql, verbatim, in pg_temp.
OLD_PARSERS = r"""
CREATE FUNCTION pg_temp.old_try_timestamptz(p text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p IS NULL OR p !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)$' THEN
        RETURN NULL;
    END IF;
    RETURN p::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;
CREATE FUNCTION pg_temp.old_try_date(p text) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p ~ '^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$' THEN
            CASE
                WHEN substr(p, 1, 4)::int < 1 THEN NULL
                WHEN substr(p, 9, 2)::int <= extract(day FROM
                         make_date(greatest(substr(p, 1, 4)::int, 1), substr(p, 6, 2)::int, 1)
                         + interval '1 month - 1 day')
                THEN p::date
            END
    END
$$;
CREATE FUNCTION pg_temp.old_try_local_timestamp(p text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p IS NULL OR p !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}$' THEN
        RETURN NULL;
    END IF;
    RETURN p::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh';
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;
"""

DATES = ["2024-02-29", "2023-02-29", "2026-02-30", "2026-04-31", "2026-04-30", "2026-12-31", "1900-02-29",
         "2000-02-29", "0000-01-01", "0001-01-01", "9999-12-31", "2026-00-10", "2026-13-01", "2026-01-00",
         "2026-01-32", "1975-06-13", "٢٠٢٦-01-01", "２０２６-01-01", "2026-1-01", "20260101", "26-01-01"]
SEPARATORS = ["T", " ", "t", "_", "", "  "]
TIMES = ["00:00", "23:59", "24:00", "24:00:00", "24:00:00.0", "24:00:00.000000", "24:00:00.000001", "24:00:01",
         "24:01", "25:00", "23:60", "23:59:59", "23:59:60", "23:59:60.0", "23:59:60.5", "12:30:60", "12:30:61",
         "12:00:00.1", "12:00:00.123456", "12:00:00.999999", "12:00:00.1234567", "12:00:00.", "1:00", "12:0",
         "99:99:99", "00:00:00", "07:05:09.05", "12:00:00,5", "١٢:00:00"]
OFFSETS = ["Z", "z", "+07", "+0700", "+07:00", "-07", "-0000", "+00", "-00:00", "+15", "+15:59", "-15:59", "+16",
           "+16:00", "+07:60", "+0760", "+7", "+070", "+07:0", "-12:30", "+05:45", "", "+07:00:00", " UTC", "UTC",
           "+07 ", "+٠٧"]
HOSTILE = [None, "", " ", "\t", "\n", "infinity", "-infinity", "now", "today", "tomorrow", "yesterday", "epoch",
           "allballs", "J2451187", "x", "x" * 10000, "9" * 5000, "9" * 60 + "-01-01T00:00Z", "99999-01-01T00:00Z",
           "2026-01-01T03:00:00+07:00\n", " 2026-01-01T03:00:00+07:00", "2026-01-01T03:00:00+07:00 ",
           "2026-01-01T03:00:00 +07:00", "2026-01-01T03:00:00+07:00 BC", "20260101T030000Z",
           "2026-01-01T03:00:00.000000000+07:00", "2026-01-01T03:00:00+07:00" * 400, "now+07", "today Z",
           "2026-01-01 now", "epoch+07:00", "2026-01-01T03:00:00 Asia/Ho_Chi_Minh", "2026-01-01T03:00:00 ICT",
           "2026-01-01T03:00:00'; DROP TABLE t; --", "2026-01-01T03:00:00+07:00\x01", "2026-01-01 03:00:00",
           "2026-01-01T03:00:00", "2026-01-01", "2026-01-01T03:00:00\n", "2026-01-01 03:00:00 ", "2026-01-01T03:00"]


def _inputs():
    stamps = ["".join(p) for p in itertools.product(DATES, SEPARATORS, TIMES, OFFSETS)]
    return stamps + HOSTILE


@pytest.fixture
def conn(warehouse_db):
    c = migrated(warehouse_db)
    with c.cursor() as cur:
        cur.execute(OLD_PARSERS)
        cur.execute("CREATE TEMP TABLE t (id serial, x text)")
        values = _inputs()
        cur.executemany("INSERT INTO t (x) VALUES (%s)", [(v,) for v in values])
        cur.execute("ANALYZE t")
    yield c
    c.rollback()
    c.close()


@pytest.mark.parametrize("settings", ["SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'",
                                      "SET TimeZone = 'America/St_Johns'; SET DateStyle = 'SQL, DMY'"])
def test_same_accepted_set_and_values_as_007(conn, settings):
    with conn.cursor() as cur:
        cur.execute(settings)
        cur.execute("""SELECT count(*),
                              count(pg_temp.old_try_timestamptz(x)), count(pg_temp.old_try_local_timestamp(x)),
                              count(*) FILTER (WHERE util.try_timestamptz(x)
                                               IS DISTINCT FROM pg_temp.old_try_timestamptz(x)),
                              count(*) FILTER (WHERE util.try_local_timestamp(x)
                                               IS DISTINCT FROM pg_temp.old_try_local_timestamp(x))
                         FROM t""")
        total, old_tz, old_local, differ_tz, differ_local = cur.fetchone()
        cur.execute("""SELECT count(pg_temp.old_try_date(d)),
                              count(*) FILTER (WHERE util.try_date(d) IS DISTINCT FROM pg_temp.old_try_date(d))
                         FROM (SELECT left(x, 10) FROM t UNION SELECT x FROM t) s(d)""")
        old_date, differ_date = cur.fetchone()
        cur.execute("""SELECT left(x, 60), util.try_timestamptz(x)::text, pg_temp.old_try_timestamptz(x)::text,
                              util.try_local_timestamp(x)::text, pg_temp.old_try_local_timestamp(x)::text
                         FROM t WHERE util.try_timestamptz(x) IS DISTINCT FROM pg_temp.old_try_timestamptz(x)
                               OR util.try_local_timestamp(x) IS DISTINCT FROM pg_temp.old_try_local_timestamp(x)
                        LIMIT 10""")
        examples = cur.fetchall()
    assert total == len(_inputs())
    # not a vacuous comparison: both sets are large and far from everything
    assert 2000 < old_tz < total // 2, old_tz
    assert 50 < old_local < total // 2, old_local
    assert 5 < old_date, old_date
    assert (differ_tz, differ_local, differ_date) == (0, 0, 0), examples


def test_known_values(conn):
    with conn.cursor() as cur:
        cur.execute("SET TimeZone = 'UTC'")

        def one(sql, arg):
            cur.execute(sql, (arg,))
            return cur.fetchone()[0]
        ts = "SELECT util.try_timestamptz(%s)::text"
        assert one(ts, "2026-01-01T03:00:00+07:00") == "2025-12-31 20:00:00+00"
        assert one(ts, "2024-02-29 23:59:60-0530") == "2024-03-01 05:30:00+00"  # leap second rolls over
        assert one(ts, "2026-12-31T24:00Z") == "2027-01-01 00:00:00+00"
        assert one(ts, "2026-01-01T00:00:00.000001+07") == "2025-12-31 17:00:00.000001+00"
        for bad in ("2026-02-30T00:00:00+07:00", "2026-01-01T25:00+07", "now", "today", "epoch", "infinity", ""):
            assert one(ts, bad) is None, bad
        local = "SELECT util.try_local_timestamp(%s)::text"
        assert one(local, "2026-01-01 03:00:00") == "2025-12-31 20:00:00+00"
        assert one(local, "2026-02-28T23:59:60") == "2026-02-28 17:00:00+00"
        for bad in ("2026-01-01 03:00", "2026-01-01 03:00:00+07", "now", "2023-02-29 00:00:00"):
            assert one(local, bad) is None, bad


def test_inlined_and_parallel_safe(conn):
    """The point of 027: plain SQL the planner inlines (no per-row function call, no subtransaction)."""
    with conn.cursor() as cur:
        cur.execute("EXPLAIN VERBOSE SELECT util.try_timestamptz(x), util.try_local_timestamp(x), util.try_date(x)"
                    " FROM t")
        plan = "\n".join(r[0] for r in cur.fetchall())
        assert "try_timestamptz" not in plan and "try_local_timestamp" not in plan, plan
        assert "try_date" not in plan and "is_calendar_day" not in plan, plan
        cur.execute("SELECT proname, l.lanname, provolatile, proparallel FROM pg_proc"
                    " JOIN pg_language l ON l.oid = prolang WHERE pronamespace = 'util'::regnamespace"
                    " AND proname IN ('try_date', 'try_timestamptz', 'try_local_timestamp') ORDER BY 1")
        # STABLE: the text cast is, and an IMMUTABLE function with a STABLE body is not inlined
        assert cur.fetchall() == [("try_date", "sql", "i", "s"), ("try_local_timestamp", "sql", "s", "s"),
                                  ("try_timestamptz", "sql", "s", "s")]
