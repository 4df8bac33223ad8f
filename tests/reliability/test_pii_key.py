"""A changed ioc_pii_key (operations.md, "Personal data"): refused before anything loads, and
visible to whoever watches ioc.source_freshness."""
from __future__ import annotations

import datetime as dt

import pytest

from ioc_pipeline.ingest import batch
from tests.integration.test_batch_civil_status import rec
from tests.integration.warehouse_helpers import migrated, run_batch
from tests.reliability.support import rows, snapshot

pytestmark = pytest.mark.integration

D = dt.date(2026, 11, 20)
ITEMS = [rec(f"G{i}", subject_cccd=f"048225{i:06d}") for i in range(30)]


def refused_run(dsn):
    conn = migrated(dsn)
    run_batch(conn, dsn, "civil_status", D, [ITEMS], run_id="good")
    before = snapshot(dsn, schemas=("core", "quarantine", "mart"))
    with pytest.raises(batch.BatchFailed, match="ioc_pii_key differs"):
        run_batch(conn, dsn, "civil_status", D + dt.timedelta(days=1), [ITEMS], run_id="other-key",
                  key=b"another-key-0123456789abcdef")
    conn.close()
    return before


def test_changed_key_loads_nothing_and_is_not_adopted(warehouse_db):
    before = refused_run(warehouse_db)
    assert snapshot(warehouse_db, schemas=("core", "quarantine", "mart")) == before
    assert rows(warehouse_db, "SELECT count(*) FROM audit.pii_key") == [(1,)]


def test_changed_key_shows_in_source_freshness(warehouse_db):
    refused_run(warehouse_db)
    (status, error), = rows(warehouse_db, "SELECT last_status, last_error FROM ioc.source_freshness"
                                      " WHERE source_code = 'civil_status'")
    assert status == "failed" and "ioc_pii_key differs" in error
