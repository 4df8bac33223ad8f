"""The as-of rule of operations.md and the source catalog."""
import datetime as dt

import pytest

from ioc_pipeline.orchestration import asof
from ioc_pipeline.declaration import catalog

UTC = dt.UTC


def test_param_wins():
    assert asof.resolve("scheduled", param="2026-03-01", run_after=dt.datetime(2026, 5, 1, tzinfo=UTC)) == dt.date(2026, 3, 1)


def test_manual_run_uses_local_date_of_logical_date():
    # 2026-11-20 18:00 UTC is 2026-11-21 01:00 in Asia/Ho_Chi_Minh
    assert asof.resolve("manual", logical_date=dt.datetime(2026, 11, 20, 18, 0, tzinfo=UTC)) == dt.date(2026, 11, 21)
    assert asof.resolve("manual", logical_date=dt.datetime(2026, 11, 20, 0, 0, tzinfo=UTC)) == dt.date(2026, 11, 20)


def test_scheduled_run_reports_the_day_before_it_ran_in_local_time():
    # ran 2026-11-20 17:30 UTC = 2026-11-21 00:30 local -> reports 2026-11-20
    assert asof.resolve("scheduled", run_after=dt.datetime(2026, 11, 20, 17, 30, tzinfo=UTC)) == dt.date(2026, 11, 20)


def test_asset_triggered_takes_greatest_as_of():
    extras = [{"as_of_date": "2026-11-19"}, {"as_of_date": "2026-11-20"}, {}]
    assert asof.resolve("asset_triggered", asset_event_extras=extras) == dt.date(2026, 11, 20)
    with pytest.raises(asof.AsOfError):
        asof.resolve("asset_triggered", asset_event_extras=[{}])


def test_bad_param_is_a_clear_error():
    with pytest.raises(asof.AsOfError, match="YYYY-MM-DD"):
        asof.resolve("manual", param="20/11/2026")


def test_window_end_is_next_local_midnight():
    end = asof.window_end(dt.date(2026, 11, 20))
    assert end.isoformat() == "2026-11-21T00:00:00+07:00"


def test_catalog_entries_are_complete():
    sources = catalog.load()
    assert "civil_status" in sources
    for s in sources.values():
        assert s.suite_path.exists(), s.code
        assert (catalog.config.SQL_DIR / s.projection_sql).exists(), s.code
        assert set(s.key) <= set(s.field_names)


def test_catalog_rejects_unknown_source():
    with pytest.raises(catalog.CatalogError, match="unknown source"):
        catalog.get("nope")
