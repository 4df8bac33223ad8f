"""The safe SQL parsers the suites and merges rely on (include/sql/migrations/007)."""
import datetime as dt

import pytest

from tests.integration.warehouse_helpers import migrated

pytestmark = pytest.mark.integration


def test_parsers(warehouse_db):
    conn = migrated(warehouse_db)
    with conn.cursor() as cur:
        def one(sql, *args):
            cur.execute(sql, args)
            return cur.fetchone()[0]
        assert one("SELECT util.try_date(%s)", "2024-02-29") == dt.date(2024, 2, 29)
        for bad in ("2023-02-29", "2023-04-31", "0000-01-01", "2023-13-01", "20230101", "2023-1-01", "x", None):
            assert one("SELECT util.try_date(%s)", bad) is None, bad
        assert one("SELECT util.try_timestamptz(%s)", "2026-01-01T03:00:00+07:00") == \
            dt.datetime(2025, 12, 31, 20, 0, tzinfo=dt.UTC)
        for bad in ("2026-01-01T03:00:00", "2026-02-30T00:00:00+07:00", "2026-01-01", "yesterday"):
            assert one("SELECT util.try_timestamptz(%s)", bad) is None, bad
        assert one("SELECT util.try_local_timestamp(%s)", "2026-01-01 03:00:00") == \
            dt.datetime(2025, 12, 31, 20, 0, tzinfo=dt.UTC)
        # the local calendar date of an instant, whatever the session zone (here UTC)
        assert one("SELECT util.local_date(%s::timestamptz)", "2025-12-31T20:00:00Z") == dt.date(2026, 1, 1)
        # parsers usable in parallel plans: force one over a large table
        cur.execute("CREATE TABLE t AS SELECT (DATE '2000-01-01' + g % 9000)::text AS d,"
                    " '2025-01-01T00:00:00+07:00'::text AS ts FROM generate_series(1, 200000) g")
        cur.execute("SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0")
        assert one("SELECT count(*) FROM t WHERE util.try_date(d) IS NOT NULL AND util.try_timestamptz(ts) IS NOT NULL") == 200000
    conn.rollback()
