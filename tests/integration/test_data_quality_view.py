"""ioc.data_quality: per source and date, from the latest batch of that date."""
import datetime as dt
from decimal import Decimal

import pytest

from ioc_pipeline.ingest import batch
from tests.integration.test_batch_civil_status import rec
from tests.integration.warehouse_helpers import migrated, run_batch

pytestmark = pytest.mark.integration
D = dt.date(2026, 11, 20)


def test_data_quality_per_source_and_date(warehouse_db):
    conn = migrated(warehouse_db)
    good = [rec(f"G{i}", subject_cccd=f"048225{i:06d}") for i in range(49)]
    run_batch(conn, warehouse_db, "civil_status", D - dt.timedelta(days=1), [good + [rec("BAD", subject_sex="?")]], run_id="a")
    # next day: every row bad -> the batch fails on the quarantine share
    with pytest.raises(batch.BatchFailed):
        run_batch(conn, warehouse_db, "civil_status", D, [[rec(f"X{i}", subject_sex="?") for i in range(5)]], run_id="b")
    with conn.cursor() as cur:
        cur.execute("SET ROLE ioc_reader")
        cur.execute("SELECT source_code, date, batch_status, expectations_evaluated, expectations_passed,"
                    " rows_read, rows_loaded, rows_quarantined, share_valid FROM ioc.data_quality ORDER BY date")
        rows = cur.fetchall()
        cur.execute("RESET ROLE")
    conn.commit()
    # the bad row breaks two rules: subject_sex not M/F, and the CCCD sex digit disagrees
    assert rows[0] == ("civil_status", D - dt.timedelta(days=1), "committed", 26, 24, 50, 49, 1, Decimal("0.9800"))
    source, date, status, evaluated, passed, read, loaded, quarantined, share = rows[1]
    assert (source, date, status, evaluated, read, loaded, share) == ("civil_status", D, "failed", 26, 5, None, None)
    assert passed < evaluated
